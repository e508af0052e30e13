"""Compact per-image results the workbench keeps in memory: scores, a fixed random sample of pixels per image
for live pixel metrics, and either shrunk maps, reconstruction and mask or the file holding them at full
resolution (core.result_store). Pure numpy/OpenCV."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from core.data.index import ImageRecord
from core.data.io import ImageReadError, MaskMismatchError, read_mask
from core.inference import ImageResult

MAP_SIDE = 256  # cached maps and reconstructions are shrunk so that their long side is at most this
PIXELS_PER_IMAGE = 1024  # random pixels per image kept (float16) for live pixel metrics
PIXEL_BUDGET = 500_000  # pixels used at most by live pixel metrics over all images (an even subsample)


def shrink(array_hw: np.ndarray, max_side: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """(H,W) or (H,W,C) -> the same, resized so that the long side is at most `max_side`."""
    h, w = array_hw.shape[:2]
    factor = max_side / max(h, w)
    if factor >= 1:
        return array_hw
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(array_hw, size, interpolation=interpolation)


@dataclass
class CachedResult:
    """One scored image, small enough to keep thousands in memory: maps (h,w) float16 and the
    reconstruction (h,w,C) uint8 at most MAP_SIDE on the long side; `full_hw` is the image's size."""

    path: Path
    label: str
    split: str
    scores: dict[str, float]
    full_hw: tuple[int, int]
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    reconstruction: np.ndarray | None = None
    mask: np.ndarray | None = None  # (h,w) bool at the maps' size
    pixel_sample: dict[str, np.ndarray] = field(default_factory=dict)  # map -> sampled values
    pixel_sample_labels: np.ndarray | None = None  # bool, aligned with pixel_sample
    maps_file: Path | None = None  # maps and reconstruction at full resolution on disk (core.result_store)
    has_mask: bool = False  # a ground-truth mask was read for this image

    @property
    def is_defective(self) -> bool | None:
        return None if self.label == "unknown" else self.label != "good"


def compact_result(result: ImageResult, record: ImageRecord | None, keep_maps: bool,
                   max_side: int = MAP_SIDE, seed: int = 0) -> CachedResult:
    """Shrink an ImageResult's maps (float16) and reconstruction (uint8); read and shrink its mask."""
    first = next(iter(result.maps.values()), None)
    full_hw = tuple(first.shape) if first is not None else (0, 0)
    cached = CachedResult(result.path, result.label, record.split if record else "unsplit",
                          dict(result.scores), full_hw)  # type: ignore[arg-type]
    if not keep_maps or first is None:
        return cached
    cached.maps = {name: shrink(value.astype(np.float32), max_side).astype(np.float16)
                   for name, value in result.maps.items()}
    small_hw = next(iter(cached.maps.values())).shape
    if result.reconstruction is not None:
        recon = np.ascontiguousarray(result.reconstruction.transpose(1, 2, 0))
        recon = cv2.resize(recon, (small_hw[1], small_hw[0]), interpolation=cv2.INTER_AREA)
        cached.reconstruction = np.clip(recon * 255 + 0.5, 0, 255).astype(np.uint8).reshape(*small_hw, -1)
    if record is not None and record.mask_path is not None:
        try:
            mask = read_mask(record.mask_path, record.path, full_hw)[0]
            cached.mask = cv2.resize(mask, (small_hw[1], small_hw[0]), interpolation=cv2.INTER_AREA) >= 0.5
            cached.has_mask = True
        except (ImageReadError, MaskMismatchError):
            cached.mask = None
    _sample_pixels(cached, seed)
    return cached


def _sample_pixels(cached: CachedResult, seed: int) -> None:
    """A fixed random subset of pixels per image (all defect pixels are kept, up to the same budget)."""
    size = next(iter(cached.maps.values())).size
    rng = np.random.default_rng([seed, size])
    pick = rng.choice(size, size=min(size, PIXELS_PER_IMAGE), replace=False)
    if cached.mask is not None:
        defect = np.flatnonzero(cached.mask.ravel())
        if defect.size > PIXELS_PER_IMAGE:
            defect = rng.choice(defect, size=PIXELS_PER_IMAGE, replace=False)
        pick = np.union1d(pick, defect)
    cached.pixel_sample = {name: value.ravel()[pick].astype(np.float16) for name, value in cached.maps.items()}
    labels = cached.mask.ravel()[pick] if cached.mask is not None else np.zeros(pick.size, dtype=bool)
    cached.pixel_sample_labels = labels


def pixel_sample(results: Sequence[CachedResult], map_name: str, labelled_only: bool = True,
                 budget: int = PIXEL_BUDGET) -> tuple[np.ndarray, np.ndarray]:
    """(labels bool, values float32) of the sampled pixels of every image (with a known label, unless
    `labelled_only` is False); an even subsample of every image's pixels when there are more than `budget`."""
    parts = [(r.pixel_sample_labels, r.pixel_sample[map_name]) for r in results
             if (r.is_defective is not None or not labelled_only) and map_name in r.pixel_sample
             and r.pixel_sample_labels is not None]
    if not parts:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float32)
    total = sum(p[1].size for p in parts)
    step = max(1, -(-total // budget))
    return (np.concatenate([p[0][::step] for p in parts]),
            np.concatenate([p[1][::step] for p in parts]).astype(np.float32))
