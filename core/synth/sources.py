"""Anomaly source material and the plain replacement of a Perlin region by it (NDP-Net Eq. 1):

    I_ad = I_o * (1 - M) + I_n * M

I_n, the "natural image" of the paper (an ImageNet crop; none is available offline), comes from one of:
- `TextureBank` procedural textures (`core.synth.anomalies`),
- crops of other images of the same product (or of a user's folder of photos), heavily augmented so a
  crop of a normal image still differs from what it covers (CMA-AE's "blurred normal patch" idea).
Every source patch gets three of DRAEM's augmentations (`augment_source`). Masks are DRAEM's thresholded,
rotated Perlin noise (`core.synth.noise.perlin_mask`). Arrays are float32 (C,H,W) in [0,1].
"""

from __future__ import annotations

import cv2
import numpy as np

from core.synth.anomalies import MASK_DOWNSCALE, TextureBank, default_bank
from core.synth.noise import perlin_mask

__all__ = ["augment_source", "crop_source", "replace_region", "perlin_replacement"]


def _gamma(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x ** np.float32(rng.uniform(0.5, 2.0))


def _multiply_add(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x * np.float32(rng.uniform(0.8, 1.2)) + np.float32(rng.uniform(-0.12, 0.12))


def _sharpen(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred = np.stack([cv2.GaussianBlur(c, (0, 0), 1.0) for c in x])
    return x + np.float32(rng.uniform(0.5, 2.0)) * (x - blurred)


def _solarize(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(x > np.float32(rng.uniform(0.3, 0.8)), 1.0 - x, x)


def _posterize(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    levels = float(2 ** int(rng.integers(2, 5)))
    return np.floor(x * levels) / levels


def _invert(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1.0 - x


def _autocontrast(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, high = float(x.min()), float(x.max())
    return (x - low) / max(high - low, 1e-6)


def _rotate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[1:]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), float(rng.uniform(-45.0, 45.0)), 1.0)
    return np.stack([cv2.warpAffine(c, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101) for c in x])


# DRAEM's list without hue/saturation (meaningless for grey images) and histogram equalisation (close to
# autocontrast on these crops).
_AUGMENTATIONS = (_gamma, _multiply_add, _sharpen, _solarize, _posterize, _invert, _autocontrast, _rotate)


def augment_source(patch: np.ndarray, rng: np.random.Generator, count: int = 3) -> np.ndarray:
    """`count` distinct random augmentations of a source patch (C,H,W) in [0,1], applied in random order."""
    out = np.ascontiguousarray(patch, dtype=np.float32)
    for i in rng.choice(len(_AUGMENTATIONS), size=count, replace=False):
        out = np.clip(_AUGMENTATIONS[int(i)](out, rng), 0.0, 1.0).astype(np.float32)
    return out


def crop_source(images: list[np.ndarray], hw: tuple[int, int], channels: int, rng: np.random.Generator
                ) -> np.ndarray:
    """A random image of `images` (each (C,H,W) in [0,1]), a random crop of 1/4 to all of its side, resized
    to `hw` and blurred a little: (channels,h,w) float32. Channels are converted when they differ."""
    image = images[int(rng.integers(len(images)))]
    if image.shape[0] != channels:
        image = np.repeat(image[:1], 3, axis=0) if channels == 3 else image.mean(axis=0, keepdims=True)
    side = max(2, int(min(image.shape[1:]) * rng.uniform(0.25, 1.0)))
    top = int(rng.integers(0, image.shape[1] - side + 1))
    left = int(rng.integers(0, image.shape[2] - side + 1))
    crop = image[:, top:top + side, left:left + side]
    sigma = float(rng.uniform(0.5, 2.0))
    return np.stack([cv2.GaussianBlur(cv2.resize(np.ascontiguousarray(c), hw[::-1]), (0, 0), sigma)
                     for c in crop]).astype(np.float32)


def replace_region(image: np.ndarray, source: np.ndarray, mask: np.ndarray, beta: float = 0.0) -> np.ndarray:
    """Eq. 1: `image` (C,H,W) with the pixels of `mask` (H,W) bool taken from `source` (C,H,W), blended
    (1 - beta) * source + beta * image (beta = 0, the paper's full replacement; DRAEM draws beta < 1)."""
    out = image.astype(np.float32, copy=True)
    out[:, mask] = (1.0 - beta) * source[:, mask] + beta * image[:, mask]
    return out


def perlin_replacement(image: np.ndarray, rng: np.random.Generator, source: str = "procedural",
                       images: list[np.ndarray] | None = None, bank: TextureBank | None = None,
                       opacity_max: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One Eq. 1 anomaly on `image` (C,H,W): a DRAEM Perlin mask (never empty) filled with augmented source
    material. `source` "procedural" uses `bank` (a default one when None); "images" crops `images`.
    beta ~ U(0, opacity_max). Returns (anomalous (C,H,W) float32, mask (H,W) bool)."""
    c, h, w = image.shape
    mask = perlin_mask((h, w), rng, downscale=MASK_DOWNSCALE)
    if source == "procedural":
        patch = (bank or default_bank()).sample((h, w), c, rng)
    elif source == "images":
        if not images:
            raise ValueError("an 'images' anomaly source needs at least one image")
        patch = crop_source(images, (h, w), c, rng)
    else:
        raise ValueError(f"unknown anomaly source {source!r}; choose procedural or images")
    beta = float(rng.uniform(0.0, opacity_max)) if opacity_max > 0 else 0.0
    return replace_region(image, augment_source(patch, rng), mask, beta), mask
