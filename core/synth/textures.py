"""Seeded procedural textures: woven fabric, brushed metal, ceramic tiles, plus random ones.

Every generator returns float32 in [0, 1]: (H, W) for channels=1, (3, H, W) for channels=3.
Two calls with different generators give visibly the same material with small natural
variation (lighting gradient, weave/grid shift, slight rotation, sensor noise), so a set of
"normal" images is realistic rather than identical. `random_texture` randomises colours and
contrast too; it fills DRAEM-style anomaly masks since no ImageNet/DTD is available here.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.synth.noise import fractal_noise, perlin_noise

__all__ = ["woven_fabric", "brushed_metal", "ceramic_tiles", "random_texture", "TEXTURES"]

Color = tuple[float, float, float]


def _jitter_color(rng: np.random.Generator, base: Color, amount: float = 0.03) -> np.ndarray:
    """`base` RGB with a small random shift per channel, (3,) float32."""
    return np.clip(np.asarray(base) + rng.normal(0.0, amount, 3), 0.0, 1.0).astype(np.float32)


def _lighting(shape: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """Multiplicative illumination ~1.0: a linear ramp in a random direction, (H, W) float32."""
    h, w = shape
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    ramp = np.float32(np.cos(angle)) * xs + np.float32(np.sin(angle)) * ys
    return 1.0 + np.float32(strength * rng.uniform(0.5, 1.0)) * ramp


def _finish(shade: np.ndarray, color: np.ndarray, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Turn a shading map (H, W) ~[0, 1.5] and an RGB colour (3,) into the output image.

    Adds faint per-pixel sensor noise; returns (H, W) for channels=1 (colour luminance) or
    (3, H, W) for channels=3, float32 clipped to [0, 1].
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if channels == 1:
        level = np.float32(color @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
        out = shade * level
    else:
        out = shade[None, :, :] * color[:, None, None]
    out = out + rng.normal(0.0, 0.006, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _warp_coords(shape: tuple[int, int], rng: np.random.Generator, rot_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (each (H, W) float32), slightly rotated and randomly shifted."""
    h, w = shape
    theta = np.deg2rad(rng.uniform(-rot_deg, rot_deg))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = np.float32(np.cos(theta)) * xs - np.float32(np.sin(theta)) * ys + np.float32(rng.uniform(0, 64))
    v = np.float32(np.sin(theta)) * xs + np.float32(np.cos(theta)) * ys + np.float32(rng.uniform(0, 64))
    return u, v


def woven_fabric(
    shape: tuple[int, int], rng: np.random.Generator, channels: int = 3, color: Color | None = None
) -> np.ndarray:
    """Plain-weave cloth: over/under warp and weft threads with yarn unevenness.

    Thread pitch ~ H/28 px. Returns (H, W) or (3, H, W) float32 in [0, 1].
    """
    h, w = shape
    pitch = max(4.0, min(h, w) / 28.0) * rng.uniform(0.97, 1.03)
    u, v = _warp_coords(shape, rng, rot_deg=1.5)
    # Gentle low-frequency displacement: real threads are never perfectly straight.
    bend = fractal_noise(shape, (3, 3), rng, octaves=2) * np.float32(0.25 * pitch)
    u, v = (u + bend) / np.float32(pitch), (v - bend) / np.float32(pitch)
    fu, fv = u - np.floor(u), v - np.floor(v)
    warp_on_top = ((np.floor(u) + np.floor(v)) % 2) == 0
    across_u, across_v = np.sin(np.pi * fu), np.sin(np.pi * fv)  # round thread profiles
    warp = across_u * (0.55 + 0.45 * across_v)  # vertical thread, dipping under at crossings
    weft = across_v * (0.55 + 0.45 * across_u)
    height = np.where(warp_on_top, warp, weft)
    # Fibre texture: fine noise, plus slow yarn-thickness variation.
    fibre = perlin_noise(shape, (h // 3, w // 3), rng) * np.float32(0.08)
    slub = fractal_noise(shape, (6, 6), rng, octaves=3) * np.float32(0.08)
    shade = (0.45 + 0.6 * height + fibre + slub) * _lighting(shape, rng, 0.15)
    rgb = _jitter_color(rng, color if color is not None else (0.30, 0.42, 0.62), amount=0.015)
    return _finish(shade.astype(np.float32), rgb, channels, rng)


def brushed_metal(
    shape: tuple[int, int], rng: np.random.Generator, channels: int = 1, color: Color | None = None
) -> np.ndarray:
    """Brushed steel: fine streaks along one direction, soft sheen band, faint mottling.

    Returns (H, W) or (3, H, W) float32 in [0, 1].
    """
    h, w = shape
    # Long thin streaks: white noise smeared hard along x, barely along y, larger canvas so
    # a slight rotation can be cropped without empty corners.
    pad = max(h, w) // 4
    big = rng.normal(0.0, 1.0, (h + 2 * pad, w + 2 * pad)).astype(np.float32)
    streaks = cv2.GaussianBlur(big, (0, 0), sigmaX=max(2.0, w / 12.0), sigmaY=0.6)
    streaks /= np.float32(streaks.std() + 1e-6)
    centre = ((w + 2 * pad) / 2.0, (h + 2 * pad) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, float(rng.uniform(-2.0, 2.0)), 1.0)
    streaks = cv2.warpAffine(streaks, matrix, streaks.shape[::-1], flags=cv2.INTER_LINEAR)
    streaks = streaks[pad : pad + h, pad : pad + w]
    # Specular sheen: a broad bright band across the brushing direction, randomly placed.
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    sheen = np.exp(-(((ys - rng.uniform(0.2, 0.8)) / rng.uniform(0.25, 0.45)) ** 2)).astype(np.float32)
    mottle = fractal_noise(shape, (3, 3), rng, octaves=3)
    shade = 0.78 + 0.05 * streaks + 0.22 * sheen + 0.05 * mottle
    shade = shade * _lighting(shape, rng, 0.12)
    rgb = _jitter_color(rng, color if color is not None else (0.60, 0.61, 0.63), amount=0.015)
    return _finish(shade.astype(np.float32), rgb, channels, rng)


def ceramic_tiles(
    shape: tuple[int, int], rng: np.random.Generator, channels: int = 3, color: Color | None = None
) -> np.ndarray:
    """Square glazed tiles in a grout grid; ~4 tiles across, grid randomly offset.

    Each tile gets its own slight tone; edges are bevelled; glaze has faint cloudiness.
    Returns (H, W) or (3, H, W) float32 in [0, 1].
    """
    h, w = shape
    size = min(h, w) / 4.0 * rng.uniform(0.98, 1.02)
    u, v = _warp_coords(shape, rng, rot_deg=0.7)
    u, v = u / np.float32(size), v / np.float32(size)
    fu, fv = u - np.floor(u), v - np.floor(v)
    # Distance (in pixels) to the nearest tile border.
    edge = np.minimum(np.minimum(fu, 1 - fu), np.minimum(fv, 1 - fv)) * np.float32(size)
    grout_half = max(1.0, size * 0.035)
    # Per-tile tone: hash the tile index into a random table so each tile is a bit different.
    table = rng.normal(0.0, 0.025, 64).astype(np.float32)
    tile_id = (np.floor(u).astype(np.int64) * 7 + np.floor(v).astype(np.int64) * 13) % 64
    bevel = np.clip((edge - grout_half) / np.float32(size * 0.06), 0.0, 1.0)
    glaze = 0.9 + table[tile_id] + 0.04 * fractal_noise(shape, (4, 4), rng, octaves=3)
    tile = glaze * (0.82 + 0.18 * bevel)
    grout = 0.55 + 0.05 * perlin_noise(shape, (h // 8, w // 8), rng)
    shade = np.where(edge < grout_half, grout, tile) * _lighting(shape, rng, 0.15)
    rgb = _jitter_color(rng, color if color is not None else (0.86, 0.80, 0.70), amount=0.012)
    return _finish(shade.astype(np.float32), rgb, channels, rng)


def _marble(shape: tuple[int, int], rng: np.random.Generator, channels: int, color: Color) -> np.ndarray:
    """Veined stone: sine of a turbulence-distorted ramp (gives random textures more variety)."""
    h, w = shape
    turb = fractal_noise(shape, (4, 4), rng, octaves=5)
    u, _ = _warp_coords(shape, rng, rot_deg=90.0)
    veins = np.abs(np.sin(u / np.float32(rng.uniform(12.0, 40.0)) + 6.0 * turb)) ** 0.5
    shade = 0.4 + 0.7 * veins
    return _finish(shade.astype(np.float32), np.asarray(color, dtype=np.float32), channels, rng)


TEXTURES = {"fabric": woven_fabric, "metal": brushed_metal, "tiles": ceramic_tiles, "marble": _marble}


def random_texture(shape: tuple[int, int], rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    """A random procedural texture with random colour, contrast and orientation.

    Meant as anomaly source material: returns (H, W) or (3, H, W) float32 in [0, 1].
    """
    name = list(TEXTURES)[int(rng.integers(len(TEXTURES)))]
    color = tuple(float(c) for c in rng.uniform(0.05, 1.0, 3))
    image = TEXTURES[name](shape, rng, channels=channels, color=color)
    if rng.random() < 0.5:  # any orientation, so material grain is not always horizontal
        image = np.ascontiguousarray(np.swapaxes(image, -1, -2)) if shape[0] == shape[1] else image
    mean = image.mean()
    contrast = np.float32(rng.uniform(0.5, 2.0))
    image = mean + (image - mean) * contrast
    if rng.random() < 0.3:
        image = 1.0 - image
    return np.clip(image, 0.0, 1.0).astype(np.float32)
