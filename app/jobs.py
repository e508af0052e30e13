"""The long jobs the GUI runs, as generators of Progress (they run in a Worker's thread).

Each one is a thin wrapper around a core workflow; nothing here touches Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from core.result_store import ResultStore
from core.compare import cached_metrics
from core.results import CachedResult, compact_result
from core.data.demo import DEFAULT_CATEGORY, demo_dataset
from core.data.index import DatasetIndex, ImageRecord, iter_index_dataset
from core.modelfile import load_model, read_meta
from core.models.base import AnomalyModel
from core.progress import CancelToken, Progress
from core.report import RunInfo
from core.report.from_session import iter_session_report
from core.workflow import PredictRequest, predict_folder
from core.workflow.heldout import held_out_records
from core.workflow.steps import steps_of_image
from core.workflow.train import normal_training_records

RESULT_BATCH = 16  # cached results handed to the GUI together
STORED_BATCH = 500  # results read back from the store handed to the GUI together

Factory = Callable[[CancelToken], Iterator[Progress]]


def index_job(folder: Path) -> Factory:
    def run(cancel: CancelToken) -> Iterator[Progress]:
        yield from iter_index_dataset(folder, cancel=cancel)
    return run


def demo_job(category: str = DEFAULT_CATEGORY) -> Factory:
    def run(cancel: CancelToken) -> Iterator[Progress]:
        yield Progress("demo", 0, 1, message=f"preparing the bundled demo dataset '{category}' (first use only)")
        path = demo_dataset(category)
        cancel.raise_if_cancelled()
        yield Progress("done", 1, 1, message=f"demo dataset at {path}", result=path)
    return run


def compact_stream(source: Iterator[Progress], keep: Callable[[ImageRecord | None], bool],
                   store: ResultStore | None = None) -> Iterator[Progress]:
    """A predict_folder stream as the GUI wants it: the folder's index once (`extra["index"]`), then a Progress
    per image with a list of new CachedResult every RESULT_BATCH images (`extra["cached"]`); `keep(record)` says
    whose maps are kept. With a `store`, kept maps go to disk at full resolution (only scores and pixel samples
    stay in memory) and the summary is saved at the end, marked complete when every image was scored.
    The last value keeps the stream's extra (e.g. "report")."""
    records: dict[Path, ImageRecord] = {}
    batch: list[CachedResult] = []
    everything: list[CachedResult] = []
    for progress in source:
        result = progress.result
        if isinstance(result, DatasetIndex):
            records = {r.path: r for r in result.records}
            yield Progress("indexed", progress.step, progress.total, message=progress.message,
                           extra={"index": result})
        elif progress.phase == "predict" and result is not None:
            record = records.get(result.path)
            cached = (store.compact(result, record, keep_maps=keep(record)) if store is not None
                      else compact_result(result, record, keep_maps=keep(record)))
            batch.append(cached)
            everything.append(cached)
            result.maps, result.reconstruction = {}, None  # the compact copy replaces them
            if len(batch) >= RESULT_BATCH:
                yield Progress(progress.phase, progress.step, progress.total, extra={"cached": batch})
                batch = []
            else:  # the progress bar moves every image; results travel in groups
                yield Progress(progress.phase, progress.step, progress.total)
        elif progress.phase in ("done", "cancelled"):
            if store is not None and everything:
                yield Progress("saving", progress.step, progress.total, message="keeping the results on disk…")
                store.save(everything, complete=progress.phase == "done" and len(everything) == len(records))
            yield Progress(progress.phase, progress.step, progress.total, message=progress.message,
                           extra={**(progress.extra or {}), "cached": batch})
            batch = []
        else:
            yield Progress(progress.phase, progress.step, progress.total, message=progress.message)


def stored_results(results: list[CachedResult], batch: int = STORED_BATCH) -> Iterator[Progress]:
    """Results read back from the store, in groups, as a scoring run would send them."""
    for start in range(0, len(results), batch):
        yield Progress("predict", min(start + batch, len(results)), len(results),
                       extra={"cached": results[start:start + batch]})
    yield Progress("done", len(results), len(results), message=f"{len(results)} results kept from an earlier run",
                   extra={"cached": [], "stored": True})


def predict_job(model: Path, index: DatasetIndex, device: str = "auto", on_disk: bool = True, reuse: bool = True
                ) -> Factory:
    """Score every image of the dataset. Maps are kept for test / unsplit images and for training images the
    model held out (`on_disk`: at full resolution in the model's and folder's ResultStore, else shrunk in
    memory); other training images keep only their scores. With `reuse`, results the store holds for every
    image are read back instead (the last value's `extra["stored"]` is True). Progress values carry
    `extra["cached"]`: a list of new CachedResult every RESULT_BATCH images."""
    held_out = held_out_records(read_meta(model), index.root, normal_training_records(index))
    keep_train = {r.path for r in held_out}

    def keep(record: ImageRecord | None) -> bool:
        return record is None or record.split != "train" or record.path in keep_train

    def run(cancel: CancelToken) -> Iterator[Progress]:
        store = ResultStore.open(model, index.root) if on_disk else None
        stored = store.load(index.records) if store is not None and reuse else None
        if stored is not None:
            yield from stored_results(stored)
            return
        request = PredictRequest(model=model, input=index.root, out=None, write_maps=False, device=device,
                                 keep_maps=True)
        yield from compact_stream(predict_folder(request, cancel), keep, store)
    return run


def inspect_job(model: Path, folder: Path, report: Path, device: str = "auto") -> Factory:
    """Score a folder of new images and write an inspection report (CSV, JSON, HTML, PDF) into `report`.
    Like predict_job, plus the folder's index first (`extra["index"]`); the last value's `extra["report"]` is
    the ReportFiles (a partial report after a cancel)."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        request = PredictRequest(model=model, input=folder, out=None, write_maps=False, device=device,
                                 keep_maps=True, report=report)
        store = ResultStore.open(model, folder)  # maps on disk; an inspection always scores (it writes a report)
        yield from compact_stream(predict_folder(request, cancel), lambda _record: True, store)
    return run


def steps_job(model: Path, image: Path, device: str = "auto") -> Factory:
    """The intermediate steps of one image's inference (core.workflow.steps); each step's Progress carries its
    StepImage as result."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        yield from steps_of_image(model, image, device, cancel)
    return run


def reference_job(model_file: Path, model: AnomalyModel | None = None, image: Path | None = None) -> Factory:
    """The reference image of a model: `model`, else the network loaded from `model_file`; its reference is
    first set from the image file `image` when one is given (the file is only read). result = (the network,
    its reference (C,S,S) float32 in [0,1] or None)."""
    def run(_cancel: CancelToken) -> Iterator[Progress]:
        network = model if model is not None else load_model(model_file)[0]
        if image is not None:
            network.set_reference_from_path(image)
        reference = network.reference_image()
        yield Progress("done", 1, 1, result=(network, None if reference is None else reference.cpu().numpy()))
    return run


def export_job(folder: Path, info: RunInfo, results: list[CachedResult],
               skipped: list[tuple[Path, str]], reviews: dict[Path, str] | None = None) -> Factory:
    """Write a report of results already scored, with the thresholds named in `info` and a person's `reviews`;
    result = ReportFiles."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        yield from iter_session_report(folder, info, results, skipped, cancel, reviews=reviews)
    return run


def compare_job(model_a: Path, results_a: list[CachedResult], model_b: Path, index: DatasetIndex,
                device: str = "auto") -> Factory:
    """Score the data with model B (or read its results back from the store: nothing scored twice), then the
    metrics of both from the results (core.compare; A's are the session's). Phase "model B" carries B's
    results in `extra["cached"]`; phase "evaluated" has [metrics A, metrics B]."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        meta_a, meta_b = read_meta(model_a), read_meta(model_b)
        results_b: list[CachedResult] = []
        for progress in predict_job(model_b, index, device)(cancel):
            cached = (progress.extra or {}).get("cached", [])
            results_b += cached
            if progress.phase not in ("done", "cancelled"):
                yield Progress("model B", progress.step, progress.total, message=progress.message,
                               extra={"cached": cached})
            else:
                yield Progress("model B", progress.total, progress.total, extra={"cached": cached})
        records = {r.path: r for r in index.records}
        yield Progress("metrics", 0, 2, message="metrics of both models from their results…")
        metrics = [cached_metrics(results_a, records, meta_a, cancel=cancel)]
        yield Progress("metrics", 1, 2, message="metrics of both models from their results…")
        metrics.append(cached_metrics(results_b, records, meta_b, cancel=cancel))
        yield Progress("evaluated", 2, 2, result=metrics)
        yield Progress("done", 2, 2, message=f"compared on {len(results_b)} images", result=metrics)
    return run
