"""A score histogram (good / defective / unlabelled) with a draggable threshold line and an optional review band.
Its legend is a line of text under the plot, so it never covers the data; curves are reused, not rebuilt."""

from __future__ import annotations

import numpy as np
from app.pgconfig import pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

GROUP_STYLE = {"good": ("#2ca02c", (44, 160, 44, 90)), "defective": ("#d62728", (214, 39, 40, 90)),
               "unlabelled": ("#7f7f7f", (127, 127, 127, 90))}


class ThresholdHistogram(QWidget):
    thresholdMoved = Signal(float)
    reviewMoved = Signal(object)  # (low, high)

    def __init__(self, title: str, bins: int = 60, log_y: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bins = bins
        self.plot = pg.PlotWidget(title=title)
        self.plot.setLogMode(y=log_y)
        self.legend = QLabel("")
        self.legend.setToolTip("Number of values in each group")
        self.plot.setLabel("left", "count")
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#00a5ff", width=2),
                                    label="{value:.4g}", labelOpts={"position": 0.92, "color": "#00a5ff"})
        self.line.setZValue(20)
        self.plot.addItem(self.line)
        self.band = pg.LinearRegionItem(brush=(255, 165, 0, 50))
        self.band.setZValue(5)
        self.band.hide()
        self.plot.addItem(self.band)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)
        self._quiet = False
        self.line.sigPositionChanged.connect(self._line_moved)
        self.band.sigRegionChanged.connect(self._band_moved)

    def set_groups(self, groups: dict[str, np.ndarray]) -> None:
        """Histograms of each non-empty group on shared bins (a group's curve is kept and given new data)."""
        groups = {name: v[np.isfinite(v)] for name, v in groups.items()}
        shown = {name: v for name, v in groups.items() if v.size}
        for name in list(self.curves):
            if name not in shown:
                self.plot.removeItem(self.curves.pop(name))
        if not shown:
            self.legend.setText("")
            return
        low = min(float(v.min()) for v in shown.values())
        high = max(float(v.max()) for v in shown.values())
        high = high if high > low else low + 1e-6
        edges = np.linspace(low, high, self.bins + 1)
        log_y = self.plot.plotItem.ctrl.logYCheck.isChecked()
        entries = []
        for name, scores in shown.items():
            counts, _ = np.histogram(scores, bins=self.bins, range=(low, high))  # equal bins: no sorting
            pen, brush = GROUP_STYLE.get(name, GROUP_STYLE["unlabelled"])
            heights = np.maximum(counts, 0.5) if log_y else counts  # a log axis cannot show zero
            curve = self.curves.get(name)
            if curve is None:
                curve = pg.PlotDataItem(stepMode="center", fillLevel=0.5 if log_y else 0, antialias=False,
                                        pen=pg.mkPen(pen, width=1.5), brush=brush)
                self.plot.addItem(curve)
                self.curves[name] = curve
            curve.setData(edges, heights)
            entries.append(f'<span style="color:{pen}">■</span> {name} ({scores.size})')
        self.legend.setText("&nbsp;&nbsp;".join(entries))

    def set_threshold(self, value: float) -> None:
        if np.isfinite(value):
            self._quiet = True
            self.line.setValue(value)
            self._quiet = False
        self.line.setVisible(bool(np.isfinite(value)) and bool(self.curves))
        self.line.label.valueChanged()  # the label skips updates while the line is hidden

    def set_review(self, band: tuple[float, float] | None) -> None:
        self.band.setVisible(band is not None)
        if band is not None:
            self._quiet = True
            self.band.setRegion(band)
            self._quiet = False

    def _line_moved(self) -> None:
        if not self._quiet:
            self.thresholdMoved.emit(float(self.line.value()))

    def _band_moved(self) -> None:
        if not self._quiet and self.band.isVisible():
            self.reviewMoved.emit(tuple(float(v) for v in self.band.getRegion()))
