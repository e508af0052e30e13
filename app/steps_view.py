"""Iteration view: the intermediate steps of one image's inference, for any method whose inference is iterative
(`AnomalyModel.steps`): at each step the pixels it generated afresh, the image after the step and the step's
anomaly maps. The steps are computed in a worker (progress bar, Cancel) and can be stepped through as they come."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSlider, QVBoxLayout, QWidget

from app.image_panes import PaneGrid, as_display
from app.jobs import steps_job
from app.session import Session
from app.widgets import shrinkable
from app.worker import Job, JobRunner
from core.data.io import ImageReadError, read_image
from core.inference import StepImage
from core.progress import Progress
from core.workflow.steps import method_has_steps

INPUT, MASK, RECON = "input", "generated at this step", "after this step"


class StepsView(QWidget):
    """Steps of the session's current image with the session's model; `start()` computes them."""

    def __init__(self, session: Session, runner: JobRunner, device: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[StepImage] = []
        self.path: Path | None = None  # the image the steps are of
        self.image: np.ndarray | None = None
        self.session, self.runner, self.device = session, runner, device
        self.job: Job | None = None

        self.grid = PaneGrid(columns=4)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.previous = QPushButton("◀")
        self.next = QPushButton("▶")
        self.label = shrinkable(QLabel("No steps yet."))
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)

        bar = QHBoxLayout()
        for widget, stretch in ((self.previous, 0), (self.slider, 1), (self.next, 0), (self.progress, 0),
                                (self.cancel_button, 0)):
            bar.addWidget(widget, stretch)
        self.slider.valueChanged.connect(self.show_step)
        for button, delta in ((self.previous, -1), (self.next, 1)):
            button.clicked.connect(lambda _checked=False, d=delta: self.slider.setValue(self.slider.value() + d))
        self.cancel_button.clicked.connect(self.cancel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.label)
        layout.addWidget(self.grid, 1)

    def available(self) -> bool:
        """Whether the session's model has steps to show (a .safetensors file of an iterative method)."""
        meta, path = self.session.meta, self.session.model_path
        return (meta is not None and path is not None and path.suffix == ".safetensors"
                and method_has_steps(meta.method))

    def start(self) -> None:
        """Compute the steps of the current image (a running computation is cancelled first)."""
        self.cancel()
        self.steps, self.path, self.image = [], self.session.current, None
        self.slider.setRange(0, 0)
        model = self.session.model_path
        if self.path is None or model is None or not self.available():
            self.label.setText("Pick an image; the model's method must have intermediate steps.")
            self._draw(None)
            return
        try:
            self.image = as_display(read_image(self.path))
        except ImageReadError as exc:
            self.label.setText(f"Cannot show {self.path.name}: {exc.reason}")
            return
        self.label.setText(f"Computing the steps of {self.path.name}…")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        holder: dict[str, Job] = {}

        def progress(value: Progress) -> None:
            if holder["job"] is self.job:
                self._progress(value)

        def done(last: Progress) -> None:
            if holder["job"] is self.job:
                self._done(last)
        self.job = holder["job"] = self.runner.start(steps_job(model, self.path, self.device()), "steps",
                                                     on_progress=progress, on_done=done,
                                                     on_error=self._failed)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.job = None
        self.cancel_button.setEnabled(False)

    # ---------------------------------------------------------------------------------------------- jobs
    def _progress(self, value: Progress) -> None:
        if value.phase != "step" or not isinstance(value.result, StepImage):
            return
        self.steps.append(value.result)
        self.progress.setRange(0, max(value.total, len(self.steps)))
        self.progress.setValue(len(self.steps))
        following = self.slider.value() == self.slider.maximum()  # on the newest step: follow the new one
        self.slider.setRange(0, len(self.steps) - 1)
        if following:
            self.slider.setValue(len(self.steps) - 1)
        if len(self.steps) == 1:
            self.show_step(0)

    def _done(self, last: Progress) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        if last.phase == "done":
            self.progress.setRange(0, len(self.steps) or 1)
            self.progress.setValue(len(self.steps))
        self.show_step(self.slider.value())
        if last.phase != "done":
            self.label.setText(f"Stopped after {len(self.steps)} steps. " + self.label.text())

    def _failed(self, message: str) -> None:
        self.label.setText(message)

    # ------------------------------------------------------------------------------------------- showing
    def show_step(self, index: int) -> None:
        step = self.steps[index] if 0 <= index < len(self.steps) else None
        self._draw(step)
        if step is not None:
            finished = self.job is None and len(self.steps) < step.total
            ended = " (stopped early: nothing left to change)" if finished and index == len(self.steps) - 1 else ""
            self.label.setText(f"Step {index + 1} of {len(self.steps)} (at most {step.total}): {step.name}{ended} — "
                               f"{100 * float(step.mask.mean()):.1f} % of the pixels generated afresh")

    def _draw(self, step: StepImage | None) -> None:
        names = list(step.maps) if step is not None else []
        self.grid.build([(INPUT, False), (MASK, False), (RECON, False)] + [(n, True) for n in names])
        h, w = self.image.shape[:2] if self.image is not None else (1, 1)
        rect = QRectF(0, 0, w, h)
        for key, pane in self.grid.panes.items():
            if key == INPUT:
                pane.set_base(self.image, rect)
            elif step is None:
                pane.set_base(None, rect)
            elif key == MASK:
                pane.set_base(step.mask.astype(np.float32), rect)
            elif key == RECON:
                pane.set_base(as_display(step.reconstruction), rect)
            else:
                pane.set_heat(step.maps[key], rect, self._levels(key))
            pane.set_title(key)
        if self.image is not None and len(self.steps) <= 1:
            self.grid.fit(w, h)

    def _levels(self, name: str) -> tuple[float, float]:
        """One colour range for every step: 0 .. twice the model's pixel threshold, else the first step's top."""
        meta = self.session.meta
        stored = meta.pixel_threshold(name) if meta else None
        if stored and np.isfinite(stored) and stored > 0:
            return 0.0, 2.0 * stored
        first = self.steps[0].maps.get(name) if self.steps else None
        top = float(np.max(first)) if first is not None and first.size else 1.0
        return 0.0, top or 1.0
