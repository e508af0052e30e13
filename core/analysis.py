"""Small Qt-free helpers for the GUI: thumbnails, compact per-image results, verdict counts, pixel samples,
and which perceptual backbone is available. Pure numpy/OpenCV; no Qt, no model code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from core.data.index import ImageRecord
from core.data.io import ImageReadError, MaskMismatchError, read_image, read_mask
from core.inference import ImageResult
from core.progress import CancelToken, Progress

MAP_SIDE = 256  # cached maps and reconstructions are shrunk so that their long side is at most this
PIXELS_PER_IMAGE = 4096  # random pixels per image kept for live pixel metrics


def shrink(array_hw: np.ndarray, max_side: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """(H,W) or (H,W,C) -> the same, resized so that the long side is at most `max_side`."""
    h, w = array_hw.shape[:2]
    factor = max_side / max(h, w)
    if factor >= 1:
        return array_hw
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(array_hw, size, interpolation=interpolation)


# ----------------------------------------------------------------------------------------------- thumbnails

def thumbnail(path: Path, mask_path: Path | None, size: int) -> np.ndarray:
    """(h,w,3) uint8 RGB, long side `size`; the ground-truth outline drawn in red when a mask exists."""
    image = read_image(path)
    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image
    small = shrink(np.ascontiguousarray(rgb.transpose(1, 2, 0)), size)
    out = np.ascontiguousarray(np.clip(small * 255 + 0.5, 0, 255).astype(np.uint8))
    if mask_path is not None:
        try:
            mask = read_mask(mask_path, path, image.shape[1:])[0]
        except (ImageReadError, MaskMismatchError):
            return out
        small_mask = cv2.resize(mask, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours((small_mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 40, 40), 1)
    return out


def iter_thumbnails(items: Sequence[tuple[Path, Path | None]], size: int,
                    cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Progress per image with result (path, thumbnail or None, reason); unreadable files do not stop it."""
    cancel = cancel or CancelToken()
    for step, (path, mask_path) in enumerate(items, start=1):
        cancel.raise_if_cancelled()
        try:
            result = (path, thumbnail(path, mask_path, size), "")
        except ImageReadError as exc:
            result = (path, None, exc.reason)
        yield Progress("thumbnails", step, len(items), result=result)


# ------------------------------------------------------------------------------------------ cached results

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
    cached.pixel_sample = {name: value.ravel()[pick].astype(np.float32) for name, value in cached.maps.items()}
    labels = cached.mask.ravel()[pick] if cached.mask is not None else np.zeros(pick.size, dtype=bool)
    cached.pixel_sample_labels = labels


def pixel_sample(results: Sequence[CachedResult], map_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels bool, values float32) of the sampled pixels of every image with a known label."""
    parts = [(r.pixel_sample_labels, r.pixel_sample[map_name]) for r in results
             if r.is_defective is not None and map_name in r.pixel_sample and r.pixel_sample_labels is not None]
    if not parts:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# --------------------------------------------------------------------------------------------- verdicts

GOOD, DEFECTIVE, REVIEW = "good", "defective", "review"


def verdicts(scores: np.ndarray, threshold: float, review: tuple[float, float] | None = None) -> np.ndarray:
    """Array of "good" / "defective" / "review" per score: defective iff score >= threshold; with a review
    band (low, high) scores in [low, high) need a person, below low are good, at or above high defective."""
    scores = np.asarray(scores, dtype=np.float64)
    if review is None:
        return np.where(scores >= threshold, DEFECTIVE, GOOD)
    low, high = sorted(review)
    out = np.where(scores >= high, DEFECTIVE, GOOD).astype(object)
    out[(scores >= low) & (scores < high)] = REVIEW
    return out.astype(str)


def verdict_counts(scores: np.ndarray, threshold: float, review: tuple[float, float] | None = None
                   ) -> dict[str, int]:
    scores = np.asarray(scores, dtype=np.float64)
    if review is None:
        defective = int(np.count_nonzero(scores >= threshold))
        return {GOOD: scores.size - defective, DEFECTIVE: defective, REVIEW: 0}
    low, high = sorted(review)
    defective = int(np.count_nonzero(scores >= high))
    review_n = int(np.count_nonzero((scores >= low) & (scores < high)))
    return {GOOD: scores.size - defective - review_n, DEFECTIVE: defective, REVIEW: review_n}


# -------------------------------------------------------------------------------------- perceptual backbone

LPIPS_TRUNKS = ("alexnet-owt-", "vgg16-", "squeezenet1_1-")


def torch_hub_checkpoints() -> Path:
    """`$TORCH_HOME/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints` (torch's default)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(home) / "hub" / "checkpoints"


def available_backbone() -> str:
    """A short sentence for the status bar: the perceptual backbone that will be used."""
    try:
        from core.scoring.perceptual import available_backbone as core_backbone  # noqa: PLC0415
    except ImportError:
        core_backbone = None
    if core_backbone is not None:
        try:
            return str(core_backbone())
        except Exception as exc:  # noqa: BLE001 - a status line must never stop the window from opening
            return f"unknown ({exc})"

    folder = torch_hub_checkpoints()
    if folder.is_dir():
        for name in sorted(p.name for p in folder.iterdir()):
            if name.startswith(LPIPS_TRUNKS) and name.endswith(".pth"):
                return f"LPIPS ({name.split('-')[0]}, local weights)"
    return "EfficientNet-Lite0 (bundled)"
