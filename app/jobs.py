"""The long jobs the GUI runs, as generators of Progress (they run in a Worker's thread).

Each one is a thin wrapper around a core workflow; nothing here touches Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from core.results import CachedResult, compact_result
from core.data.demo import DEFAULT_CATEGORY, demo_dataset
from core.data.index import DatasetIndex, ImageRecord, iter_index_dataset
from core.modelfile import read_meta
from core.progress import CancelToken, Progress
from core.report import RunInfo
from core.report.from_session import iter_session_report
from core.workflow import EvaluateRequest, PredictRequest, evaluate_model, predict_folder
from core.workflow.heldout import held_out_records
from core.workflow.train import normal_training_records

RESULT_BATCH = 16  # cached results handed to the GUI together

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


def _compact_results(request: PredictRequest, keep: Callable[[ImageRecord | None], bool],
                     cancel: CancelToken) -> Iterator[Progress]:
    """predict_folder as the GUI wants it: the folder's index once (`extra["index"]`), then a Progress per image
    with a list of new CachedResult every RESULT_BATCH images (`extra["cached"]`); `keep(record)` says whose
    maps are kept.
    The last value keeps predict_folder's extra (e.g. "report")."""
    records: dict[Path, ImageRecord] = {}
    batch: list[CachedResult] = []
    for progress in predict_folder(request, cancel):
        result = progress.result
        if isinstance(result, DatasetIndex):
            records = {r.path: r for r in result.records}
            yield Progress("indexed", progress.step, progress.total, message=progress.message,
                           extra={"index": result})
        elif progress.phase == "predict" and result is not None:
            record = records.get(result.path)
            batch.append(compact_result(result, record, keep_maps=keep(record)))
            result.maps, result.reconstruction = {}, None  # the compact copy replaces them
            if len(batch) >= RESULT_BATCH:
                yield Progress(progress.phase, progress.step, progress.total, extra={"cached": batch})
                batch = []
            else:  # the progress bar moves every image; results travel in groups
                yield Progress(progress.phase, progress.step, progress.total)
        elif progress.phase in ("done", "cancelled"):
            yield Progress(progress.phase, progress.step, progress.total, message=progress.message,
                           extra={**(progress.extra or {}), "cached": batch})
            batch = []
        else:
            yield Progress(progress.phase, progress.step, progress.total, message=progress.message)


def predict_job(model: Path, index: DatasetIndex, device: str = "auto") -> Factory:
    """Score every image of the dataset. Maps are kept (shrunk) for test / unsplit images and for training
    images the model held out; other training images keep only their scores. Progress values carry
    `extra["cached"]`: a list of new CachedResult every RESULT_BATCH images."""
    held_out = held_out_records(read_meta(model), index.root, normal_training_records(index))
    keep_train = {r.path for r in held_out}

    def keep(record: ImageRecord | None) -> bool:
        return record is None or record.split != "train" or record.path in keep_train

    def run(cancel: CancelToken) -> Iterator[Progress]:
        request = PredictRequest(model=model, input=index.root, out=None, write_maps=False, device=device,
                                 keep_maps=True)
        yield from _compact_results(request, keep, cancel)
    return run


def inspect_job(model: Path, folder: Path, report: Path, device: str = "auto") -> Factory:
    """Score a folder of new images and write an inspection report (CSV, JSON, HTML, PDF) into `report`.
    Like predict_job, plus the folder's index first (`extra["index"]`); the last value's `extra["report"]` is
    the ReportFiles (a partial report after a cancel)."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        request = PredictRequest(model=model, input=folder, out=None, write_maps=False, device=device,
                                 keep_maps=True, report=report)
        yield from _compact_results(request, lambda _record: True, cancel)
    return run


def export_job(folder: Path, info: RunInfo, results: list[CachedResult],
               skipped: list[tuple[Path, str]]) -> Factory:
    """Write a report of results already scored, with the thresholds named in `info`; result = ReportFiles."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        yield from iter_session_report(folder, info, results, skipped, cancel)
    return run


def evaluate_job(models: list[Path], data: Path) -> Factory:
    """Evaluate several models in turn; the last value's result is the list of reports, in order."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        reports: list[dict] = []
        for number, model in enumerate(models, start=1):
            for progress in evaluate_model(EvaluateRequest(model=model, data=data), cancel):
                if progress.phase == "done":
                    reports.append(progress.result)
                else:
                    yield Progress(f"evaluate {number}/{len(models)}", progress.step, progress.total,
                                   message=progress.message)
        yield Progress("done", 1, 1, message=f"evaluated {len(models)} models", result=reports)
    return run


def compare_job(model_a: Path, model_b: Path, index: DatasetIndex) -> Factory:
    """Evaluate both models (labelled data only; phase "evaluated" carries [report A, report B]), then score the
    data with model B so the two can be viewed side by side."""
    def run(cancel: CancelToken) -> Iterator[Progress]:
        if index.has_labels and index.test_records():
            for progress in evaluate_job([model_a, model_b], index.root)(cancel):
                if progress.phase == "done":
                    yield Progress("evaluated", 1, 1, result=progress.result)
                else:
                    yield progress
        yield from predict_job(model_b, index)(cancel)
    return run
