"""Thumbnails of dataset images for the browser: small RGB previews with the ground-truth outline, made in a
generator of Progress so the GUI can load them in the background. Pure numpy/OpenCV."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from core.data.io import ImageReadError, MaskMismatchError, read_image, read_mask
from core.progress import CancelToken, Progress
from core.results import shrink


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
