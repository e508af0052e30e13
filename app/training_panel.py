"""Training panel: method, preset, key hyper-parameters and device; Train runs core's training generator in a
worker thread with a progress bar, ETA, live loss curves and memory-slot usage; Cancel keeps the checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from app.pgconfig import pg
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.eta import Eta
from app.session import Session
from app.widgets import shrinkable
from app.worker import Job, JobRunner
from core.device import DEVICE_CHOICES, pick_device
from core.models.registry import PRESETS, list_methods
from core.progress import Progress
from core.training.engine import TrainOptions
from core.model_health import detection_warning
from core.modelfile import ModelFileError, read_meta
from core.paths import unused_path
from core.workflow import TrainRequest, train_model
from core.workflow.train import default_model_path

PLOT_EVERY_S = 0.2  # loss curves are redrawn at most this often
CURVE_COLOURS = ("#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA —"
    seconds = int(round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"ETA {seconds // 3600} h {seconds % 3600 // 60:02d} min"


class TrainingPanel(QWidget):
    trainingFinished = Signal(object)  # model Path (phase "done")
    trainingCancelled = Signal()
    trainingFailed = Signal(str)
    trainingWarning = Signal(str)  # a finished model that does not detect (core.model_health)

    def __init__(self, session: Session, runner: JobRunner, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.settings = settings
        self.job: Job | None = None
        self.specs = {spec.name: spec for spec in list_methods()}
        self.losses: dict[str, tuple[list[int], list[float]]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._last_plot = 0.0
        self.pace = Eta()

        self.method = QComboBox()
        self.method.addItems(list(self.specs))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 4096)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.input_size = QLabel()
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.device = QComboBox()
        self.device.addItems([d for d in DEVICE_CHOICES if d in ("auto", "cpu") or _available(d)])
        self.fresh = QCheckBox("Start fresh (ignore a saved checkpoint)")
        self.model_file = QLabel()
        shrinkable(self.model_file).setWordWrap(True)
        self.replace = QCheckBox("Replace the existing model file")
        self.replace.setToolTip("Off: a new model file is written beside the existing one.")
        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = shrinkable(QLabel("Idle."))
        self.status.setWordWrap(True)
        self.eta = QLabel(format_eta(None))
        self.loss_plot = pg.PlotWidget(title="Training losses")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_legend = shrinkable(QLabel(""))  # under the plot: a legend inside would cover the curves
        self.loss_legend.setWordWrap(True)
        self.loss_plot.setMinimumHeight(160)
        self.memory_plot = pg.PlotWidget(title="Memory-slot usage")
        self.memory_plot.setLabel("bottom", "slot")
        self.memory_plot.setMinimumHeight(110)
        self.memory_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush="#1f77b4")
        self.memory_plot.addItem(self.memory_bars)
        self.memory_plot.hide()

        form = QFormLayout()
        form.addRow("Method", self.method)
        form.addRow(self.summary)  # the whole width: a long description wraps instead of being cut
        form.addRow("Preset", self.preset)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Input size", self.input_size)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("", self.fresh)
        form.addRow("Writes", self.model_file)
        form.addRow("", self.replace)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.eta)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addLayout(progress_row)
        layout.addWidget(self.status)
        layout.addWidget(self.loss_plot, 2)
        layout.addWidget(self.loss_legend)
        layout.addWidget(self.memory_plot, 1)

        self.method.currentTextChanged.connect(self._load_preset)
        self.preset.currentTextChanged.connect(self._load_preset)
        self.replace.toggled.connect(self._show_model_file)
        session.datasetChanged.connect(self._show_model_file)
        self.train_button.clicked.connect(lambda _checked=False: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        self._restore()
        self._load_preset()

    # ------------------------------------------------------------------------------------------ settings
    def _restore(self) -> None:
        if self.settings is None:
            return
        method = str(self.settings.value("training/method", "ae-ssim"))
        if method in self.specs:
            self.method.setCurrentText(method)
        self.preset.setCurrentText(str(self.settings.value("training/preset", "fast")))
        self.device.setCurrentText(str(self.settings.value("training/device", "auto")))

    def _save(self) -> None:
        if self.settings is not None:
            self.settings.setValue("training/method", self.method.currentText())
            self.settings.setValue("training/preset", self.preset.currentText())
            self.settings.setValue("training/device", self.device.currentText())

    def _load_preset(self) -> None:
        spec = self.specs[self.method.currentText()]
        self.summary.setText(spec.summary)
        config = spec.config(self.preset.currentText())
        self.epochs.setValue(config.epochs)
        self.batch_size.setValue(config.batch_size)
        self.lr.setValue(config.lr)
        self.input_size.setText(f"{config.input_size} px ({config.resize_mode})")
        self._show_model_file()

    # ------------------------------------------------------------------------------------- model file
    def model_path(self) -> Path | None:
        """Where Train writes the model: the usual name, or a new one beside an existing model file unless
        "Replace the existing model file" is ticked (None when no folder is open)."""
        index = self.session.index
        if index is None:
            return None
        usual = default_model_path(index.root, self.method.currentText(), self.preset.currentText())
        return usual if self.replace.isChecked() else unused_path(usual)

    def _show_model_file(self) -> None:
        index = self.session.index
        usual = default_model_path(index.root, self.method.currentText(), self.preset.currentText()) \
            if index is not None else None
        self.replace.setVisible(usual is not None and usual.exists())
        path = self.model_path()
        self.model_file.setText(path.name if path is not None else "—")
        self.model_file.setToolTip(str(path) if path is not None else "")

    def overrides(self) -> dict[str, object]:
        """Only the values that differ from the preset, so the model file records what was changed."""
        config = self.specs[self.method.currentText()].config(self.preset.currentText())
        chosen = {"epochs": self.epochs.value(), "batch_size": self.batch_size.value(), "lr": self.lr.value()}
        return {k: v for k, v in chosen.items() if not np.isclose(float(getattr(config, k)), float(v))}

    # -------------------------------------------------------------------------------------------- train
    def request(self, exclude: tuple[Path, ...] = ()) -> TrainRequest:
        """The training the panel's settings ask for; `exclude`: training images to leave out."""
        index = self.session.index
        if index is None:
            raise ValueError("Open a folder of images first (File > Open folder…).")
        return TrainRequest(data=index.root, method=self.method.currentText(), preset=self.preset.currentText(),
                            overrides=self.overrides(), fresh=self.fresh.isChecked(), out=self.model_path(),
                            exclude=tuple(exclude),
                            options=TrainOptions(seed=self.seed.value(), device=self.device.currentText(),
                                                 checkpoint_every=50))

    def is_running(self) -> bool:
        return self.job is not None

    def start(self, exclude: tuple[Path, ...] = ()) -> None:
        """Train with the panel's settings, leaving out the training images in `exclude`."""
        if self.job is not None:
            return
        try:
            request = self.request(tuple(exclude))
        except ValueError as exc:
            self.status.setText(str(exc))
            self.trainingFailed.emit(str(exc))
            return
        self._save()
        self.losses.clear()
        self.loss_plot.clear()
        self.loss_legend.setText("")
        self.curves.clear()
        self.memory_plot.hide()
        self.progress.setValue(0)
        self.pace.reset()
        self.eta.setText("ETA: measuring…")
        left_out = f", {len(request.exclude)} images left out" if request.exclude else ""
        self.status.setText(f"Training {request.method} ({request.preset}) on {request.data.name}{left_out}…")
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.job = self.runner.start(lambda cancel: train_model(request, cancel), "training",
                                     on_progress=self._progress, on_done=self._done, on_error=self._failed)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling after the current step…")

    def _progress(self, progress: Progress) -> None:
        self.progress.setMaximum(max(progress.total, 1))
        self.progress.setValue(progress.step)
        if progress.message:
            self.status.setText(progress.message)
        elif progress.phase not in ("done", "cancelled"):
            self.status.setText(f"{progress.phase}: step {progress.step} of {progress.total}")
        if progress.losses:
            self.eta.setText(format_eta(self.pace.update(progress.step, progress.total)))
            for name, value in progress.losses.items():
                steps, values = self.losses.setdefault(name, ([], []))
                steps.append(progress.step)
                values.append(value)
        usage = progress.extra.get("memory_usage") if progress.extra else None
        if usage:
            self.memory_bars.setOpts(x=np.arange(len(usage)), height=np.asarray(usage, dtype=float), width=0.8)
            self.memory_plot.show()
        now = time.perf_counter()
        if now - self._last_plot >= PLOT_EVERY_S:
            self._last_plot = now
            self._plot()

    def _plot(self) -> None:
        for i, (name, (steps, values)) in enumerate(self.losses.items()):
            curve = self.curves.get(name)
            if curve is None:
                curve = self.loss_plot.plot(name=name, pen=pg.mkPen(CURVE_COLOURS[i % len(CURVE_COLOURS)], width=2))
                self.curves[name] = curve
                self.loss_legend.setText("&nbsp;&nbsp; ".join(
                    f'<span style="color:{CURVE_COLOURS[k % len(CURVE_COLOURS)]}">━</span>&nbsp;{n}'
                    for k, n in enumerate(self.curves)))
            curve.setData(steps, values)

    def _done(self, last: Progress) -> None:
        self.job = None
        self._plot()
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.eta.setText(format_eta(None))
        if last.phase == "failed":
            return  # _failed already reported it
        self.replace.setChecked(False)
        self._show_model_file()
        if last.phase == "done" and isinstance(last.result, Path):
            # The message also says which synthetic-split calibrations are degenerate.
            self.status.setText(f"Done: {last.message or f'model written to {last.result}'}")
            self._check_detection(last.result)
            self.trainingFinished.emit(last.result)
        else:
            self.status.setText(last.message or "Training cancelled; the checkpoint is kept: Train resumes it.")
            self.trainingCancelled.emit()

    def _check_detection(self, model: Path) -> None:
        """Say plainly when the new model cannot tell synthetic defects from normals."""
        try:
            warning = detection_warning(read_meta(model))
        except ModelFileError:
            return
        if warning:
            self.status.setText(f"Model written to {model}. {warning}")
            self.trainingWarning.emit(warning)

    def _failed(self, message: str) -> None:
        self.status.setText(message)
        self.trainingFailed.emit(message)


def _available(device: str) -> bool:
    try:
        pick_device(device)
    except ValueError:
        return False
    return True
