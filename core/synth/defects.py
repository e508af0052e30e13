"""Synthetic surface defects drawn onto a texture, each returning its exact ground-truth mask.

Every function takes `image` float32 (C, H, W) in [0, 1] (a (H, W) image is accepted too and
returned as (H, W)) and a numpy Generator, and returns `(new_image, mask)` with `mask` bool
(H, W). Contract, relied on by the evaluation code and tested:
  * pixels outside `mask` are bit-identical to the input;
  * every pixel inside `mask` changed by at least `MIN_DELTA` in some channel.
The mask is the defect's drawing footprint (its soft alpha above a cut-off); pixels the alpha
barely touches are left untouched instead of being "changed invisibly".
Sizes are relative to a 256 px image and scale with min(H, W).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from core.synth.noise import fractal_noise, perlin_noise

__all__ = ["scratch", "spot", "crack", "stain", "DEFECTS", "MIN_DELTA"]

MIN_DELTA = 0.03  # smallest change (in [0, 1] units) a masked pixel must show (~8 grey levels)
_PUSH = 0.035  # what weak pixels get; a bit above MIN_DELTA so float rounding cannot undercut it


def _apply(image: np.ndarray, delta: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add `delta` (C, H, W) inside `mask` (H, W) only, then enforce the visibility contract.

    `image` may be (C, H, W) or (H, W); the result has the same shape, float32 in [0, 1].
    """
    flat = image.ndim == 2
    img = image[None] if flat else image
    img = img.astype(np.float32, copy=False)
    out = img.copy()
    out[:, mask] = np.clip(img[:, mask] + delta[:, mask], 0.0, 1.0)
    # Soft alpha edges or clipping at 0/1 can leave a masked pixel almost unchanged: push those
    # by _PUSH in the defect's own direction, or the other way where that would clip in every
    # channel (a pixel cannot be both all-black and all-white, so one way always works).
    weak = mask & (np.abs(out - img).max(axis=0) < MIN_DELTA)
    sign = np.sign(delta.sum(axis=0))
    sign[sign == 0] = 1.0
    sign[(sign < 0) & (img.max(axis=0) < _PUSH)] = 1.0
    sign[(sign > 0) & (img.min(axis=0) > 1.0 - _PUSH)] = -1.0
    out[:, weak] = np.clip(img[:, weak] + np.float32(_PUSH) * sign[weak], 0.0, 1.0)
    return (out[0] if flat else out), mask


def _footprint(alpha: np.ndarray, cut: float) -> np.ndarray:
    """Mask (H, W) of alpha above `cut`; never empty (keeps the peak pixel on tiny images)."""
    mask = alpha > cut
    if not mask.any():
        mask.flat[int(np.argmax(alpha))] = True
    return mask


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[0]


def _scale(image: np.ndarray) -> float:
    return min(image.shape[-2:]) / 256.0


def _point(image: np.ndarray, rng: np.random.Generator, margin: float) -> np.ndarray:
    """Random (x, y) at least `margin` (fraction of the size) away from the borders."""
    h, w = image.shape[-2:]
    return np.array([rng.uniform(margin * w, (1 - margin) * w), rng.uniform(margin * h, (1 - margin) * h)])


def _draw_path(shape: tuple[int, int], points: np.ndarray, thickness: int, aa: bool) -> np.ndarray:
    """Rasterise a polyline of (x, y) points; returns coverage (H, W) float32 in [0, 1]."""
    canvas = np.zeros(shape, dtype=np.uint8)
    pts = np.round(points * 16).astype(np.int32).reshape(-1, 1, 2)  # 4 bits of sub-pixel precision
    cv2.polylines(canvas, [pts], False, 255, thickness, cv2.LINE_AA if aa else cv2.LINE_8, shift=4)
    return canvas.astype(np.float32) / 255.0


def _blob_distance(image: np.ndarray, rng: np.random.Generator, radius: float, wobble: float) -> np.ndarray:
    """Normalised distance (H, W) to a random rotated ellipse with a noisy outline (1 = edge)."""
    h, w = image.shape[-2:]
    cx, cy = _point(image, rng, margin=0.08)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    dx, dy = xs - np.float32(cx), ys - np.float32(cy)
    a = dx * np.float32(np.cos(theta)) + dy * np.float32(np.sin(theta))
    b = -dx * np.float32(np.sin(theta)) + dy * np.float32(np.cos(theta))
    rx, ry = radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.5, 1.0)
    dist = np.sqrt((a / np.float32(rx)) ** 2 + (b / np.float32(ry)) ** 2)
    res = max(2, round(min(h, w) / max(radius, 1.0) * 1.5))  # outline bumps ~ blob-sized
    return dist + np.float32(wobble) * fractal_noise((h, w), (res, res), rng, octaves=2)


def scratch(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thin, slightly curved bright or dark line (tool mark), fading along its length."""
    h, w = image.shape[-2:]
    s = _scale(image)
    start = _point(image, rng, margin=0.1)
    length = rng.uniform(0.12, 0.35) * min(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    end = start + length * np.array([np.cos(angle), np.sin(angle)])
    bow = rng.normal(0, 0.12) * length * np.array([-np.sin(angle), np.cos(angle)])
    t = np.linspace(0.0, 1.0, 24)[:, None]
    control = (start + end) / 2 + bow
    points = (1 - t) ** 2 * start + 2 * t * (1 - t) * control + t**2 * end  # quadratic Bezier
    points = np.clip(points, 0, [w - 1, h - 1])
    thickness = max(1, round(rng.choice([1, 2, 2]) * s))
    coverage = _draw_path((h, w), points, thickness, aa=True)
    # Scratches are rarely uniform: strength wanders along the line.
    alpha = coverage * (0.65 + 0.35 * perlin_noise((h, w), (4, 4), rng))
    mask = _footprint(alpha, 0.3)
    amp = rng.uniform(0.15, 0.32) * rng.choice([-1.0, 1.0])
    if image.mean() > 0.6:  # a bright scratch on a bright surface would mostly clip away
        amp = -abs(amp)
    delta = np.repeat((alpha * np.float32(amp))[None], _channels(image), axis=0)
    return _apply(image, delta, mask)


def spot(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Small roundish contamination (dirt, paint, burn) blended toward a random colour."""
    s = _scale(image)
    dist = _blob_distance(image, rng, radius=rng.uniform(4.0, 10.0) * s, wobble=0.15)
    alpha = np.clip((1.0 - dist) / 0.35, 0.0, 1.0)  # soft edge over the outer third
    mask = _footprint(alpha, 0.2)
    c = _channels(image)
    dark = rng.random() < 0.7
    target = rng.uniform(0.0, 0.3, c) if dark else rng.uniform(0.7, 1.0, c)
    strength = rng.uniform(0.35, 0.7)
    img = image[None] if image.ndim == 2 else image
    delta = np.float32(strength) * alpha[None] * (target[:, None, None].astype(np.float32) - img)
    return _apply(image, delta, mask)


def crack(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Jagged dark hairline from a random walk, sometimes with one branch."""
    h, w = image.shape[-2:]
    s = _scale(image)
    step = 3.0 * s
    n_steps = int(rng.uniform(0.12, 0.3) * min(h, w) / step)

    def walk(start: np.ndarray, angle: float, n: int) -> np.ndarray:
        turns = angle + np.cumsum(rng.normal(0.0, 0.4, n))
        steps = step * np.stack([np.cos(turns), np.sin(turns)], axis=1)
        return np.clip(start + np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)]), 0, [w - 1, h - 1])

    main = walk(_point(image, rng, margin=0.15), rng.uniform(0, 2 * np.pi), max(n_steps, 4))
    footprint = _draw_path((h, w), main, max(1, round(s * rng.choice([1, 2]))), aa=False)
    if rng.random() < 0.5:
        fork = main[len(main) // 2]
        branch = walk(fork, rng.uniform(0, 2 * np.pi), max(n_steps // 3, 2))
        footprint = np.maximum(footprint, _draw_path((h, w), branch, 1, aa=False))
    mask = _footprint(footprint, 0.0)
    # A crack is a shadowed gap: multiplicative darkening, a bit stronger on bright surfaces.
    img = image[None] if image.ndim == 2 else image
    darken = np.float32(rng.uniform(0.3, 0.55))
    return _apply(image, -darken * img * footprint[None], mask)


def stain(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Large faint irregular blotch (water/oil) with a slightly darker drying rim."""
    s = _scale(image)
    dist = _blob_distance(image, rng, radius=rng.uniform(14.0, 32.0) * s, wobble=0.25)
    inside = np.clip((1.0 - dist) / 0.15, 0.0, 1.0)
    rim = np.exp(-(((dist - 0.9) / 0.08) ** 2))
    alpha = np.clip(0.6 * inside + 0.4 * rim, 0.0, 1.0) * (dist < 1.0)
    mask = _footprint(alpha, 0.25)
    c = _channels(image)
    tint = np.float32(rng.uniform(0.14, 0.24)) * rng.uniform(0.7, 1.0, c).astype(np.float32)
    img = image[None] if image.ndim == 2 else image
    delta = -tint[:, None, None] * alpha[None] * img
    return _apply(image, delta, mask)


DEFECTS: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "scratch": scratch,
    "spot": spot,
    "crack": crack,
    "stain": stain,
}
