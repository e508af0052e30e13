"""Compare two trained models on the same data: metrics side by side (computed from results already scored:
model A's are the session's, model B's are read back from disk when it scored this folder before) and
synchronized map viewers. The comparison shows its progress and can be cancelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.image_panes import PaneGrid, as_display
from app.jobs import compare_job
from app.session import Session
from app.widgets import shrinkable
from app.worker import Job, JobRunner
from core.result_store import load_maps
from core.results import CachedResult
from core.data.io import ImageReadError, read_image
from core.modelfile import ModelFileError, read_meta
from core.paths import models_dir
from core.progress import Progress

ROWS = (("image_auroc", "Image AUROC"), ("f1_max", "Image F1-max"), ("pixel_auroc", "Pixel AUROC (sample)"),
        ("aupro", "AUPRO (FPR 0.3)"), ("pixel_f1_max", "Pixel F1-max (sample)"),
        ("label_free_f1", "F1 at the model's image threshold"),
        ("label_free_frr", "False-reject rate at the model's image threshold"))


def column_names(model_a: Path, model_b: Path) -> list[str]:
    """The two models' file names without the suffix; their folders too when the names are the same."""
    a, b = model_a.name.removesuffix(".safetensors"), model_b.name.removesuffix(".safetensors")
    if a == b and model_a != model_b:
        a, b = f"{model_a.parent.name}/{a}", f"{model_b.parent.name}/{b}"
    return [f"A: {a}", f"B: {b}"]


class ComparePanel(QWidget):
    def __init__(self, session: Session, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.job: Job | None = None
        self.other: dict[Path, CachedResult] = {}
        self.other_meta = None
        self.names = ["A", "B"]  # the models' names, heading the columns and panes

        self.model_b = QLineEdit()
        self.model_b.setPlaceholderText("second model file (.safetensors)")
        browse = QPushButton("Browse…")
        self.run_button = QPushButton("Compare")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel("Model A is the open model; pick model B and press Compare.")
        shrinkable(self.status).setWordWrap(True)
        self.table = QTableWidget(len(ROWS), 2)
        self.table.setVerticalHeaderLabels([label for _, label in ROWS])
        self.table.setHorizontalHeaderLabels(["A", "B"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.grid = PaneGrid(columns=3)
        self.grid.build([("input", False), ("A", True), ("B", True)])

        row = QHBoxLayout()
        row.addWidget(QLabel("Model B"))
        row.addWidget(self.model_b, 1)
        row.addWidget(browse)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(row)
        left_layout.addWidget(self.progress)
        left_layout.addWidget(self.status)
        left_layout.addWidget(self.table, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.grid)
        splitter.setSizes([380, 700])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        browse.clicked.connect(self._browse)
        self.run_button.clicked.connect(lambda _checked=False: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        session.currentChanged.connect(lambda: self.show_path(session.current))
        session.modelChanged.connect(self._reset)
        session.datasetChanged.connect(self._reset)

    def state(self) -> dict[str, Any]:
        """What a project keeps of the comparison: model B, when it names an existing file."""
        text = self.model_b.text().strip()
        return {"model_b": Path(text) if text and Path(text).is_file() else None}

    def restore(self, state: dict[str, Any]) -> None:
        """Put a project's model B back in the field (the comparison itself is run again with Compare)."""
        model_b = state.get("model_b")
        if model_b is not None and self.job is None:
            self.model_b.setText(str(model_b))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model B", str(models_dir()), "DefectLab models (*.safetensors)")
        if path:
            self.model_b.setText(path)

    def _reset(self) -> None:
        self.other = {}
        self.table.clearContents()

    def start(self, model_b: Path | None = None) -> None:
        model_a, index = self.session.model_path, self.session.index
        model_b = Path(model_b or self.model_b.text().strip())
        if self.job is not None:
            return
        if model_a is None or index is None:
            self.status.setText("Open a folder and a model (A) first.")
            return
        if len(self.session.results) < len(index.records):
            self.status.setText(f"Model A has scored {len(self.session.results)} of {len(index.records)} images: "
                                "wait for it to finish, then press Compare.")
            return
        try:
            self.other_meta = read_meta(model_b)
        except ModelFileError as exc:
            self.status.setText(str(exc))
            return
        self.model_b.setText(str(model_b))
        self.table.setHorizontalHeaderLabels(column_names(model_a, model_b))
        self.table.horizontalHeaderItem(0).setToolTip(str(model_a))
        self.table.horizontalHeaderItem(1).setToolTip(str(model_b))
        self.other = {}
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText("Comparing…")
        self.names = column_names(model_a, model_b)
        self.job = self.runner.start(compare_job(model_a, self.session.scored(), model_b, index), "compare",
                                     on_progress=self._progress, on_done=self._done, on_error=self.status.setText)

    def _progress(self, progress: Progress) -> None:
        if progress.phase == "evaluated" and isinstance(progress.result, list):
            self._fill(progress.result)
        for result in (progress.extra or {}).get("cached", []):
            self.other[result.path] = result
        if progress.total:
            self.progress.setMaximum(progress.total)
            self.progress.setValue(progress.step)
            what = "scoring with B" if progress.phase == "model B" else progress.phase
            self.status.setText(progress.message or f"{what}: {progress.step} of {progress.total}")
        if self.session.current in self.other and self.session.current is not None:
            self.show_path(self.session.current)

    def cancel(self) -> None:
        """Stop the comparison (what B scored so far stays viewable)."""
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling…")

    def _done(self, last: Progress) -> None:
        self.job = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.hide()
        if last.phase != "failed":
            self.status.setText(f"Compared on {len(self.other)} images." if last.phase == "done"
                                else "Comparison cancelled.")
        self.show_path(self.session.current)

    def _fill(self, metrics: list[dict]) -> None:
        for col, values in enumerate(metrics):
            for row, (key, _) in enumerate(ROWS):
                value = values.get(key)
                self.table.setItem(row, col, QTableWidgetItem("—" if value is None else f"{value:.3f}"))

    def show_path(self, path: Path | None) -> None:
        if path is None or not self.isVisible() and not self.other:
            return
        try:
            image = as_display(read_image(path))
        except ImageReadError:
            return
        rect = QRectF(0, 0, image.shape[1], image.shape[0])
        self.grid.panes["input"].set_base(image, rect)
        pairs = (("A", self.session.results.get(path), self.session.meta), ("B", self.other.get(path), self.other_meta))
        for key, result, meta in pairs:
            pane = self.grid.panes[key]
            name = meta.default_map if meta is not None else ""
            values = load_maps(result).maps.get(name)
            stored = meta.pixel_threshold(name) if meta is not None else None
            top = 2 * stored if stored else float(np.max(values)) if values is not None else 1.0
            pane.set_heat(values, rect, (0.0, top))
            pane.set_contours(values,
                              stored if stored is not None else float("inf"), None, rect, True, False)
            score = f" — score {result.scores[name]:.4g}" if result is not None and name in result.scores else ""
            label = self.names[0 if key == "A" else 1]
            pane.set_title(f"{label}: {meta.method if meta else '?'} {name}{score}")
        self.grid.fit(image.shape[1], image.shape[0])
