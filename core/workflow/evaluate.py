"""Evaluate a model file on a labelled test split: image AUROC, pixel AUROC, AUPRO, F1, per-type AUROC,
and precision/recall/F1 at the model's stored label-free thresholds (the honest operating point)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from core.data.index import ImageRecord, iter_index_dataset
from core.data.io import ImageReadError, MaskMismatchError, read_mask_noted
from core.device import pick_device
from core.inference import image_scores, infer_images
from core.metrics.summary import image_metrics, metrics_at_threshold, pixel_metrics, pixel_metrics_at_threshold
from core.metrics.thresholds import Threshold
from core.modelfile import load_model
from core.models.base import AnomalyModel
from core.progress import CancelToken, Progress
from core.workflow.common import final, read_batches

# The one comparison resolution of `evaluate` and `bench`: maps and masks at the image's own size, long
# side at most this (magnetic_tile's <= 607 px stay as they are; bsdata's 1130 px -> 640).
METRIC_MAX_SIDE = 640


@dataclass(frozen=True)
class EvaluateRequest:
    model: Path
    data: Path | None = None  # default: the data the model was trained on
    device: str = "auto"
    metric_max_side: int = METRIC_MAX_SIDE


def metric_resolution(map_hw: np.ndarray, mask: np.ndarray | None, max_side: int
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """Shrink a (H,W) map (area average) and mask (area average, then >= 0.5) so the long side <= max_side."""
    h, w = map_hw.shape
    factor = max_side / max(h, w)
    if factor >= 1:
        return map_hw, mask
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(map_hw, size, interpolation=cv2.INTER_AREA)
    small_mask = None
    if mask is not None:
        small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return small, small_mask


THRESHOLD_KINDS = ("image", "image_synthetic", "pixel", "pixel_synthetic")


@dataclass
class MaskNotes:
    """Which defect images give pixel metrics, and why the others do not (by file name)."""

    defect_images: int = 0
    used: int = 0
    without_mask: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # no defect pixel after binarizing: left out
    unusable: list[str] = field(default_factory=list)  # wrong size or unreadable: left out, with the reason
    zero_one: list[str] = field(default_factory=list)  # 0/1-valued masks, read as 1 = defect (used)

    def summary(self) -> str:
        """E.g. "pixel metrics from 5 of 6 defect images; no mask: a.png"."""
        parts = [f"pixel metrics from {self.used} of {self.defect_images} defect images"]
        for label, names in (("no mask", self.without_mask), ("mask empty after binarizing", self.empty),
                             ("mask unusable", self.unusable), ("0/1 mask read as 1 = defect", self.zero_one)):
            if names:
                parts.append(f"{label}: " + ", ".join(names[:5]) + (f" and {len(names) - 5} more"
                                                                     if len(names) > 5 else ""))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"defect_images": self.defect_images, "with_pixel_metrics": self.used,
                "without_mask": self.without_mask, "empty_mask": self.empty, "unusable_mask": self.unusable,
                "zero_one_mask": self.zero_one, "summary": self.summary()}


@dataclass
class TestScores:
    """Image scores of every test image and, for images usable at pixel level, maps and masks at metric
    resolution (a defect without a mask counts for image metrics only)."""

    labels: list[str] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    masks: list[np.ndarray] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)  # one per label
    map_paths: list[Path] = field(default_factory=list)  # one per mask
    mask_notes: MaskNotes = field(default_factory=MaskNotes)
    mean_scores: dict[str, list[float]] = field(default_factory=dict)  # each map's mean, one per label

    @property
    def has_pixels(self) -> bool:
        return any(m.any() for m in self.masks)

    def subset(self, keep: set[Path]) -> TestScores:
        """The scores of the images whose path is in `keep` (e.g. a test set shared by several runs)."""
        rows = [i for i, p in enumerate(self.paths) if p in keep]
        pixel_rows = [i for i, p in enumerate(self.map_paths) if p in keep]
        return TestScores([self.labels[i] for i in rows],
                          {n: [v[i] for i in rows] for n, v in self.scores.items()},
                          {n: [v[i] for i in pixel_rows] for n, v in self.maps.items()},
                          [self.masks[i] for i in pixel_rows], [], [self.paths[i] for i in rows],
                          [self.map_paths[i] for i in pixel_rows], MaskNotes(),
                          {n: [v[i] for i in rows] for n, v in self.mean_scores.items()})


def score_test_set(model: AnomalyModel, records: list[ImageRecord], device: Any, metric_max_side: int,
                   cancel: CancelToken) -> Iterator[Progress]:
    """Score labelled test images (generator of Progress; returns TestScores)."""
    result = TestScores()
    for batch_records, images, failed in read_batches(records, cancel):
        result.skipped += failed
        for record, image, (image_maps, _) in zip(batch_records, images,
                                                  infer_images(model, images, model.config.policy, device)):
            result.labels.append(record.label)
            result.paths.append(record.path)
            for name, value in image_scores(image_maps, model.config.pooling).items():
                result.scores.setdefault(name, []).append(value)
            for name, value in image_maps.items():  # mean pooling, for every image (masks or not)
                result.mean_scores.setdefault(name, []).append(float(value.mean()))
            hw = image.shape[1:]
            mask = np.zeros(hw, dtype=bool) if record.label == "good" else _defect_mask(record, hw,
                                                                                          result.mask_notes)
            if mask is None:
                continue
            small_mask = mask
            for name, value in image_maps.items():
                small, small_mask = metric_resolution(value, mask, metric_max_side)
                result.maps.setdefault(name, []).append(small)
            result.masks.append(small_mask)
            result.map_paths.append(record.path)
        yield Progress("evaluate", len(result.labels), len(records))
    return result


def _defect_mask(record: ImageRecord, hw: tuple[int, int], notes: MaskNotes) -> np.ndarray | None:
    """The (H,W) bool mask of a defect image, or None (noted by name) when it gives no pixel ground truth."""
    notes.defect_images += 1
    name = record.path.name
    if record.mask_path is None:
        notes.without_mask.append(name)
        return None
    try:
        mask, note = read_mask_noted(record.mask_path, record.path, hw)
    except (MaskMismatchError, ImageReadError) as exc:
        notes.unusable.append(f"{record.mask_path.name} ({exc})")
        return None
    if note and note.startswith("empty"):
        notes.empty.append(record.mask_path.name)
        return None
    if note:
        notes.zero_one.append(record.mask_path.name)
    notes.used += 1
    return mask[0] > 0


def map_metrics(test: TestScores, name: str, thresholds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Image and pixel metrics of one map, plus precision/recall/F1 and the false-reject rate of good test
    parts at each stored label-free threshold (`thresholds` = {kind: {"value", "how", ...}}, kinds as in
    THRESHOLD_KINDS), with its `degenerate` flag (and `reason`) and the false-reject rate it had on the
    held-out good images (`calibration_false_reject_rate`)."""
    scores = np.asarray(test.scores[name])
    result: dict[str, Any] = image_metrics(test.labels, scores)
    if test.has_pixels:
        result.update(pixel_metrics(test.masks, test.maps[name]))
    if len(test.mean_scores.get(name, [])) == len(test.labels):
        # Image scores by mean pooling beside the model's own pooling (TrustMAE reports both), from every
        # test image, including defect images whose mask is missing or unusable.
        mean_pooled = np.asarray(test.mean_scores[name])
        result["image_auroc_mean_pool"] = image_metrics(test.labels, mean_pooled)["image_auroc"]
    at: dict[str, Any] = {}
    for kind in THRESHOLD_KINDS:
        if kind not in thresholds:
            continue
        entry = thresholds[kind]
        threshold = Threshold.from_dict(entry)
        if kind.startswith("image"):
            at[kind] = metrics_at_threshold(test.labels, scores, threshold)
        elif test.has_pixels:
            at[kind] = _pixel_kind(test, name, threshold)
        else:
            continue
        at[kind]["degenerate"] = bool(entry.get("degenerate", False))
        if at[kind]["degenerate"]:
            at[kind]["reason"] = entry.get("reason", "degenerate calibration")
        if "false_reject_rate" in entry:
            at[kind]["calibration_false_reject_rate"] = entry["false_reject_rate"]
    result["at_label_free_thresholds"] = at
    return result


def _pixel_kind(test: TestScores, name: str, threshold: Threshold) -> dict[str, Any]:
    """Pixel precision/recall/F1 at a pixel threshold, the share of good pixels it flags
    (pixel_false_positive_rate) and the share of good test images with any pixel at or above it
    (false_reject_rate: a defect region on a good part), both at metric resolution."""
    out = pixel_metrics_at_threshold(test.masks, test.maps[name], threshold)
    out["pixel_false_positive_rate"] = out.pop("false_reject_rate")
    label_of = dict(zip(test.paths, test.labels))
    good = [m for m, p in zip(test.maps[name], test.map_paths) if label_of.get(p) == "good"]
    hits = sum(float(m.max()) >= threshold.value for m in good)
    out["false_reject_rate"] = hits / len(good) if good else 0.0
    return out


def evaluate_model(request: EvaluateRequest, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Generator of Progress; the last value's result is a JSON-friendly dict of metrics per map."""
    cancel = cancel or CancelToken()
    model, meta = load_model(request.model)
    device = pick_device(request.device)
    model.to(device)
    data = Path(request.data or meta.training.get("data", ""))
    index = None
    for progress in iter_index_dataset(data, cancel=cancel):
        index = progress.result
        yield progress
    assert index is not None
    records = [r for r in index.test_records() if r.label != "unknown"]
    if not records or not index.has_labels:
        raise ValueError(f"{data} has no labelled test images (expected test/good and test/<defect type>/ "
                         "folders); use `defectlab predict` for unlabelled folders")
    started = time.perf_counter()
    test = yield from score_test_set(model, records, device, request.metric_max_side, cancel)
    seconds = time.perf_counter() - started
    per_map: dict[str, Any] = {}
    for name in meta.map_names:
        yield Progress("metrics", 0, 1, message=f"computing metrics for map '{name}'")
        per_map[name] = map_metrics(test, name, meta.thresholds.get(name, {}))
    labels = test.labels
    counts = {"good": labels.count("good"), "defective": len(labels) - labels.count("good")}
    report = {"model": str(Path(request.model).resolve()), "method": meta.method, "preset": meta.preset,
              "data": str(data.resolve()), "default_map": meta.default_map, "counts": counts,
              "skipped": [{"path": str(p), "reason": r} for p, r in test.skipped] +
                         [{"path": str(s.path), "reason": s.reason} for s in index.skipped],
              "thresholds": meta.thresholds, "ms_per_image": 1000 * seconds / max(len(labels), 1),
              "metric_max_side": request.metric_max_side, "maps": per_map,
              "pixel_ground_truth": test.mask_notes.to_dict(),
              "image_scores": {name: [float(v) for v in values] for name, values in test.scores.items()},
              "labels": labels}
    yield final("done", 1, f"evaluated {len(labels)} images", report)
