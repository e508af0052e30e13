"""Resize policy and tiling: how an image of any size becomes model input, and how a score map
computed on that input goes back to the original resolution.

"resize" squeezes the whole image to size x size (fast, loses small defects); "tile" scales the
image by `scale`, cuts overlapping size x size tiles, and stitches per-tile maps by averaging.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import cv2
import numpy as np

_MODES = ("resize", "tile")


@dataclass(frozen=True)
class ResizePolicy:
    """`mode` "resize" | "tile"; `size` model input side; `scale` and `overlap` apply in tile mode."""

    mode: str = "resize"
    size: int = 128
    scale: float = 1.0
    overlap: float = 0.25

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"ResizePolicy.mode must be one of {_MODES}, got {self.mode!r}")
        if int(self.size) != self.size or self.size < 1:
            raise ValueError(f"ResizePolicy.size must be a positive integer, got {self.size!r}")
        if not self.scale > 0:
            raise ValueError(f"ResizePolicy.scale must be > 0, got {self.scale!r}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"ResizePolicy.overlap must be in [0, 1), got {self.overlap!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ResizePolicy":
        """Build from `to_dict()` output; missing keys take defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown ResizePolicy keys {unknown}; expected some of {sorted(known)}")
        return cls(**dict(data))


def _resize_chw(image_chw: np.ndarray, hw: tuple[int, int], interpolation: int) -> np.ndarray:
    """Resize (C,H,W) to (C,h,w) with OpenCV; returns a copy even when the size already matches."""
    h, w = hw
    if image_chw.shape[1:] == (h, w):
        return image_chw.copy()
    # cv2 works on HWC; loop over channels so C is unrestricted and C = 1 keeps its axis.
    planes = [cv2.resize(np.ascontiguousarray(c), (w, h), interpolation=interpolation) for c in image_chw]
    return np.stack(planes).astype(image_chw.dtype, copy=False)


def scaled_hw(hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H,W) after scaling by `scale`, at least 1 pixel each."""
    return max(1, int(round(hw[0] * scale))), max(1, int(round(hw[1] * scale)))


def working_image(image_chw: np.ndarray, policy: ResizePolicy) -> np.ndarray:
    """The image the model sees: (C,size,size) in resize mode; in tile mode (C,h,w) scaled by
    `policy.scale` and, when smaller than size x size, reflect-padded at the bottom/right."""
    if image_chw.ndim != 3:
        raise ValueError(f"expected an image of shape (C,H,W), got shape {image_chw.shape}")
    size = policy.size
    if policy.mode == "resize":
        return _resize_chw(image_chw, (size, size), cv2.INTER_AREA)
    hw = scaled_hw(image_chw.shape[1:], policy.scale)
    # INTER_AREA averages when shrinking (no aliasing); it is not meant for enlarging.
    interpolation = cv2.INTER_AREA if policy.scale < 1.0 else cv2.INTER_LINEAR
    scaled = _resize_chw(image_chw, hw, interpolation)
    pad_h, pad_w = max(0, size - hw[0]), max(0, size - hw[1])
    if pad_h or pad_w:
        # Bottom/right only, so undoing it is a crop; reflection avoids fake edges. A 1-pixel
        # axis cannot be reflected, so it is repeated instead.
        mode = "reflect" if min(hw) > 1 else "edge"
        scaled = np.pad(scaled, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    return scaled


def _axis_starts(length: int, size: int, stride: int) -> list[int]:
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)  # last tile flush with the border
    return starts


def tile_grid(h: int, w: int, size: int, overlap: float) -> list[tuple[int, int]]:
    """Top-left corners (y, x), row-major, of size x size tiles covering an h x w image.

    Stride is round(size * (1 - overlap)); the last row/column of tiles ends at the border.
    """
    if h < size or w < size:
        raise ValueError(
            f"Image {w}x{h} (WxH) is smaller than the tile size {size}; pad it first (working_image does)."
        )
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    stride = max(1, int(round(size * (1.0 - overlap))))
    return [(y, x) for y in _axis_starts(h, size, stride) for x in _axis_starts(w, size, stride)]


def extract_tiles(image_chw: np.ndarray, corners: list[tuple[int, int]], size: int) -> np.ndarray:
    """Cut tiles: (C,H,W) -> (T,C,size,size), one per corner, in corner order."""
    return np.stack([image_chw[:, y : y + size, x : x + size] for y, x in corners])


def stitch(tile_maps: np.ndarray, corners: list[tuple[int, int]], h: int, w: int) -> np.ndarray:
    """Average overlapping tile maps: (T,C,size,size) -> (C,h,w) float32 (C is 1 for score maps).

    Accumulates in float64 so that averaging k copies of the same float32 value returns it exactly.
    """
    if tile_maps.ndim != 4 or len(tile_maps) != len(corners):
        raise ValueError(
            f"expected tile maps of shape (T,C,size,size) with T = {len(corners)} corners, "
            f"got {tile_maps.shape}"
        )
    channels, size = tile_maps.shape[1], tile_maps.shape[2]
    total = np.zeros((channels, h, w), dtype=np.float64)
    count = np.zeros((h, w), dtype=np.int64)
    for tile, (y, x) in zip(tile_maps, corners):
        total[:, y : y + size, x : x + size] += tile
        count[y : y + size, x : x + size] += 1
    if (count == 0).any():
        holes = int((count == 0).sum())
        raise ValueError(f"The tile corners leave {holes} pixels of {w}x{h} uncovered; use tile_grid")
    return (total / count).astype(np.float32)


def to_full_resolution(map_chw: np.ndarray, policy: ResizePolicy, original_hw: tuple[int, int]) -> np.ndarray:
    """Bring a map on the working image, (C,h,w), back to the original (C,H,W) grid.

    Resize mode: bilinear resize. Tile mode: crop the padding, then undo `scale` (bilinear).
    """
    if map_chw.ndim != 3:
        raise ValueError(f"expected a map of shape (C,H,W), got shape {map_chw.shape}")
    full_hw = (int(original_hw[0]), int(original_hw[1]))
    if policy.mode == "tile":
        sh, sw = scaled_hw(full_hw, policy.scale)
        if map_chw.shape[1] < sh or map_chw.shape[2] < sw:
            raise ValueError(
                f"map of shape {map_chw.shape} is smaller than the scaled image {sw}x{sh}; "
                "was it computed with another ResizePolicy?"
            )
        map_chw = map_chw[:, :sh, :sw]
    return _resize_chw(map_chw, full_hw, cv2.INTER_LINEAR)
