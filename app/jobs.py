"""The long jobs the GUI runs, as generators of Progress (they run in a Worker's thread).

Each one is a thin wrapper around a core workflow; nothing here touches Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from core.analysis import CachedResult, compact_result
from core.data.demo import demo_dataset
from core.data.index import DatasetIndex, iter_index_dataset, split_normals
from core.modelfile import read_meta
from core.progress import CancelToken, Progress
from core.workflow import EvaluateRequest, PredictRequest, evaluate_model, predict_folder
from core.workflow.train import normal_training_records

RESULT_BATCH = 16  # cached results handed to the GUI together

Factory = Callable[[CancelToken], Iterator[Progress]]


def index_job(folder: Path) -> Factory:
    def run(cancel: CancelToken) -> Iterator[Progress]:
        yield from iter_index_dataset(folder, cancel=cancel)
    return run


def demo_job(category: str = "fabric") -> Factory:
    def run(cancel: CancelToken) -> Iterator[Progress]:
        yield Progress("demo", 0, 1, message=f"preparing the bundled demo dataset '{category}' (first use only)")
        path = demo_dataset(category)
        cancel.raise_if_cancelled()
        yield Progress("done", 1, 1, message=f"demo dataset at {path}", result=path)
    return run


def predict_job(model: Path, index: DatasetIndex, device: str = "auto") -> Factory:
    """Score every image of the dataset. Maps are kept (shrunk) for test / unsplit images and for training
    images the model held out; other training images keep only their scores. Progress values carry
    `extra["cached"]`: a list of new CachedResult every RESULT_BATCH images."""
    records = {r.path: r for r in index.records}
    seed = int(read_meta(model).training.get("seed", 0))
    _, held_out = split_normals(normal_training_records(index), 0.1, seed)
    keep_train = {r.path for r in held_out}

    def run(cancel: CancelToken) -> Iterator[Progress]:
        batch: list[CachedResult] = []
        request = PredictRequest(model=model, input=index.root, out=None, write_maps=False, device=device,
                                 keep_maps=True)
        for progress in predict_folder(request, cancel):
            result = progress.result
            if progress.phase == "predict" and result is not None:
                record = records.get(result.path)
                keep = record is None or record.split != "train" or record.path in keep_train
                batch.append(compact_result(result, record, keep_maps=keep))
                result.maps, result.reconstruction = {}, None  # the compact copy replaces them
                if len(batch) >= RESULT_BATCH:
                    yield Progress(progress.phase, progress.step, progress.total, extra={"cached": batch})
                    batch = []
                continue
            if progress.phase in ("done", "cancelled"):
                yield Progress(progress.phase, progress.step, progress.total, message=progress.message,
                               extra={"cached": batch})
                batch = []
            else:
                yield Progress(progress.phase, progress.step, progress.total, message=progress.message)
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
