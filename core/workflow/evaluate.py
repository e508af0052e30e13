"""Evaluate a model file on a labelled test split: image AUROC, pixel AUROC, AUPRO, F1, per-type AUROC,
and precision/recall/F1 at the model's stored label-free thresholds (the honest operating point)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from core.data.index import iter_index_dataset
from core.data.io import read_mask
from core.device import pick_device
from core.inference import image_scores, infer_images
from core.metrics.summary import image_metrics, metrics_at_threshold, pixel_metrics, pixel_metrics_at_threshold
from core.modelfile import load_model
from core.progress import CancelToken, Progress
from core.workflow.common import final, read_batches

METRIC_MAX_SIDE = 640  # maps and masks are compared at most at this size (bsdata's 1130 px -> 640)


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
    labels: list[str] = []
    scores: dict[str, list[float]] = {name: [] for name in meta.map_names}
    maps: dict[str, list[np.ndarray]] = {name: [] for name in meta.map_names}
    masks: list[np.ndarray] = []
    started = time.perf_counter()
    skipped = []
    for batch_records, images, failed in read_batches(records, cancel, "evaluate"):
        skipped += failed
        for record, image, (image_maps, _) in zip(batch_records, images,
                                                  infer_images(model, images, model.config.policy, device)):
            hw = image.shape[1:]
            labels.append(record.label)
            for name, value in image_scores(image_maps, model.config.pooling).items():
                scores[name].append(value)
            if record.label != "good" and record.mask_path is None:
                continue  # a defect without a mask counts for image metrics only
            mask = (read_mask(record.mask_path, record.path, hw)[0] > 0 if record.mask_path
                    else np.zeros(hw, dtype=bool))
            small_mask = None
            for name, value in image_maps.items():
                small, small_mask = metric_resolution(value, mask, request.metric_max_side)
                maps[name].append(small)
            masks.append(small_mask)
        yield Progress("evaluate", len(labels), len(records))
    seconds = time.perf_counter() - started
    has_pixels = any(m.any() for m in masks)
    per_map: dict[str, Any] = {}
    for name in meta.map_names:
        yield Progress("metrics", 0, 1, message=f"computing metrics for map '{name}'")
        result: dict[str, Any] = image_metrics(labels, np.asarray(scores[name]))
        if has_pixels:
            result.update(pixel_metrics(masks, maps[name]))
        image_t, pixel_t = meta.threshold(name, "image"), meta.threshold(name, "pixel")
        if image_t is not None:
            result["at_label_free_threshold"] = metrics_at_threshold(labels, np.asarray(scores[name]), image_t)
        if pixel_t is not None and has_pixels:
            result["pixel_at_label_free_threshold"] = pixel_metrics_at_threshold(masks, maps[name], pixel_t)
        per_map[name] = result
    counts = {"good": labels.count("good"), "defective": len(labels) - labels.count("good")}
    report = {"model": str(Path(request.model).resolve()), "method": meta.method, "preset": meta.preset,
              "data": str(data.resolve()), "default_map": meta.default_map, "counts": counts,
              "skipped": [{"path": str(p), "reason": r} for p, r in skipped] +
                         [{"path": str(s.path), "reason": s.reason} for s in index.skipped],
              "thresholds": meta.thresholds, "ms_per_image": 1000 * seconds / max(len(labels), 1),
              "metric_max_side": request.metric_max_side, "maps": per_map,
              "image_scores": {name: [float(v) for v in values] for name, values in scores.items()},
              "labels": labels}
    yield final("done", 1, f"evaluated {len(labels)} images", report)
