"""The workbench window: composes the panels as docks, opens folders, models and projects, runs the indexing and
scoring jobs (inspections and reports through ReportActions), shows the device and perceptual backbone, and
remembers layout and recent files."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QPushButton, QWidget)

from app.compare_panel import ComparePanel
from app.dataset_panel import DatasetPanel
from app.jobs import Factory, demo_job, index_job, predict_job
from app.project_io import Locator, ask_dataset_folder, project_of, restore_project
from app.report_actions import ReportActions
from app.result_viewer import ResultViewer
from app.session import Session
from app.settings import add_recent, open_settings, recent
from app.threshold_panel import ThresholdPanel
from app.training_panel import TrainingPanel
from app.worker import Job, JobRunner
from core.data.index import DatasetIndex
from core.device import describe_device, pick_device
from core.modelfile import ModelFileError, read_meta
from core.paths import models_dir
from core.progress import Progress
from core.project import PROJECT_SUFFIX, ProjectFileError
from core.project import open_project as read_project
from core.project import save_project as write_project
from core.results import CachedResult
from core.scoring.perceptual import available_backbone
FLUSH_EVERY_S = 0.7  # scored images reach the panels in groups, so plots are not rebuilt per image


class MainWindow(QMainWindow):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DefectLab")
        self.resize(1500, 950)
        self.settings = open_settings()
        self.session = Session(self)
        self.runner = JobRunner(self)
        self.errors: list[str] = []  # every message shown, newest last (tests read it)
        self._pending: list[CachedResult] = []
        self._last_flush = 0.0
        self._predict_job: Job | None = None

        self.viewer = ResultViewer(self.session)
        self.dataset = DatasetPanel(self.session, self.runner)
        self.training = TrainingPanel(self.session, self.runner, self.settings)
        self.thresholds = ThresholdPanel(self.session)
        self.compare = ComparePanel(self.session, self.runner)
        self.reports = ReportActions(self)
        self.setCentralWidget(self.viewer)
        self.docks = {
            "dataset": self._dock("Dataset", self.dataset, Qt.DockWidgetArea.LeftDockWidgetArea),
            "training": self._dock("Training", self.training, Qt.DockWidgetArea.RightDockWidgetArea),
            "thresholds": self._dock("Thresholds", self.thresholds, Qt.DockWidgetArea.BottomDockWidgetArea),
            "compare": self._dock("Compare", self.compare, Qt.DockWidgetArea.BottomDockWidgetArea),
        }
        self.tabifyDockWidget(self.docks["thresholds"], self.docks["compare"])
        self.docks["thresholds"].raise_()
        self.resizeDocks([self.docks["dataset"], self.docks["training"]], [330, 330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["thresholds"]], [330], Qt.Orientation.Vertical)

        self.job_label = QLabel("Ready.")
        self.job_progress = QProgressBar()
        self.job_progress.setMaximumWidth(220)
        self.job_progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop scoring, inspecting or writing a report (a report written so far "
                                      "is kept, marked partial).")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_jobs)
        self.device_label = QLabel()
        self.backbone_label = QLabel()
        self.statusBar().addWidget(self.job_label, 1)
        self.statusBar().addPermanentWidget(self.job_progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().addPermanentWidget(self.backbone_label)
        self._status_devices()

        self._menus()
        for keys, delta in (("N", 1), ("Right", 1), ("PgDown", 1), ("P", -1), ("Left", -1), ("PgUp", -1)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(lambda delta=delta: self.dataset.select_relative(delta))

        self.runner.error.connect(self.show_error)
        self.training.trainingFinished.connect(self.open_model)
        self.training.trainingFailed.connect(self.show_error)
        self._restore_layout()

    # --------------------------------------------------------------------------------------------- setup
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, keys, slot in (("Open &folder…", "Ctrl+O", self._ask_folder),
                                 ("Open &model…", "Ctrl+M", self._ask_model),
                                 ("Open &project…", "Ctrl+Shift+O", self._ask_project),
                                 ("&Save project…", "Ctrl+S", self._ask_save_project),
                                 ("&Inspect folder…", "Ctrl+I", self.reports.ask_inspect),
                                 ("&Export report…", "Ctrl+E", self.reports.ask_export),
                                 ("Open the &demo dataset", None, self.open_demo)):
            action = QAction(text, self)
            if keys:
                action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("Recent folders")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())

    def _status_devices(self) -> None:
        try:
            device = describe_device(pick_device(self.training.device.currentText()))
        except ValueError as exc:
            device = str(exc)
        self.device_label.setText(f"Device: {device}")
        try:
            backbone = available_backbone()
        except Exception as exc:  # noqa: BLE001 - a status line must never stop the window from opening
            backbone = f"unknown ({exc})"
        self.backbone_label.setText(f"Perceptual backbone: {backbone}")

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in recent(self.settings, "recent/folders"):
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _checked=False, path=path: self.open_folder(path))

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    # ------------------------------------------------------------------------------------------ messages
    def show_error(self, message: str) -> None:
        """Readable message in the status bar and a non-blocking dialog; never raises."""
        self.errors.append(message)
        self.job_label.setText(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "DefectLab", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()

    def _job_progress(self, progress: Progress) -> None:
        self.job_progress.show()
        self.job_progress.setMaximum(max(progress.total, 1))
        self.job_progress.setValue(progress.step)
        if progress.message:
            self.job_label.setText(progress.message)

    def _job_finished(self, text: str) -> None:
        self.job_progress.hide()
        self.cancel_button.hide()
        self.job_label.setText(text)

    def cancel_jobs(self) -> None:
        if self._predict_job is not None:
            self._predict_job.cancel()
        self.reports.cancel()
        self.job_label.setText("Cancelling…")

    # --------------------------------------------------------------------------------------------- opening
    def _ask_folder(self) -> None:
        start = next(iter(recent(self.settings, "recent/folders")), Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", str(start))
        if folder:
            self.open_folder(Path(folder))

    def _ask_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", str(models_dir()),
                                              "DefectLab models (*.safetensors)")
        if path:
            self.open_model(Path(path))

    def _ask_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", str(Path.home()),
                                              f"DefectLab projects (*{PROJECT_SUFFIX})")
        if path:
            self.open_project(Path(path))

    def _ask_save_project(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the project", str(Path.home() / f"project{PROJECT_SUFFIX}"),
                                              f"DefectLab projects (*{PROJECT_SUFFIX})")
        if path:
            self.save_project(Path(path))

    def open_demo(self) -> None:
        self.job_label.setText("Preparing the demo dataset…")
        self.runner.start(demo_job(), "demo", on_progress=self._job_progress,
                          on_done=lambda last: self.open_folder(last.result) if last.phase == "done" else None)

    def open_folder(self, folder: Path, then_model: Path | None = None,
                    then: Callable[[], None] | None = None) -> None:
        """Index `folder` and show it; then call `then` and open `then_model` (or re-score with the model)."""
        folder = Path(folder)
        self.job_label.setText(f"Indexing {folder}…")

        def done(last: Progress) -> None:
            if last.phase in ("failed", "cancelled") or last.result is None:
                self._job_finished("Indexing stopped.")
                return
            if self._predict_job is not None:
                self._predict_job.cancel()
                self._predict_job = None
            self.session.set_index(last.result)
            if last.result.records:
                self.session.set_current(last.result.records[0].path)
            add_recent(self.settings, "recent/folders", folder)
            self._job_finished(f"{folder}: {last.message}")
            if then is not None:
                then()
            model = then_model or self.session.model_path
            if model is not None:
                self.open_model(model)
        self.runner.start(index_job(folder), "index", on_progress=self._job_progress, on_done=done)

    def open_model(self, path: Path) -> None:
        """Load a model's metadata and score the open folder (or the folder it was trained on)."""
        path = Path(path)
        try:
            meta = read_meta(path)
        except ModelFileError as exc:
            self.show_error(str(exc))
            return
        add_recent(self.settings, "recent/models", path)
        self.session.set_model(path, meta)
        trained_on = Path(meta.training.get("data", ""))
        if self.session.index is None and trained_on.is_dir():
            self.open_folder(trained_on)  # comes back here once indexed
            return
        self.score_folder()

    def score_folder(self) -> None:
        index, model = self.session.index, self.session.model_path
        if index is None or model is None:
            return
        self.start_scoring(predict_job(model, index, self.training.device.currentText()),
                           f"Scoring {len(index.records)} images with {model.name}…")

    def start_scoring(self, factory: Factory, text: str, on_index: Callable[[DatasetIndex], None] | None = None,
                      on_done: Callable[[Progress], None] | None = None) -> Job:
        """Run a scoring job (it replaces a running one); its results reach the session in groups.
        `on_index` gets the folder's index when the job sends one; `on_done` the last Progress."""
        if self._predict_job is not None:
            self._predict_job.cancel()
        self.session.clear_results()
        self._pending = []
        self.job_label.setText(text)
        self.cancel_button.show()
        holder: dict[str, Job] = {}

        def progress(value: Progress) -> None:
            if holder["job"] is not self._predict_job:
                return  # a cancelled, superseded scoring run
            index = (value.extra or {}).get("index")
            if index is not None and on_index is not None:
                on_index(index)
            self._predict_progress(value)

        def done(last: Progress) -> None:
            if holder["job"] is not self._predict_job:
                return
            self._predict_done(last)
            if on_done is not None:
                on_done(last)
        job = self.runner.start(factory, "predict", on_progress=progress, on_done=done)
        holder["job"] = self._predict_job = job
        return job

    def _predict_progress(self, progress: Progress) -> None:
        self._job_progress(progress)
        self._pending += (progress.extra or {}).get("cached", [])
        if self._pending and self._flush_due():
            self._flush()

    def _flush_due(self) -> bool:
        """Panels rebuild their plots on every flush: flush less often as results pile up."""
        interval = FLUSH_EVERY_S + len(self.session.results) / 500
        return time.perf_counter() - self._last_flush > interval

    def _flush(self) -> None:
        self._last_flush = time.perf_counter()
        pending, self._pending = self._pending, []
        self.session.add_results(pending)
        if self.session.current is None and self.session.scored():
            self.session.set_current(self.session.scored()[-1].path)

    def _predict_done(self, last: Progress) -> None:
        self._predict_job = None
        if self._pending:
            self._flush()
        self._job_finished(f"Scored {len(self.session.results)} images." if last.phase == "done"
                           else "Scoring stopped.")

    # --------------------------------------------------------------------------------------------- projects
    def save_project(self, path: Path) -> Path | None:
        """Save dataset, models, thresholds (and how they were set), current image, reports and view."""
        try:
            saved = write_project(path, project_of(self))
        except (OSError, ValueError) as exc:
            self.show_error(f"Cannot save the project to {path}: {exc}")
            return None
        self.job_label.setText(f"Project saved to {saved}")
        return saved

    def open_project(self, path: Path, locate: Locator | None | bool = True) -> str:
        """Open a project; returns the message about missing paths ("" when all were found). `locate`: True asks
        the user for a moved dataset's folder (modal), None never asks, or a function that answers instead."""
        try:
            project = read_project(path)
        except ProjectFileError as exc:
            self.show_error(str(exc))
            return str(exc)
        if locate is True:
            locate = lambda project, message: ask_dataset_folder(self, project, message)  # noqa: E731
        return restore_project(self, project, locate or None)

    # --------------------------------------------------------------------------------------------- closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        self.runner.shutdown()
        super().closeEvent(event)


def run_gui(argv: list[str]) -> int:
    """`defectlab [gui] [folder | model.safetensors | project.defectlab.json]`: open the workbench; with no
    argument, the last folder, or the bundled demo the first time."""
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("DefectLab")
    window = MainWindow()
    window.show()
    target = Path(argv[0]).expanduser() if argv else None
    if target is not None and target.name.endswith(PROJECT_SUFFIX):
        QTimer.singleShot(0, lambda: window.open_project(target))
    elif target is not None and target.suffix == ".safetensors":
        QTimer.singleShot(0, lambda: window.open_model(target))
    elif target is not None:
        QTimer.singleShot(0, lambda: window.open_folder(target))
    else:
        last = next(iter(recent(window.settings, "recent/folders")), None)
        QTimer.singleShot(0, (lambda: window.open_folder(last)) if last else window.open_demo)
    return app.exec()
