"""The workbench window: composes the panels as docks and the status bar, wires the menus to the actions
(opening, projects, inspections and reports, model export, weights import, the model's reference image) and
remembers its layout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMenu, QTabWidget, QWidget

from app.audit_panel import AuditPanel
from app.compare_panel import ComparePanel
from app.dataset_panel import DatasetPanel
from app.model_export import ModelExport
from app.open_actions import OpenActions
from app.project_io import Locator, ProjectActions, ProjectParts
from app.reference_actions import ReferenceActions
from app.report_actions import ReportActions
from app.result_viewer import ResultViewer
from app.review_panel import ReviewPanel
from app.scoring_jobs import ScoringJobs
from app.session import Session
from app.settings import open_settings, recent
from app.status_bar import JobStatus, MachineStatus
from app.threshold_panel import ThresholdPanel
from app.training_panel import TrainingPanel
from app.weights_import import WeightsImport
from app.worker import JobRunner
from core.project import PROJECT_SUFFIX
from core.review import DEFECT, GOOD

MenuItem = tuple[str, "str | None", Callable[[], None]]


class MainWindow(QMainWindow):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DefectLab")
        self.resize(1500, 950)
        self.settings = open_settings()
        self.session = Session(self)
        self.runner = JobRunner(self)

        self.viewer = ResultViewer(self.session, self.runner, lambda: self.training.device.currentText())
        self.dataset = DatasetPanel(self.session, self.runner)
        self.training = TrainingPanel(self.session, self.runner, self.settings)
        self.thresholds = ThresholdPanel(self.session)
        self.compare = ComparePanel(self.session, self.runner)
        self.review = ReviewPanel(self.session)
        self.audit = AuditPanel(self.session, self.runner, self.training.device.currentText)
        self.setCentralWidget(self.viewer)
        # Training, review and audit share one dock as tabs: several tabified dock groups leave stale tab bars.
        self.side_tabs = QTabWidget()
        for panel, title in ((self.training, "Training"), (self.review, "Review"), (self.audit, "Audit")):
            self.side_tabs.addTab(panel, title)
        self.docks = {
            "dataset": self._dock("Dataset", self.dataset, Qt.DockWidgetArea.LeftDockWidgetArea),
            "training": self._dock("Training, review and audit", self.side_tabs, Qt.DockWidgetArea.RightDockWidgetArea),
            "thresholds": self._dock("Thresholds", self.thresholds, Qt.DockWidgetArea.BottomDockWidgetArea),
            "compare": self._dock("Compare", self.compare, Qt.DockWidgetArea.BottomDockWidgetArea),
        }
        self.docks["training"].setObjectName("dock-training")  # the name saved window layouts know
        self.tabifyDockWidget(self.docks["thresholds"], self.docks["compare"])
        self.docks["thresholds"].raise_()
        self.resizeDocks([self.docks["dataset"], self.docks["training"]], [330, 330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["thresholds"]], [330], Qt.Orientation.Vertical)

        self.job_status = JobStatus(self.statusBar(), self)
        self.machine = MachineStatus(self.statusBar(), self)
        self.machine.refresh(self.training.device.currentText())
        device = self.training.device.currentText
        self.scoring = ScoringJobs(self.session, self.runner, self.job_status, self)
        self.references = ReferenceActions(self, self.session, self.runner, self.scoring, self.job_status, device,
                                           lambda path: self.opening.open_model(path))
        self.opening = OpenActions(self, self.session, self.runner, self.scoring, self.job_status, device,
                                   self.settings, self.references.keep_or_discard)
        self.reports = ReportActions(self, self.session, self.runner, self.scoring, self.job_status, device)
        self.projects = ProjectActions(self, ProjectParts(self.session, self.viewer, self.compare, self.reports,
                                                          self.opening.open_folder, self.job_status.show_error),
                                       self.job_status)
        self.weights = WeightsImport(self, self.runner, self.job_status)
        self.model_export = ModelExport(self, self.session, self.runner, self.job_status)

        self._menus()
        for keys, delta in (("N", 1), ("Right", 1), ("PgDown", 1), ("P", -1), ("Left", -1), ("PgUp", -1)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(lambda delta=delta: self.dataset.select_relative(delta))
        for keys, said in (("G", GOOD), ("D", DEFECT)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(lambda said=said: self.review.mark(said))

        self.job_status.cancelRequested.connect(self.scoring.cancel)
        self.job_status.cancelRequested.connect(self.reports.cancel)
        self.runner.error.connect(self.job_status.show_error)
        self.training.trainingFinished.connect(self.opening.open_model)
        self.training.trainingFailed.connect(self.job_status.show_error)
        self.training.trainingWarning.connect(self.job_status.show_error)
        self.audit.retrainRequested.connect(self._retrain_without)
        self.dataset.referenceRequested.connect(self.references.use_image)
        self.weights.imported.connect(lambda _imported: self.machine.refresh(self.training.device.currentText()))
        self._restore_layout()

    # --------------------------------------------------------------------------------------------- setup
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _add_actions(self, menu: QMenu, items: tuple[MenuItem, ...]) -> None:
        for text, keys, slot in items:
            action = QAction(text, self)
            if keys:
                action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            menu.addAction(action)

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_actions(file_menu, (("Open &folder…", "Ctrl+O", self.opening.ask_folder),
                                      ("Open &model…", "Ctrl+M", self.opening.ask_model),
                                      ("Open &project…", "Ctrl+Shift+O", self.projects.ask_open),
                                      ("&Save project…", "Ctrl+S", self.projects.ask_save),
                                      ("&Inspect folder…", "Ctrl+I", self.reports.ask_inspect),
                                      ("&Export report…", "Ctrl+E", self.reports.ask_export),
                                      ("Export mo&del…", "Ctrl+Shift+E", self.model_export.ask),
                                      ("Open the &demo dataset", None, self.opening.open_demo)))
        file_menu.insertAction(file_menu.actions()[2], self.references.save_action)  # after Open model…
        recent_menu = file_menu.addMenu("Recent folders")
        recent_menu.aboutToShow.connect(lambda: self.opening.fill_recent(recent_menu))
        file_menu.addSeparator()
        self._add_actions(file_menu, (("&Quit", "Ctrl+Q", self.close),))
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        tools_menu = self.menuBar().addMenu("&Tools")
        self._add_actions(tools_menu, (("Import &weights file…", None, self.weights.ask),
                                       ("Score &again (ignore results kept on disk)", None,
                                        lambda: self.opening.score_folder(again=True))))

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def _retrain_without(self, excluded: tuple[Path, ...]) -> None:
        self.side_tabs.setCurrentWidget(self.training)
        self.training.start(excluded)

    # ---------------------------------------------------------------------- what scripts and tests call
    def open_folder(self, folder: Path, then_model: Path | None = None,
                    then: Callable[[], None] | None = None) -> None:
        self.opening.open_folder(folder, then_model, then)

    def open_model(self, path: Path) -> None:
        self.opening.open_model(path)

    def open_project(self, path: Path, locate: Locator | None | bool = True) -> str:
        return self.projects.open(path, locate)

    def save_project(self, path: Path) -> Path | None:
        return self.projects.save(path)

    # --------------------------------------------------------------------------------------------- closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self.references.keep_or_discard():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        self.runner.shutdown()
        super().closeEvent(event)


START_CHECK = "--start-check"  # open the window, say what is shown, quit (checks an installed or frozen build)


def _report_start_and_quit(app: QApplication, window: MainWindow) -> None:
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    print(f"window shown: {window.windowTitle()} {window.width()}x{window.height()} on "
          f"{app.platformName()}; menus {', '.join(menus)}; {window.machine.backbone_label.text()}", flush=True)
    window.close()
    app.quit()


def run_gui(argv: list[str]) -> int:
    """`defectlab [gui] [folder | model.safetensors | project.defectlab.json]`: open the workbench; with no
    argument, the last folder, or the bundled demo the first time. `defectlab gui --start-check` opens the
    window on nothing and quits once it is shown."""
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("DefectLab")
    window = MainWindow()
    window.show()
    if START_CHECK in argv:
        QTimer.singleShot(0, lambda: _report_start_and_quit(app, window))
        return app.exec()
    target = Path(argv[0]).expanduser() if argv else None
    if target is not None and target.name.endswith(PROJECT_SUFFIX):
        QTimer.singleShot(0, lambda: window.open_project(target))
    elif target is not None and target.suffix == ".safetensors":
        QTimer.singleShot(0, lambda: window.open_model(target))
    elif target is not None:
        QTimer.singleShot(0, lambda: window.open_folder(target))
    else:
        last = next(iter(recent(window.settings, "recent/folders")), None)
        QTimer.singleShot(0, (lambda: window.open_folder(last)) if last else window.opening.open_demo)
    return app.exec()
