"""Opening work in the workbench: a folder (indexed in the background), a model (which scores the open folder,
or the folder it was trained on), the bundled demo, and the recent folders menu."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from app.actions import Actions
from app.jobs import demo_job, index_job, predict_job
from app.scoring_jobs import ScoringJobs
from app.session import Session
from app.settings import add_recent, recent
from app.status_bar import JobStatus
from app.worker import JobRunner
from core.modelfile import ModelFileError, read_meta
from core.paths import models_dir
from core.progress import Progress


class OpenActions(Actions):
    """File > Open folder / model / demo and Recent folders."""

    def __init__(self, dialog_parent: QWidget, session: Session, runner: JobRunner, scoring: ScoringJobs,
                 status: JobStatus, device: Callable[[], str], settings: QSettings,
                 may_replace_model: Callable[[], bool] = lambda: True) -> None:
        super().__init__(dialog_parent, session, runner, scoring, status, device)
        self.settings = settings
        self.may_replace_model = may_replace_model  # False keeps the open model (unsaved changes kept)

    # ------------------------------------------------------------------------------------------- dialogs
    def ask_folder(self) -> None:
        start = next(iter(recent(self.settings, "recent/folders")), Path.home())
        folder = QFileDialog.getExistingDirectory(self.dialog_parent, "Open a folder of images", str(start))
        if folder:
            self.open_folder(Path(folder))

    def ask_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.dialog_parent, "Open a model", str(models_dir()),
                                              "DefectLab models (*.safetensors)")
        if path:
            self.open_model(Path(path))

    def fill_recent(self, menu: QMenu) -> None:
        """Refill `menu` with the recent folders that still exist (newest first)."""
        menu.clear()
        for path in recent(self.settings, "recent/folders"):
            action = menu.addAction(str(path))
            action.triggered.connect(lambda _checked=False, path=path: self.open_folder(path))

    # ------------------------------------------------------------------------------------------- opening
    def open_demo(self) -> None:
        self.status.say("Preparing the demo dataset…")
        self.runner.start(demo_job(), "demo", on_progress=self.status.step,
                          on_done=lambda last: self.open_folder(last.result) if last.phase == "done" else None)

    def open_folder(self, folder: Path, then_model: Path | None = None,
                    then: Callable[[], None] | None = None) -> None:
        """Index `folder` and show it; then call `then` and open `then_model` (or re-score with the model)."""
        folder = Path(folder)
        self.status.say(f"Indexing {folder}…")

        def done(last: Progress) -> None:
            if last.phase in ("failed", "cancelled") or last.result is None:
                self.status.finished("Indexing stopped.")
                return
            self.scoring.discard()
            self.session.set_index(last.result)
            if last.result.records:
                self.session.set_current(last.result.records[0].path)
            add_recent(self.settings, "recent/folders", folder)
            self.status.finished(f"{folder}: {last.message}")
            if then is not None:
                then()
            model = then_model or self.session.model_path
            if model is not None:
                self.open_model(model)
        self.runner.start(index_job(folder), "index", on_progress=self.status.step, on_done=done)

    def open_model(self, path: Path) -> None:
        """Load a model's metadata and score the open folder (or the folder it was trained on)."""
        path = Path(path)
        if self.session.model_path is not None and not self.may_replace_model():
            self.status.say(f"{path.name} not opened: the open model keeps its unsaved changes.")
            return
        try:
            meta = read_meta(path)
        except ModelFileError as exc:
            self.status.show_error(str(exc))
            return
        add_recent(self.settings, "recent/models", path)
        self.session.set_model(path, meta)
        trained_on = Path(meta.training.get("data", ""))
        if self.session.index is None and trained_on.is_dir():
            self.open_folder(trained_on)  # comes back here once indexed
            return
        self.score_folder()

    def score_folder(self, again: bool = False) -> None:
        """Score every image of the open folder with the open model (nothing when either is missing). Results
        stored earlier for this model file and folder are shown at once instead, unless `again`."""
        index, model = self.session.index, self.session.model_path
        if index is None or model is None:
            return
        self.scoring.start(predict_job(model, index, self.device(), reuse=not again),
                           f"Scoring {len(index.records)} images with {model.name}…")
