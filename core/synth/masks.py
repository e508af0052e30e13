"""Hole masks for inpainting: free-form brush strokes (training), random boxes, and the four complementary
checkerboards that start an iterative inpainting at test time.

Every mask is bool (H, W) (or (4, H, W) for the checkerboards), True where a pixel is hidden.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["brush_stroke_mask", "box_mask", "checkerboard_masks", "REFERENCE_SIDE"]

REFERENCE_SIDE = 256  # the image side the stroke widths below are given for


def brush_stroke_mask(shape: tuple[int, int], rng: np.random.Generator, strokes: tuple[int, int] = (1, 3),
                      vertices: tuple[int, int] = (4, 11), width: tuple[float, float] = (12.0, 40.0),
                      mean_angle: float = 2 * math.pi / 5, angle_range: float = 2 * math.pi / 15,
                      flip: bool = True) -> np.ndarray:
    """Free-form strokes as in the DeepFill v2 training masks (Yu et al. 2019), scaled to `shape`.

    Each stroke is a polyline of `vertices` points (inclusive range) from a random start. Its turning angles
    are drawn from [mean - U(0, range), mean + U(0, range)] and every other one is mirrored (2 pi - angle),
    so a stroke zig-zags instead of curling up. Segment lengths follow N(r, r / 2) clipped to [0, 2 r] with
    r = image diagonal / 8, and each stroke has one width drawn from `width` (pixels at a 256 side, scaled
    with the image), with round joints (a disc at every vertex). The whole mask is then flipped left-right
    and upside-down with probability 1/2 each.
    """
    h, w = int(shape[0]), int(shape[1])
    scale = math.sqrt(h * w) / REFERENCE_SIDE
    mean_length = math.hypot(h, w) / 8.0
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        count = int(rng.integers(vertices[0], vertices[1] + 1))
        thickness = max(1, int(round(rng.uniform(*width) * scale)))
        low = mean_angle - rng.uniform(0.0, angle_range)
        high = mean_angle + rng.uniform(0.0, angle_range)
        point = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        points = [point]
        for i in range(count):
            angle = rng.uniform(low, high)
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = float(np.clip(rng.normal(mean_length, mean_length / 2), 0.0, 2 * mean_length))
            point = np.clip(point + length * np.array([math.cos(angle), math.sin(angle)]), 0, [w - 1, h - 1])
            points.append(point)
        ints = [tuple(int(round(v)) for v in p) for p in points]
        for start, end in zip(ints[:-1], ints[1:]):
            cv2.line(canvas, start, end, 1, thickness)
        for p in ints:
            cv2.circle(canvas, p, thickness // 2, 1, -1)
    mask = canvas.astype(bool)
    if flip and rng.random() < 0.5:
        mask = mask[:, ::-1]
    if flip and rng.random() < 0.5:
        mask = mask[::-1, :]
    return np.ascontiguousarray(mask)


def box_mask(shape: tuple[int, int], rng: np.random.Generator, side: tuple[float, float] = (0.25, 0.5)
             ) -> np.ndarray:
    """One axis-aligned rectangle whose sides are U(side) times the image's, at a random position."""
    h, w = int(shape[0]), int(shape[1])
    bh, bw = max(1, int(h * rng.uniform(*side))), max(1, int(w * rng.uniform(*side)))
    top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    mask = np.zeros((h, w), bool)
    mask[top:top + bh, left:left + bw] = True
    return mask


def checkerboard_masks(shape: tuple[int, int], cells: tuple[int, int] = (6, 6), unit: str = "grid") -> np.ndarray:
    """Four mutually exclusive hole masks (4, H, W) that together cover the image: cell (r, c) of a grid
    belongs to mask 2 (r mod 2) + (c mod 2).

    `unit` "grid": `cells` = (rows, columns) of the grid over the image (cell borders rounded to pixels);
    "pixels": `cells` = (height, width) of one cell in pixels.
    """
    h, w = int(shape[0]), int(shape[1])
    if len(cells) != 2 or min(cells) < 1:
        raise ValueError(f"checkerboard cells must be two positive numbers, got {cells}")
    if unit == "grid":
        rows = np.arange(h) * cells[0] // h
        cols = np.arange(w) * cells[1] // w
    elif unit == "pixels":
        rows = np.arange(h) // cells[0]
        cols = np.arange(w) // cells[1]
    else:
        raise ValueError(f"unknown checkerboard unit {unit!r}; choose grid or pixels")
    owner = 2 * (rows[:, None] % 2) + (cols[None, :] % 2)
    return np.stack([owner == k for k in range(4)])
