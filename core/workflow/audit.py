"""Training-set audit: after training on an unsorted folder, rank the training images by anomaly score and
flag the suspects above the model's label-free image threshold, so a person can look at those first."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from core.data.index import ImageRecord, iter_index_dataset
from core.device import pick_device
from core.inference import image_scores, infer_images
from core.metrics.curves import auroc
from core.models.base import AnomalyModel
from core.modelfile import load_model
from core.progress import CancelToken, Progress
from core.workflow.common import final, read_batches
from core.workflow.heldout import held_out_records
from core.workflow.train import normal_training_records


@dataclass(frozen=True)
class AuditEntry:
    path: Path
    label: str  # as indexed: "good" or "unknown" for an unsorted folder
    score: float
    suspect: bool  # score >= the model's label-free image threshold
    held_out: bool = False  # one of the images the model's thresholds were calibrated on


def audit_training_set(model_path: Path, data: Path | None = None, device: str = "auto",
                       cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Score every training image (generator of Progress); the last value's result is the list of
    AuditEntry, most anomalous first. `data` defaults to the folder the model was trained on."""
    cancel = cancel or CancelToken()
    model, meta = load_model(model_path)
    torch_device = pick_device(device)
    model.to(torch_device)
    folder = Path(data or meta.training.get("data", ""))
    index = None
    for progress in iter_index_dataset(folder, cancel=cancel):
        index = progress.result
        yield progress
    assert index is not None
    records = normal_training_records(index)
    threshold = meta.image_threshold()
    if threshold is None:
        raise ValueError(f"{model_path} stores no image threshold for its map '{meta.default_map}'")
    held = {r.path for r in held_out_records(meta, index.root, records)}
    scored = yield from score_training_images(model, records, meta.default_map, torch_device, cancel)
    entries = sorted((AuditEntry(r.path, r.label, score, score >= threshold, r.path in held)
                      for r, score in scored), key=lambda e: e.score, reverse=True)
    suspects = sum(e.suspect for e in entries)
    yield final("done", 1, f"{suspects} of {len(entries)} training images score above the label-free "
                           f"threshold {threshold:.4g}", entries)


def audit_csv(entries: Sequence[AuditEntry]) -> str:
    """The full ranking as CSV text: file, score, suspect, label, held_out (1 = a calibration image)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "score", "suspect", "label", "held_out"])
    for e in entries:
        writer.writerow([str(e.path), f"{e.score:.6g}", int(e.suspect), e.label, int(e.held_out)])
    return buffer.getvalue()


def score_training_images(model: AnomalyModel, records: list[ImageRecord], map_name: str, device: Any,
                          cancel: CancelToken) -> Iterator[Progress]:
    """(record, image score of `map_name`) for every readable record, in order (generator of Progress;
    returns the list). Unreadable images are left out."""
    scored: list[tuple[ImageRecord, float]] = []
    for batch_records, images, _ in read_batches(records, cancel):
        results = infer_images(model, images, model.config.policy, device)
        scored += [(record, image_scores(maps, model.config.pooling)[map_name])
                   for record, (maps, _) in zip(batch_records, results)]
        yield Progress("audit", len(scored), len(records))
    return scored


def audit_recall(injected: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, Any]:
    """How well an audit finds defective images known to be in a training set (the benchmark's
    contamination runs): of the `injected` ones, how many rank among the top-N suspects (N = their count) and
    how many score at or above the label-free `threshold`, plus the ranking's AUROC (0.5 = no better than
    chance). `injected` and `scores` hold one value per training image."""
    flags = np.asarray(injected, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    count = int(flags.sum())
    top = np.argsort(-values, kind="stable")[:count]
    flagged = values >= threshold
    return {"injected": count, "in_top_n": int(flags[top].sum()), "flagged": int(flagged.sum()),
            "flagged_injected": int((flagged & flags).sum()),
            "ranking_auroc": auroc(flags, values) if 0 < count < len(flags) else None}
