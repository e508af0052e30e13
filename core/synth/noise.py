"""Seeded 2-D Perlin noise, fractal (octave) noise and DRAEM-style Perlin anomaly masks.

Everything is vectorised numpy (plus one cv2.warpAffine for rotation) so that a 256x256 mask
costs about a millisecond: masks are drawn per training sample, on the fly.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["perlin_noise", "fractal_noise", "perlin_mask"]


def _fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic fade 6t^5 - 15t^4 + 10t^3 (C2-continuous across cell borders)."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def perlin_noise(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Gradient (Perlin) noise with `res` = (rows, cols) lattice cells over the image.

    Returns float32 (H, W), roughly in [-1, 1]. When H or W is not a multiple of `res`, the
    noise is generated on the next larger multiple and cropped, so cells stay square-ish.
    """
    h, w = int(shape[0]), int(shape[1])
    ry, rx = max(1, int(res[0])), max(1, int(res[1]))
    cy, cx = -(-h // ry), -(-w // rx)  # cell size in pixels (ceil division)

    angles = rng.uniform(0.0, 2.0 * np.pi, size=(ry + 1, rx + 1))
    gy, gx = np.sin(angles).astype(np.float32), np.cos(angles).astype(np.float32)

    # Only the first h rows / w cols are needed: this is the "generate larger and crop".
    ys, xs = np.arange(h), np.arange(w)
    iy, ix = ys // cy, xs // cx  # lattice cell of each row / column
    ty = ((ys % cy) / cy).astype(np.float32)[:, None]  # position inside the cell, (h, 1)
    tx = ((xs % cx) / cx).astype(np.float32)[None, :]  # (1, w)

    def corner(dy: int, dx: int) -> np.ndarray:
        """Dot product of the corner gradient with the offset to that corner, (h, w)."""
        sel = (iy + dy)[:, None], (ix + dx)[None, :]
        return gy[sel] * (ty - dy) + gx[sel] * (tx - dx)

    n00, n01, n10, n11 = corner(0, 0), corner(0, 1), corner(1, 0), corner(1, 1)
    uy, ux = _fade(ty), _fade(tx)
    top = n00 + ux * (n01 - n00)
    bottom = n10 + ux * (n11 - n10)
    noise = top + uy * (bottom - top)
    # 2-D Perlin lies in [-sqrt(1/2), sqrt(1/2)]; rescale to about [-1, 1].
    return (noise * np.float32(np.sqrt(2.0))).astype(np.float32)


def fractal_noise(
    shape: tuple[int, int],
    res: tuple[int, int],
    rng: np.random.Generator,
    octaves: int = 4,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
) -> np.ndarray:
    """Sum of `octaves` Perlin layers, each `lacunarity` times finer and `persistence` times weaker.

    Returns float32 (H, W), roughly in [-1, 1] (normalised by the total amplitude).
    """
    total = np.zeros(shape, dtype=np.float32)
    amplitude, norm = 1.0, 0.0
    fy, fx = float(res[0]), float(res[1])
    for _ in range(octaves):
        layer_res = (min(shape[0], round(fy)), min(shape[1], round(fx)))
        total += np.float32(amplitude) * perlin_noise(shape, layer_res, rng)
        norm += amplitude
        amplitude *= persistence
        fy, fx = fy * lacunarity, fx * lacunarity
    return total / np.float32(norm)


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate (H, W) float32 about its centre; reflected borders avoid empty corners."""
    h, w = image.shape
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def perlin_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    threshold: float = 0.5,
    min_scale: int = 0,
    max_scale: int = 5,
    rotate: bool = True,
    downscale: int = 1,
) -> np.ndarray:
    """DRAEM-style anomaly region: thresholded Perlin noise at a random lattice resolution.

    Each axis uses 2**k cells, k uniform in [min_scale, max_scale] (independently per axis, so
    blobs can be elongated); the noise is optionally rotated by a random angle in [-90, 90).
    With `downscale` > 1 the noise is drawn at 1/downscale of the size (at least 2 x 2) and
    upsampled bilinearly: masks are smooth, so this costs downscale^2 times less for the same look.
    Returns bool (H, W), never empty: if thresholding leaves nothing (rare, coarse lattices), it
    retries and finally keeps the top 1% of the noise.
    """
    h, w = shape
    small = (max(2, h // downscale), max(2, w // downscale)) if downscale > 1 else (h, w)
    noise = np.zeros(small, dtype=np.float32)
    for _ in range(8):
        ky, kx = rng.integers(min_scale, max_scale + 1, size=2)
        res = (min(small[0], 2 ** int(ky)), min(small[1], 2 ** int(kx)))
        noise = perlin_noise(small, res, rng)
        if rotate:
            noise = _rotate(noise, float(rng.uniform(-90.0, 90.0)))
        if noise.max() > threshold:
            break
    if downscale > 1:
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = noise > threshold
    if not mask.any():
        mask = noise >= np.quantile(noise, 0.99)
    return mask
