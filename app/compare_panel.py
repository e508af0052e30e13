"""Compare two trained models on the same data: metrics side by side and synchronized map viewers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from app.image_panes import PaneGrid, as_display
from app.jobs import compare_job
from app.session import Session
from app.worker import Job, JobRunner
from core.result_store import load_maps
from core.results import CachedResult
from core.data.io import ImageReadError, read_image
from core.modelfile import ModelFileError, read_meta
from core.paths import models_dir
from core.progress import Progress

ROWS = (("image_auroc", "Image AUROC"), ("f1_max", "Image F1-max"), ("pixel_auroc", "Pixel AUROC"),
        ("aupro", "AUPRO (FPR 0.3)"), ("pixel_f1_max", "Pixel F1-max"), ("label_free_f1", "F1 at label-free threshold"),
        ("label_free_frr", "False-reject rate at label-free threshold"), ("ms_per_image", "ms per image"))


class ComparePanel(QWidget):
    def __init__(self, session: Session, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.job: Job | None = None
        self.other: dict[Path, CachedResult] = {}
        self.other_meta = None

        self.model_b = QLineEdit()
        self.model_b.setPlaceholderText("second model file (.safetensors)")
        browse = QPushButton("Browse…")
        self.run_button = QPushButton("Compare")
        self.status = QLabel("Model A is the open model; pick model B and press Compare.")
        self.status.setWordWrap(True)
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
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(row)
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
        self.run_button.clicked.connect(self.start)
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
        try:
            self.other_meta = read_meta(model_b)
        except ModelFileError as exc:
            self.status.setText(str(exc))
            return
        self.model_b.setText(str(model_b))
        self.table.setHorizontalHeaderLabels(["A", "B"])
        self.table.horizontalHeaderItem(0).setToolTip(str(model_a))
        self.table.horizontalHeaderItem(1).setToolTip(str(model_b))
        self.other = {}
        self.run_button.setEnabled(False)
        self.status.setText("Comparing…")
        self.job = self.runner.start(compare_job(model_a, model_b, index), "compare",
                                     on_progress=self._progress, on_done=self._done, on_error=self.status.setText)

    def _progress(self, progress: Progress) -> None:
        if progress.phase == "evaluated" and isinstance(progress.result, list):
            self._fill(progress.result)
        for result in (progress.extra or {}).get("cached", []):
            self.other[result.path] = result
        if progress.total:
            self.status.setText(f"{progress.phase}: {progress.step} of {progress.total}")
        if self.session.current in self.other and self.session.current is not None:
            self.show_path(self.session.current)

    def _done(self, last: Progress) -> None:
        self.job = None
        self.run_button.setEnabled(True)
        if last.phase != "failed":
            self.status.setText(f"Compared on {len(self.other)} images." if last.phase == "done" else last.message)
        self.show_path(self.session.current)

    def _fill(self, reports: list[dict]) -> None:
        for col, report in enumerate(reports):
            metrics = report["maps"][report["default_map"]]
            at = metrics.get("at_label_free_thresholds", {}).get("image", {})
            values = dict(metrics, label_free_f1=at.get("f1"), label_free_frr=at.get("false_reject_rate"),
                          ms_per_image=report.get("ms_per_image"))
            for row, (key, _) in enumerate(ROWS):
                value = values.get(key)
                text = "—" if value is None else f"{value:.3f}" if key != "ms_per_image" else f"{value:.1f}"
                self.table.setItem(row, col, QTableWidgetItem(text))

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
            pane.plot.setTitle(f"{key}: {meta.method if meta else '?'} {name}{score}", size="9pt")
        self.grid.fit(image.shape[1], image.shape[0])
