"""Threshold and ground-truth contours drawn from a binary mask: OpenCV traces the outlines (compiled, a few
milliseconds on a megapixel map) and one pyqtgraph curve draws them all, in full-image pixel coordinates.
The outline is recomputed only when its source array, level or place changes."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRectF

from app.pgconfig import pg


def mask_outline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, connect) of every outline of a (H,W) bool mask, each closed, at pixel centres; `connect[i]`
    False ends an outline at point i."""
    found, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    if not found:
        return np.zeros(0), np.zeros(0), np.zeros(0, bool)
    closed = [np.concatenate([c[:, 0, :], c[:1, 0, :]]) for c in found]
    points = np.concatenate(closed).astype(np.float64) + 0.5
    connect = np.ones(len(points), bool)
    connect[np.cumsum([len(c) for c in closed]) - 1] = False
    return points[:, 0], points[:, 1], connect


class ContourItem(pg.PlotCurveItem):
    """Outlines of `values >= level` (or of a bool mask), scaled onto `rect`."""

    def __init__(self, pen: object) -> None:
        super().__init__(pen=pen)
        self._key: tuple[object, ...] | None = None
        self._source: np.ndarray | None = None  # kept so that its id() stays its own while cached

    def set_source(self, values: np.ndarray | None, level: float | None, rect: QRectF) -> bool:
        """Draw the outline of `values >= level` (`level` None: `values` is a mask); None clears.
        Returns whether anything was recomputed."""
        key = None if values is None else (id(values), values.shape, level, rect.x(), rect.y(), rect.width(),
                                            rect.height())
        if key == self._key:
            return False
        self._key, self._source = key, values
        if values is None or (level is not None and not np.isfinite(level)):
            self.setData([], [])
            return True
        mask = values if level is None else values >= level
        x, y, connect = mask_outline(mask)
        h, w = values.shape[:2]
        self.setData(rect.x() + x * rect.width() / w, rect.y() + y * rect.height() / h, connect=connect)
        return True

    def has_outline(self) -> bool:
        return self.xData is not None and len(self.xData) > 0
