"""Result viewer: input, reconstruction and every error map of the current image, side by side or overlaid
on the input, with colorbars, predicted-defect and ground-truth contours, and a mouse readout; the model's
reference image when its method uses one; for models whose inference is iterative, the iteration view of the
current image (app.steps_view)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter,
                               QVBoxLayout, QWidget)

from app.image_panes import PaneGrid, as_display
from app.session import Session
from app.steps_view import StepsView
from app.widgets import shrinkable
from app.worker import JobRunner
from core.result_store import LoadedMaps, load_maps
from core.results import CachedResult
from core.data.io import ImageReadError, MaskMismatchError, read_image, read_mask

INPUT, RECON, REFERENCE = "input", "reconstruction", "reference"
TITLE_NAME = 24  # a longer file name is shortened in a pane title: a wide title widens its pane and the image


class ResultViewer(QWidget):
    """`runner` and `device` (the device to compute on, e.g. the training panel's choice) enable the iteration
    view; without them the viewer shows results only."""

    def __init__(self, session: Session, runner: JobRunner | None = None, device: Callable[[], str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.image: np.ndarray | None = None  # (H,W) or (H,W,3) float in [0,1]
        self.truth: np.ndarray | None = None  # (H,W) bool, full resolution
        self.result: CachedResult | None = None
        self.loaded = LoadedMaps()  # the current image's maps and reconstruction, full resolution

        self.mode = QComboBox()
        self.mode.addItems(["Side by side", "Overlay on input"])
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setFixedWidth(120)
        self.show_pred = QCheckBox("Predicted contour")
        self.show_pred.setChecked(True)
        self.show_truth = QCheckBox("Ground truth")
        self.show_truth.setChecked(True)
        self.readout = QLabel("Open a folder and pick an image.")
        shrinkable(self.readout).setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid = PaneGrid(columns=3)
        self.steps = StepsView(session, runner, device or (lambda: "auto")) if runner is not None else None
        self.iterations = QPushButton("Iterations")
        self.iterations.setCheckable(True)
        self.iterations.setToolTip("Step through the current image's inference: what each iteration "
                                   "generated afresh and the image after it")
        self.iterations.setVisible(False)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("View:"))
        bar.addWidget(self.mode)
        bar.addWidget(QLabel("Opacity:"))
        bar.addWidget(self.opacity)
        bar.addWidget(self.show_pred)
        bar.addWidget(self.show_truth)
        bar.addWidget(self.iterations)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(bar)
        if self.steps is not None:
            split = QSplitter(Qt.Orientation.Vertical)
            split.addWidget(self.grid)
            split.addWidget(self.steps)
            self.steps.hide()
            layout.addWidget(split, 1)
        else:
            layout.addWidget(self.grid, 1)
        layout.addWidget(self.readout)

        self.mode.currentIndexChanged.connect(self.refresh)
        self.opacity.valueChanged.connect(self._apply_opacity)
        self.show_pred.toggled.connect(self._update_contours)
        self.show_truth.toggled.connect(self._update_contours)
        self.grid.hovered.connect(self._hover)
        session.currentChanged.connect(lambda: self.show_path(session.current))
        session.thresholdsChanged.connect(self._update_contours)
        session.thresholdsChanged.connect(self._update_titles)
        session.modelChanged.connect(self.refresh)
        session.referenceChanged.connect(self.refresh)
        session.resultsChanged.connect(self._results_changed)
        if self.steps is not None:
            self.iterations.toggled.connect(self._toggle_steps)
            session.modelChanged.connect(self._model_changed)
            session.currentChanged.connect(self._current_changed)
        self._build()

    # ------------------------------------------------------------------------------------------ projects
    def state(self) -> dict[str, Any]:
        """The view options a project keeps: mode, overlay opacity and which contours are shown."""
        return {"mode": self.mode.currentText(), "opacity": self.opacity.value(),
                "show_predicted": self.show_pred.isChecked(), "show_truth": self.show_truth.isChecked()}

    def restore(self, state: dict[str, Any]) -> None:
        """Apply view options from `state()`; unknown or ill-typed values are left as they are."""
        if isinstance(state.get("mode"), str) and self.mode.findText(state["mode"]) >= 0:
            self.mode.setCurrentText(state["mode"])
        if isinstance(state.get("opacity"), int):
            self.opacity.setValue(state["opacity"])
        for key, box in (("show_predicted", self.show_pred), ("show_truth", self.show_truth)):
            if isinstance(state.get(key), bool):
                box.setChecked(state[key])

    # ------------------------------------------------------------------------------------------ iterations
    def _model_changed(self) -> None:
        assert self.steps is not None
        available = self.steps.available()
        self.iterations.setVisible(available)
        if not available:
            self.iterations.setChecked(False)
        elif self.iterations.isChecked():
            self.steps.start()

    def _toggle_steps(self, on: bool) -> None:
        assert self.steps is not None
        self.steps.setVisible(on)
        if on:
            self.steps.start()
        else:
            self.steps.cancel()

    def _current_changed(self) -> None:
        if self.steps is not None and self.iterations.isChecked() and self.steps.path != self.session.current:
            self.steps.start()

    # ------------------------------------------------------------------------------------------ building
    def map_names(self) -> list[str]:
        return list(self.session.meta.map_names) if self.session.meta else []

    def _build(self) -> None:
        specs = [(INPUT, False), (RECON, False)] + [(name, True) for name in self.map_names()]
        if self.session.reference is not None:
            specs.append((REFERENCE, False))
        self.grid.build(specs)

    def _results_changed(self) -> None:
        path = self.session.current
        if path is not None and (self.result is None) != (path not in self.session.results):
            self.show_path(path)

    def refresh(self) -> None:
        self._build()
        self.show_path(self.session.current, keep_view=True)

    # ------------------------------------------------------------------------------------------- showing
    def show_path(self, path: Path | None, keep_view: bool = False) -> None:
        previous = self.image.shape[:2] if self.image is not None else None
        self.image, self.truth, self.result = None, None, None
        problem = ""
        if path is not None:
            try:
                self.image = as_display(read_image(path))
            except ImageReadError as exc:
                self.readout.setText(f"Cannot show {path.name}: {exc.reason}")
            record = self.session.record(path)
            if self.image is not None and record is not None and record.mask_path is not None:
                try:
                    self.truth = read_mask(record.mask_path, path, self.image.shape[:2])[0] > 0
                except (ImageReadError, MaskMismatchError) as exc:
                    problem = f"⚠ ground truth not shown: {exc} — "
            self.result = self.session.results.get(path)
        self.loaded = load_maps(self.result)
        self._build()
        self._draw()
        if self.image is not None and path is not None:
            self.readout.setText(f"{problem}{path} — hover for pixel values; N / P (or arrow keys): next / previous "
                                 "image.")
        if self.image is not None and (not keep_view or previous != self.image.shape[:2]):
            self.grid.fit(self.image.shape[1], self.image.shape[0])

    def _rect(self) -> QRectF:
        h, w = self.image.shape[:2] if self.image is not None else (1, 1)
        return QRectF(0, 0, w, h)

    def _reference_rect(self) -> QRectF:
        """Where the reference image lies in the linked views: over the whole image when the model sees images
        resized, else over one tile at the top left (its size in image pixels)."""
        config = self.session.meta.config if self.session.meta else {}
        if config.get("resize_mode", "resize") == "resize":
            return self._rect()
        side = float(config.get("input_size", 1)) / float(config.get("tile_scale", 1.0) or 1.0)
        return QRectF(0, 0, side, side)

    def _draw(self) -> None:
        overlay = self.mode.currentIndex() == 1
        rect = self._rect()
        result = self.result
        for key, pane in self.grid.panes.items():
            if key == INPUT:
                pane.set_base(self.image, rect)
            elif key == RECON:
                recon = self.loaded.reconstruction
                pane.set_base(as_display(recon) if recon is not None else None, rect)
            elif key == REFERENCE:
                reference = self.session.reference
                pane.set_base(as_display(reference) if reference is not None else None, self._reference_rect())
            else:
                pane.set_base(self.image if overlay else None, rect)
                values = self.loaded.maps.get(key)
                pane.set_heat(values, rect, self._levels(key, values))
        self._apply_opacity()
        self._update_contours()
        self._update_titles()

    def _levels(self, name: str, values: np.ndarray | None) -> tuple[float, float]:
        """Colour range 0 .. twice the model's pixel threshold, so the threshold sits mid-scale."""
        meta = self.session.meta
        stored = meta.pixel_threshold(name) if meta else None
        if stored and np.isfinite(stored) and stored > 0:
            return 0.0, 2.0 * stored
        top = float(np.max(values)) if values is not None and values.size else 1.0
        return 0.0, top or 1.0

    def _apply_opacity(self) -> None:
        overlay = self.mode.currentIndex() == 1
        self.opacity.setEnabled(overlay)
        for pane in self.grid.panes.values():
            if pane.heat is not None:
                pane.heat.setOpacity(self.opacity.value() / 100 if overlay else 1.0)

    def _pixel_threshold(self, name: str) -> float:
        t = self.session.thresholds
        if name == t.map_name:
            return t.pixel
        meta = self.session.meta
        stored = meta.pixel_threshold(name) if meta else None
        return float("inf") if stored is None else stored

    def _update_contours(self) -> None:
        rect = self._rect()
        for key, pane in self.grid.panes.items():
            name = key if key not in (INPUT, RECON) else self.session.thresholds.map_name
            own = key != REFERENCE  # the reference is another image: the current one's contours do not fit it
            pane.set_contours(self.loaded.maps.get(name) if own else None, self._pixel_threshold(name),
                              self.truth if own else None, rect, self.show_pred.isChecked(),
                              self.show_truth.isChecked())

    def _update_titles(self) -> None:
        path = self.session.current
        result = self.result
        for key, pane in self.grid.panes.items():
            if key == INPUT and path is not None:
                record = self.session.record(path)
                label = record.label if record else "?"
                verdict = self.session.verdict(path)
                text = f"input — {label}" + (f" → {verdict}" if verdict else "")
            elif key == RECON:
                text = "reconstruction" if result is None or self.loaded.reconstruction is not None else \
                    "reconstruction (not kept)"
            elif key == REFERENCE:
                name = Path(self.session.reference_source).name
                name = name if len(name) <= TITLE_NAME else f"{name[:TITLE_NAME // 2 - 1]}…{name[-TITLE_NAME // 2:]}"
                text = f"reference — {name}" if name else "reference — chosen in training"
                text += " (not saved)" if self.session.reference_unsaved else ""
            elif key != INPUT and result is not None and key in result.scores:
                missing = "" if self.loaded.maps else " (not kept)"
                text = f"{key} — {result.scores[key]:.4g}{missing}"
            else:
                text = key
            pane.set_title(text)

    # ------------------------------------------------------------------------------------------- readout
    def _hover(self, point: tuple[float, ...]) -> None:
        if not point or self.image is None:
            return
        x, y = int(np.floor(point[0])), int(np.floor(point[1]))
        h, w = self.image.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return
        pixel = self.image[y, x]
        text = f"x {x}, y {y} — input {np.round(pixel, 3).tolist() if np.ndim(pixel) else f'{pixel:.3f}'}"
        result = self.result
        if result is not None:
            for name, values in self.loaded.maps.items():
                sy, sx = min(int(y * values.shape[0] / h), values.shape[0] - 1), min(
                    int(x * values.shape[1] / w), values.shape[1] - 1)
                text += f" — {name} {float(values[sy, sx]):.4g}"
            score = result.scores.get(self.session.thresholds.map_name)
            if score is not None:
                text += f" | image score {score:.4g} ({self.session.verdict(result.path)})"
        if self.truth is not None:
            text += f" | ground truth: {'defect' if self.truth[y, x] else 'normal'}"
        self.readout.setText(text)
