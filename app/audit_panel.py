"""Training-set audit: score every training image with the open model (core.workflow.audit), rank them most
anomalous first with the suspects (above the model's label-free image threshold) ticked; a click shows an
image; one button leaves the ticked images out and trains again."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from app.session import Session
from app.widgets import shrinkable
from app.worker import Job, JobRunner
from core.progress import Progress
from core.workflow.audit import AuditEntry, audit_training_set


class AuditPanel(QWidget):
    retrainRequested = Signal(object)  # tuple[Path, ...]: the training images to leave out

    def __init__(self, session: Session, runner: JobRunner, device: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.device = device
        self.job: Job | None = None
        self.entries: list[AuditEntry] = []

        self.run_button = QPushButton("Audit the training set")
        self.run_button.setToolTip("Score every training image with the open model: defective images that slipped "
                                   "into the training folder tend to rank first.")
        self.retrain_button = QPushButton("Leave the ticked images out and train again")
        self.retrain_button.setEnabled(False)
        self.status = QLabel("Open a model, then audit the images it was trained on.")
        shrinkable(self.status).setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["leave out", "score", "file"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.retrain_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)

        self.run_button.clicked.connect(self.start)
        self.retrain_button.clicked.connect(self._retrain)
        self.table.currentCellChanged.connect(self._picked)
        session.modelChanged.connect(self._reset)

    def _reset(self) -> None:
        self.entries = []
        self.table.setRowCount(0)
        self.retrain_button.setEnabled(False)

    # --------------------------------------------------------------------------------------------- audit
    def start(self) -> None:
        model, index = self.session.model_path, self.session.index
        if self.job is not None:
            return
        if model is None or index is None:
            self.status.setText("Open a folder and a model first.")
            return
        self.run_button.setEnabled(False)
        self.status.setText(f"Scoring the training images of {index.root.name} with {model.name}…")
        root, device = index.root, self.device()
        self.job = self.runner.start(lambda cancel: audit_training_set(model, root, device, cancel), "audit",
                                     on_progress=self._progress, on_done=self._done, on_error=self._failed)

    def _progress(self, progress: Progress) -> None:
        if progress.phase == "audit" and progress.total:
            self.status.setText(f"Auditing: {progress.step} of {progress.total} training images")

    def _failed(self, message: str) -> None:
        self.status.setText(message)

    def _done(self, last: Progress) -> None:
        self.job = None
        self.run_button.setEnabled(True)
        if last.phase != "done" or not isinstance(last.result, list):
            if last.phase == "cancelled":
                self.status.setText("Audit cancelled.")
            return
        self.show_entries(last.result)
        self.status.setText(f"{last.message}. Ticked: the suspects; click a row to see the image.")

    def show_entries(self, entries: list[AuditEntry]) -> None:
        """List the audit, most anomalous first, suspects ticked."""
        self.entries = list(entries)
        self.table.setRowCount(len(self.entries))
        root = self.session.index.root if self.session.index else None
        for row, entry in enumerate(self.entries):
            tick = QTableWidgetItem("suspect" if entry.suspect else "")
            tick.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            tick.setCheckState(Qt.CheckState.Checked if entry.suspect else Qt.CheckState.Unchecked)
            self.table.setItem(row, 0, tick)
            self.table.setItem(row, 1, QTableWidgetItem(f"{entry.score:.4g}"))
            name = entry.path.relative_to(root).as_posix() if root and entry.path.is_relative_to(root) \
                else str(entry.path)
            self.table.setItem(row, 2, QTableWidgetItem(name))
        self.retrain_button.setEnabled(bool(self.entries))

    def ticked(self) -> tuple[Path, ...]:
        """The training images ticked to be left out."""
        return tuple(entry.path for row, entry in enumerate(self.entries)
                     if self.table.item(row, 0).checkState() == Qt.CheckState.Checked)

    def _picked(self, row: int, *_args: int) -> None:
        if 0 <= row < len(self.entries) and self.session.record(self.entries[row].path) is not None:
            self.session.set_current(self.entries[row].path)

    def _retrain(self) -> None:
        chosen = self.ticked()
        if not chosen:
            self.status.setText("Tick the images to leave out first.")
            return
        self.status.setText(f"Training again without {len(chosen)} images (see the Training dock)…")
        self.retrainRequested.emit(chosen)
