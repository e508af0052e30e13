"""A grid of linked image panes built from pyqtgraph items: base image, heatmap with a colorbar, predicted-defect
contour at the pixel threshold and ground-truth contour (traced by OpenCV, app.contours). Used by the result
viewer and the compare panel."""

from __future__ import annotations

import numpy as np
from app.contours import ContourItem
from app.pgconfig import pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

COLORMAP = "inferno"
PRED_PEN = pg.mkPen("#00e5ff", width=2)
TRUTH_PEN = pg.mkPen("#39ff14", width=2, style=pg.QtCore.Qt.PenStyle.DashLine)


def as_display(image: np.ndarray) -> np.ndarray:
    """(C,H,W) float or (H,W,C) uint8 -> (H,W) or (H,W,3) for an ImageItem."""
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.dtype != np.uint8:
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


class Pane:
    """One view: a title, a base image, an optional heatmap with its colorbar, and two contours."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int, title: str, heat: bool) -> None:
        self.title = title
        self._title_text = title
        self.plot: pg.PlotItem = layout.addPlot(row=row, col=col, title=title)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.invertY(True)
        self.plot.vb.disableAutoRange()  # the grid fits the image itself; auto-range fights the links
        self.plot.setMenuEnabled(False)
        self.base = pg.ImageItem()
        self.plot.addItem(self.base)
        self.heat: pg.ImageItem | None = None
        self.bar: pg.ColorBarItem | None = None
        if heat:
            self.heat = pg.ImageItem()
            self.plot.addItem(self.heat)
            self.bar = self.plot.addColorBar(self.heat, colorMap=COLORMAP, values=(0.0, 1.0), width=12)
        else:  # an invisible colour bar of the same size, so every pane's view is as large and none is stretched
            spacer = pg.ColorBarItem(colorMap=COLORMAP, values=(0.0, 1.0), width=12, interactive=False)
            self.plot.layout.addItem(spacer, 2, 5)
            self.plot.layout.setColumnFixedWidth(4, 5)
            spacer.setOpacity(0.0)
        self.pred = ContourItem(PRED_PEN)
        self.truth = ContourItem(TRUTH_PEN)
        self.plot.addItem(self.pred)
        self.plot.addItem(self.truth)
        self.pred.setZValue(10)
        self.truth.setZValue(11)

    def set_title(self, text: str) -> None:
        """Set the pane's title (nothing is laid out again when it is unchanged)."""
        if text != self._title_text:
            self._title_text = text
            self.plot.setTitle(text, size="9pt")

    def set_base(self, image: np.ndarray | None, rect: QRectF) -> None:
        if image is None:
            self.base.clear()
            return
        levels = (0, 255) if image.dtype == np.uint8 else (0.0, 1.0)
        self.base.setImage(image, levels=levels, autoLevels=False)
        self.base.setRect(rect)

    def set_heat(self, values: np.ndarray | None, rect: QRectF, levels: tuple[float, float]) -> None:
        if self.heat is None or self.bar is None:
            return
        if values is None:
            self.heat.clear()
            return
        self.heat.setImage(values, autoLevels=False)
        self.heat.setRect(rect)
        self.bar.setLevels(levels)

    def set_contours(self, values: np.ndarray | None, level: float, truth: np.ndarray | None, rect: QRectF,
                     show_pred: bool, show_truth: bool) -> None:
        """Outline of `values >= level` and of the bool `truth` mask, each stretched over `rect` (full-image
        pixels) whatever its own size; recomputed only when the map, level or mask changes."""
        ok = show_pred and values is not None and np.isfinite(level)
        self.pred.set_source(values if ok else None, float(level), rect)
        self.truth.set_source(truth if show_truth and truth is not None else None, None, rect)


class PaneGrid(QWidget):
    """Panes laid out in `columns` columns, zoom and pan linked; `hovered(x, y)` in full-image pixels."""

    hovered = Signal(object)  # (x, y), or () when the mouse is outside every pane

    def __init__(self, columns: int = 3, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns = columns
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("#202020")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.panes: dict[str, Pane] = {}
        self.view.scene().sigMouseMoved.connect(self._mouse_moved)

    def build(self, specs: list[tuple[str, bool]]) -> None:
        """(key, has_heatmap) per pane; rebuilt only when the list changes."""
        if [(k, p.heat is not None) for k, p in self.panes.items()] == specs:
            return
        self.view.clear()
        self.panes = {}
        first: pg.PlotItem | None = None
        for i, (key, heat) in enumerate(specs):
            pane = Pane(self.view.ci, i // self.columns, i % self.columns, key, heat)
            if first is None:
                first = pane.plot
                first.setAspectLocked(True)  # only the lead pane: linked aspect-locked views fight and drift
            else:
                pane.plot.setXLink(first)
                pane.plot.setYLink(first)
            self.panes[key] = pane
        for pane in self.panes.values():  # equal preferred sizes give equal cells: linked views of one size
            pane.plot.setPreferredSize(200, 200)

    def fit(self, width: int, height: int) -> None:
        first = next(iter(self.panes.values()), None)
        if first is not None:
            first.plot.setRange(QRectF(0, 0, width, height), padding=0.02)

    def _mouse_moved(self, pos: QPointF) -> None:
        for pane in self.panes.values():
            if pane.plot.sceneBoundingRect().contains(pos):
                point = pane.plot.vb.mapSceneToView(pos)
                self.hovered.emit((point.x(), point.y()))
                return
        self.hovered.emit(())
