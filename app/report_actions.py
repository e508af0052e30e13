""""Inspect folder…" and "Export report…": run the jobs (an inspection as the scoring job), show where the report
went and offer to open it; the report folders of the session are saved in projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.actions import Actions
from app.inspect_dialog import InspectDialog, default_report_folder, reports_dir
from app.jobs import export_job, inspect_job
from app.scoring_jobs import ScoringJobs
from app.session import Session
from app.status_bar import JobStatus
from app.worker import Job, JobRunner
from core.modelfile import ModelFileError, read_meta
from core.paths import last_model
from core.progress import Progress
from core.report import ReportFiles
from core.report.from_session import session_run_info


class ReportActions(Actions):
    inspectionFinished = Signal(object)  # the last Progress; extra["report"]: ReportFiles (partial after cancel)
    exportFinished = Signal(object)  # the last Progress; result: ReportFiles, or None when it failed

    def __init__(self, dialog_parent: QWidget, session: Session, runner: JobRunner, scoring: ScoringJobs,
                 status: JobStatus, device: Callable[[], str]) -> None:
        super().__init__(dialog_parent, session, runner, scoring, status, device)
        self.folders: list[Path] = []  # report folders written or opened in this session (saved in projects)
        self.last_files: ReportFiles | None = None
        self.export: Job | None = None
        self.offer: QMessageBox | None = None  # the "open the report?" box, non-modal

    # ------------------------------------------------------------------------------------------ inspect
    def ask_inspect(self) -> None:
        model = self.session.model_path or last_model()
        dialog = InspectDialog(model, None, self.dialog_parent)
        if dialog.exec() and self.confirm_replace():
            self.inspect_folder(*dialog.values())

    def confirm_replace(self) -> bool:
        """Ask before an inspection replaces the open folder and its results (True: go ahead)."""
        if self.session.index is None and not self.session.results:
            return True
        answer = QMessageBox.question(
            self.dialog_parent, "DefectLab: replace the open folder?",
            "The inspection replaces the open folder and its results in this window. They are kept on disk: "
            "opening the folder again with the same model shows them without scoring.\n\nInspect now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def inspect_folder(self, model: Path, folder: Path, out: Path | None = None) -> Job | None:
        """Score `folder` with `model`, showing results as they come, and write the report to `out`."""
        model, folder = Path(model), Path(folder)
        out = Path(out) if out is not None else default_report_folder(folder)
        try:
            meta = read_meta(model)
        except ModelFileError as exc:
            self.status.show_error(str(exc))
            return None
        session = self.session

        def indexed(index: object) -> None:
            session.set_index(index)  # type: ignore[arg-type]
            session.set_model(model, meta)
            if session.index is not None and session.index.records:
                session.set_current(session.index.records[0].path)

        return self.scoring.start(inspect_job(model, folder, out, self.device()),
                                  f"Inspecting {folder} with {model.name}…", on_index=indexed, on_done=self._inspected)

    def _inspected(self, last: Progress) -> None:
        files = (last.extra or {}).get("report")
        if files is not None:
            self._written(files, "Inspection report" + (" (partial: cancelled)" if last.phase == "cancelled" else ""))
        self.inspectionFinished.emit(last)

    # ------------------------------------------------------------------------------------------- export
    def ask_export(self) -> None:
        index = self.session.index
        if index is None:
            self.export_report(None)  # says what is missing
            return
        reports_dir().mkdir(parents=True, exist_ok=True)
        parent = QFileDialog.getExistingDirectory(self.dialog_parent, "Put the report folder in…", str(reports_dir()))
        if parent:
            self.export_report(Path(parent) / default_report_folder(index.root, "export").name)

    def export_report(self, out: Path | None) -> Job | None:
        """Report of the scored images (test / unsplit ones when the folder has a training split) with the
        thresholds in use, written to `out` (default: a new folder under the reports folder)."""
        session = self.session
        results = [r for r in session.scored() if r.split != "train"] or session.scored()
        if session.index is None or session.model_path is None or session.meta is None or not results:
            self.status.show_error("Nothing to export yet: inspect a folder (File > Inspect folder…) or open a model.")
            return None
        if self.export is not None and self.export.is_running():
            self.status.show_error("A report is being written already; wait for it or cancel it.")
            return None
        t = session.thresholds
        info = session_run_info(session.model_path, session.meta, session.index.root, t.map_name, t.image, t.pixel,
                                t.how, t.review)
        out = Path(out) if out is not None else default_report_folder(session.index.root, "export")
        skipped = [(s.path, s.reason) for s in session.index.skipped]
        self.status.started(f"Writing the report of {len(results)} images to {out}…")
        self.export = self.runner.start(export_job(out, info, results, skipped, dict(session.reviews)), "export",
                                        on_progress=self.status.step, on_done=self._exported)
        return self.export

    def _exported(self, last: Progress) -> None:
        self.status.finished("Report stopped.")
        if isinstance(last.result, ReportFiles):
            self._written(last.result, "Report" + (" (partial: cancelled)" if last.phase == "cancelled" else ""))
        self.exportFinished.emit(last)

    # --------------------------------------------------------------------------------------------- both
    def _written(self, files: ReportFiles, what: str) -> None:
        folder = files.html.parent
        if folder not in self.folders:
            self.folders.append(folder)
        self.last_files = files
        self.status.say(f"{what} written to {folder}", tooltip=str(folder))
        self._offer_to_open(files, what)

    def _offer_to_open(self, files: ReportFiles, what: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "DefectLab", f"{what} written to\n{files.html.parent}",
                          QMessageBox.StandardButton.Close, self.dialog_parent)
        html = box.addButton("Open HTML", QMessageBox.ButtonRole.ActionRole)
        pdf = box.addButton("Open PDF", QMessageBox.ButtonRole.ActionRole) if files.pdf else None
        folder = box.addButton("Open folder", QMessageBox.ButtonRole.ActionRole)
        targets = {html: files.html, folder: files.html.parent}
        if pdf is not None and files.pdf is not None:
            targets[pdf] = files.pdf
        box.buttonClicked.connect(lambda button: self.open_file(targets[button]) if button in targets else None)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()
        self.offer = box

    def open_file(self, path: Path) -> bool:
        """Open `path` with the desktop's program for it; when there is none, say so and where the file is."""
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            return True
        self.status.show_error(f"No program is set up on this computer to open {path.name}. The file is at\n{path}")
        return False

    def cancel(self) -> None:
        """Stop writing a report (what is written so far is kept, marked partial)."""
        if self.export is not None:
            self.export.cancel()

    # ------------------------------------------------------------------------------------------ projects
    def state(self) -> dict[str, Any]:
        """What a project keeps of the reports: the folders written or opened in this session."""
        return {"folders": list(self.folders)}

    def restore(self, state: dict[str, Any]) -> None:
        """Take a project's report folders (those that still exist)."""
        self.folders = [Path(folder) for folder in state.get("folders", []) if Path(folder).is_dir()]
