"""Metrics of results already scored (the workbench's compact results, their maps on disk), so that comparing two
models never scores again what is scored: image AUROC and F1-max from the image scores, pixel AUROC and
F1-max from each image's pixel sample, AUPRO from the stored maps (at most AUPRO_SIDE on the long side), and
F1 / false-reject rate at the model's own image threshold. Pure numpy/OpenCV."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from core.data.index import ImageRecord
from core.data.io import ImageReadError, MaskMismatchError, read_mask
from core.metrics import aupro, auroc, f1_at, f1_max
from core.modelfile import ModelMeta
from core.progress import CancelToken
from core.result_store import load_maps
from core.results import CachedResult, pixel_sample, shrink

AUPRO_SIDE = 256  # maps and masks are compared at most at this size for AUPRO


def _aupro(results: Sequence[CachedResult], records: Mapping[Path, ImageRecord], name: str,
           cancel: CancelToken) -> float | None:
    masks, maps = [], []
    for r in results:
        cancel.raise_if_cancelled()
        values = load_maps(r).maps.get(name)
        if values is None:
            return None  # AUPRO needs every test image's map
        small = shrink(values, AUPRO_SIDE)
        mask = np.zeros(small.shape, np.float32)
        record = records.get(r.path)
        if r.is_defective and record is not None and record.mask_path is not None:
            try:
                full = read_mask(record.mask_path, r.path, r.full_hw)[0]
                mask = cv2.resize(full.astype(np.float32), small.shape[::-1], interpolation=cv2.INTER_AREA)
            except (ImageReadError, MaskMismatchError):
                return None
        masks.append(mask >= 0.5)
        maps.append(small)
    try:
        return aupro(masks, maps)
    except ValueError:  # no defect region, or no normal pixel
        return None


def cached_metrics(results: Sequence[CachedResult], records: Mapping[Path, ImageRecord], meta: ModelMeta,
                   map_name: str | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """The comparison's metrics (None where the data cannot give one) of the labelled non-training results."""
    cancel = cancel or CancelToken()
    name = map_name or meta.default_map
    test = [r for r in results if r.split != "train" and r.is_defective is not None and name in r.scores]
    labels = np.array([bool(r.is_defective) for r in test], bool)
    scores = np.array([r.scores[name] for r in test], np.float64)
    out: dict[str, Any] = {"map": name, "images": len(test), "image_auroc": None, "f1_max": None,
                           "pixel_auroc": None, "pixel_f1_max": None, "aupro": None, "label_free_f1": None,
                           "label_free_frr": None}
    if labels.any() and (~labels).any():
        out["image_auroc"] = auroc(labels, scores)
        out["f1_max"] = f1_max(labels, scores)[0]
        threshold = meta.image_threshold(name)
        if threshold is not None:
            at = f1_at(labels, scores, threshold)
            out["label_free_f1"] = at["f1"]
            out["label_free_frr"] = at["fp"] / max(at["fp"] + at["tn"], 1)
        out["aupro"] = _aupro(test, records, name, cancel)
    pixel_labels, pixel_values = pixel_sample(test, name)
    if pixel_labels.any() and (~pixel_labels).any():
        out["pixel_auroc"] = auroc(pixel_labels, pixel_values)
        out["pixel_f1_max"] = f1_max(pixel_labels, pixel_values)[0]
    return out
