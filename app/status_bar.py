"""The status bar: the job area (what is running: text, progress bar, Cancel; and the messages shown to the
user), and the device and perceptual backbone in use. Jobs report here instead of reaching into the window's
widgets."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QMessageBox, QProgressBar, QPushButton, QStatusBar, QWidget

from app.widgets import shrinkable
from core.device import describe_device, pick_device
from core.progress import Progress
from core.scoring.perceptual import available_backbone

STEP_EVERY_S = 0.05  # the progress bar moves at most this often (a job may report every image)


class JobStatus(QObject):
    """Status text, a progress bar and a Cancel button in `bar`; `cancelRequested` when Cancel is clicked."""

    cancelRequested = Signal()

    def __init__(self, bar: QStatusBar, dialog_parent: QWidget) -> None:
        super().__init__(dialog_parent)
        self.dialog_parent = dialog_parent
        self.errors: list[str] = []  # every message shown, newest last (tests read it)
        self._last_step = 0.0
        self.label = shrinkable(QLabel("Ready."))
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop scoring, inspecting or writing a report (a report written so far "
                                      "is kept, marked partial).")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self._cancel_clicked)
        bar.addWidget(self.label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    def _cancel_clicked(self) -> None:
        self.cancelRequested.emit()
        self.label.setText("Cancelling…")

    def say(self, text: str, tooltip: str | None = None) -> None:
        """Show `text` (and `tooltip`, when given) in the status bar."""
        self.label.setText(text)
        if tooltip is not None:
            self.label.setToolTip(tooltip)

    def started(self, text: str, cancellable: bool = True) -> None:
        """A job began: its text, and the Cancel button when it can be cancelled."""
        self.say(text)
        if cancellable:
            self.cancel_button.show()

    def step(self, progress: Progress) -> None:
        """Move the progress bar (at most every STEP_EVERY_S); show the job's message when it has one."""
        now = time.perf_counter()
        if not progress.message and progress.step < progress.total and now - self._last_step < STEP_EVERY_S:
            return
        self._last_step = now
        self.progress.show()
        self.progress.setMaximum(max(progress.total, 1))
        self.progress.setValue(progress.step)
        if progress.message:
            self.label.setText(progress.message)

    def finished(self, text: str) -> None:
        """A job ended: hide its progress bar and Cancel button, and say how it went."""
        self.progress.hide()
        self.cancel_button.hide()
        self.label.setText(text)

    def show_error(self, message: str) -> None:
        """Readable message in the status bar and a non-blocking dialog; never raises."""
        self.errors.append(message)
        self.label.setText(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "DefectLab", message, QMessageBox.StandardButton.Ok,
                          self.dialog_parent)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()


class MachineStatus(QObject):
    """The device scoring and training run on, and the perceptual backbone, as permanent status-bar labels."""

    def __init__(self, bar: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.device_label = QLabel()
        self.backbone_label = QLabel()
        bar.addPermanentWidget(self.device_label)
        bar.addPermanentWidget(self.backbone_label)

    def refresh(self, device_choice: str) -> None:
        """Say which device `device_choice` ("auto", "cpu", ...) gives and which backbone is found."""
        try:
            device = describe_device(pick_device(device_choice))
        except ValueError as exc:
            device = str(exc)
        self.device_label.setText(f"Device: {device}")
        try:
            backbone = available_backbone()
        except Exception as exc:  # noqa: BLE001 - a status line must never stop the window from opening
            backbone = f"unknown ({exc})"
        self.backbone_label.setText(f"Perceptual backbone: {backbone}")
