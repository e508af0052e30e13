"""Artificial anomalies with exact masks, for synthetic validation splits and self-supervised training.

- `draem`: a Perlin-noise region filled with a procedural texture, blended with opacity 1 - beta
  (DRAEM, Zavrtanik et al. 2021; procedural textures stand in for DTD, which is not available here).
- `gaaga`: CMA-AE Eq. 1, I_an = paste(I_p, crop(I_nt), blur(resize(crop(I_p)))): a texture crop and a
  blurred, rescaled crop of a normal image pasted at random places.
- `cutpaste`: a rectangle of the image itself, colour-jittered, pasted elsewhere (Li et al. 2021).

Every function takes `image` float32 (C,H,W) in [0,1] and a numpy Generator, and returns
`(anomalous (C,H,W) float32, mask (H,W) bool)`. Contract (tested): pixels outside `mask` are
bit-identical to the input; `mask` is exactly the set of pixels that were replaced or blended, and it is
never empty. Textures come from a `TextureBank` generated once, so a 256x256 anomaly costs about a
millisecond or two.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import cv2
import numpy as np

from core.synth.noise import perlin_mask
from core.synth.textures import random_texture

__all__ = ["TextureBank", "default_bank", "draem", "gaaga", "cutpaste", "ANOMALIES", "make_anomaly"]

MASK_DOWNSCALE = 4  # Perlin masks are smooth: draw them at 1/4 size and upsample (16x less work)


class TextureBank:
    """A few procedural textures (3,S,S) made once and reused through random crops, flips and rotations."""

    def __init__(self, size: int = 256, count: int = 8, seed: int = 0) -> None:
        rng = np.random.default_rng([seed, 7919])
        self.size = size
        self.textures = [random_texture((size, size), rng, channels=3) for _ in range(count)]

    def sample(self, hw: tuple[int, int], channels: int, rng: np.random.Generator) -> np.ndarray:
        """A texture patch (channels,h,w) float32 in [0,1]; resized up when larger than the bank's size."""
        h, w = hw
        tex = self.textures[int(rng.integers(len(self.textures)))]
        tex = np.rot90(tex, int(rng.integers(4)), axes=(1, 2))
        if h > self.size or w > self.size:
            factor = max(h, w) / self.size
            side = int(np.ceil(self.size * factor))
            tex = np.stack([cv2.resize(np.ascontiguousarray(c), (side, side)) for c in tex])
        top = int(rng.integers(0, tex.shape[1] - h + 1))
        left = int(rng.integers(0, tex.shape[2] - w + 1))
        patch = tex[:, top:top + h, left:left + w]
        if channels == 1:
            patch = (0.299 * patch[0] + 0.587 * patch[1] + 0.114 * patch[2])[None]
        return np.ascontiguousarray(patch, dtype=np.float32)


@lru_cache(maxsize=1)
def default_bank() -> TextureBank:
    """The one shared default TextureBank (made on first use)."""
    return TextureBank()


def _bank(bank: TextureBank | None) -> TextureBank:
    return bank if bank is not None else default_bank()


def _check(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"anomalies take images (C,H,W) with C = 1 or 3, got shape {image.shape}")
    return image.astype(np.float32, copy=False)


def draem(image: np.ndarray, rng: np.random.Generator, bank: TextureBank | None = None,
          beta_range: tuple[float, float] = (0.1, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Perlin region filled with a texture: out = (1-M) I + M ((1-beta) A + beta I). beta is capped
    below 1 so that the region always changes."""
    image = _check(image)
    c, h, w = image.shape
    mask = perlin_mask((h, w), rng, downscale=MASK_DOWNSCALE)
    texture = _bank(bank).sample((h, w), c, rng)
    beta = np.float32(rng.uniform(beta_range[0], min(beta_range[1], 0.8)))
    out = image.copy()
    out[:, mask] = (1 - beta) * texture[:, mask] + beta * image[:, mask]
    return out, mask


def _box(h: int, w: int, rng: np.random.Generator, area: tuple[float, float], aspect: tuple[float, float]
         ) -> tuple[int, int]:
    """A random rectangle (height, width) covering `area` of the image with log-uniform aspect ratio."""
    a = rng.uniform(*area) * h * w
    ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
    bh = int(np.clip(round(np.sqrt(a * ratio)), 2, h - 1))
    bw = int(np.clip(round(np.sqrt(a / ratio)), 2, w - 1))
    return bh, bw


def _paste(out: np.ndarray, mask: np.ndarray, patch: np.ndarray, rng: np.random.Generator) -> None:
    """Paste `patch` (C,ph,pw) at a random place of `out` (C,H,W) in place and mark it in `mask`."""
    _, ph, pw = patch.shape
    top = int(rng.integers(0, out.shape[1] - ph + 1))
    left = int(rng.integers(0, out.shape[2] - pw + 1))
    out[:, top:top + ph, left:left + pw] = patch
    mask[top:top + ph, left:left + pw] = True


def gaaga(image: np.ndarray, rng: np.random.Generator, bank: TextureBank | None = None,
          normals: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CMA-AE Eq. 1. A texture crop (the stand-in for an ImageNet crop) and a blurred, resized crop of a
    normal image (another one from `normals` when given, else this one) pasted at random places."""
    image = _check(image)
    c, h, w = image.shape
    out, mask = image.copy(), np.zeros((h, w), bool)
    bh, bw = _box(h, w, rng, (0.01, 0.06), (0.3, 3.3))
    _paste(out, mask, _bank(bank).sample((bh, bw), c, rng), rng)
    # Crop of a normal image, rescaled (so the network learns to repair, not to deblur) and blurred.
    source = _check(normals[int(rng.integers(len(normals)))]) if normals else image
    if source.shape[0] != c:
        source = np.repeat(source[:1], c, axis=0) if c == 3 else source.mean(axis=0, keepdims=True)
    ch, cw = _box(*source.shape[1:], rng, (0.005, 0.04), (0.3, 3.3))
    top = int(rng.integers(0, source.shape[1] - ch + 1))
    left = int(rng.integers(0, source.shape[2] - cw + 1))
    crop = source[:, top:top + ch, left:left + cw]
    scale = rng.uniform(0.5, 2.0)
    th, tw = min(h - 1, max(2, round(ch * scale))), min(w - 1, max(2, round(cw * scale)))
    sigma = float(rng.uniform(1.0, 3.0))
    patch = np.stack([cv2.GaussianBlur(cv2.resize(np.ascontiguousarray(p), (tw, th)), (0, 0), sigma)
                      for p in crop])
    _paste(out, mask, patch, rng)
    return out, mask


def cutpaste(image: np.ndarray, rng: np.random.Generator, bank: TextureBank | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """A rectangle (2-15 % of the area) cut from the image, brightness/contrast-jittered, pasted elsewhere.
    The jitter keeps the patch from matching its target exactly on flat surfaces."""
    image = _check(image)
    c, h, w = image.shape
    bh, bw = _box(h, w, rng, (0.02, 0.15), (0.3, 3.3))
    top = int(rng.integers(0, h - bh + 1))
    left = int(rng.integers(0, w - bw + 1))
    patch = image[:, top:top + bh, left:left + bw]
    gain = np.float32(rng.uniform(0.8, 1.2))
    shift = np.float32(rng.uniform(0.04, 0.12) * rng.choice([-1.0, 1.0]))
    patch = np.clip((patch - patch.mean()) * gain + patch.mean() + shift, 0.0, 1.0)
    out, mask = image.copy(), np.zeros((h, w), bool)
    _paste(out, mask, patch, rng)
    return out, mask


Anomaly = Callable[..., tuple[np.ndarray, np.ndarray]]
ANOMALIES: dict[str, Anomaly] = {"draem": draem, "gaaga": gaaga, "cutpaste": cutpaste}


def make_anomaly(image: np.ndarray, rng: np.random.Generator, kind: str = "mixed",
                 bank: TextureBank | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """One anomaly of `kind` ("draem", "gaaga", "cutpaste", or "mixed": one of them at random).
    Returns (image (C,H,W), mask (H,W) bool, the kind used)."""
    if kind == "mixed":
        kind = list(ANOMALIES)[int(rng.integers(len(ANOMALIES)))]
    if kind not in ANOMALIES:
        raise ValueError(f"unknown anomaly {kind!r}; choose one of mixed, {', '.join(ANOMALIES)}")
    out, mask = ANOMALIES[kind](image, rng, bank)
    return out, mask, kind
