"""The reference image of a model whose method compares every image with one (`uses_reference`): read from the
open model file, replaced by an image of the dataset (Use as reference), written to a model file (File > Save
model as…), which is then opened and scored. Until then the model file is unchanged and the scores shown, made
with the previous reference, are stale."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.actions import Actions
from app.jobs import reference_job
from app.scoring_jobs import ScoringJobs
from app.session import Session
from app.status_bar import JobStatus
from app.worker import Job, JobRunner
from core.errors import user_message
from core.modelfile import MODEL_SUFFIX, save_model
from core.models.base import AnomalyModel
from core.paths import unused_path
from core.progress import Progress

JOB = "reference image"


class ReferenceActions(Actions):
    """Keeps the open model's network while its method uses a reference image; `save_action` is File > Save
    model as… (enabled while a reference set here is not saved). `open_model` opens a saved model file."""

    def __init__(self, dialog_parent: QWidget, session: Session, runner: JobRunner, scoring: ScoringJobs,
                 status: JobStatus, device: Callable[[], str], open_model: Callable[[Path], None]) -> None:
        super().__init__(dialog_parent, session, runner, scoring, status, device)
        self.open_model = open_model
        self.network: AnomalyModel | None = None  # the open model, loaded for its reference image
        self.job: Job | None = None
        self.save_action = QAction("Save model &as… (with its new reference image)", self)
        self.save_action.setEnabled(False)
        self.save_action.triggered.connect(lambda: self.ask_save())
        session.modelChanged.connect(self._model_opened)
        session.referenceChanged.connect(lambda: self.save_action.setEnabled(session.reference_unsaved))

    # ------------------------------------------------------------------------------------------- reference
    def _model_opened(self) -> None:
        self.network, self.job = None, None  # a load still running for the previous model is ignored
        self.save_action.setEnabled(False)
        if self.session.uses_reference():
            self._start(None)

    def use_image(self, image: Path) -> Job | None:
        """Make the image file `image` the open model's reference image (the model file stays as it is)."""
        if not self.session.uses_reference():
            self.status.show_error("The open model uses no reference image; open a model whose method compares "
                                   "images with one (e.g. ndpnet).")
            return None
        if self.job is not None and self.network is not None:
            self.status.show_error("A reference image is being set already; wait for it to finish.")
            return None
        self.status.say(f"Setting {Path(image).name} as the reference image…")
        return self._start(Path(image))

    def _start(self, image: Path | None) -> Job:
        assert self.session.model_path is not None and self.session.meta is not None
        holder: dict[str, Job] = {}
        stored = str(self.session.meta.training.get("reference", ""))

        def done(last: Progress) -> None:
            if holder["job"] is not self.job or last.phase != "done":
                return
            self.job = None
            self.network, pixels = last.result
            self.session.set_reference(pixels, stored if image is None else str(image), unsaved=image is not None)
            if image is not None:
                stale = " Scores shown are stale (made with the previous one)." if self.session.results else ""
                text = (f"Reference image: {image.name}, not saved.{stale} File > Save model as… saves it and "
                        "rescores.")
                self.status.say(text, tooltip=text)

        def failed(message: str) -> None:
            if holder["job"] is not self.job:
                return
            self.job = None
            if image is not None:
                self.status.show_error(message)
            else:  # scoring the same file reports what is wrong with it
                self.status.say(message)
        self.job = holder["job"] = self.runner.start(reference_job(self.session.model_path, self.network, image),
                                                     JOB, on_done=done, on_error=failed)
        return self.job

    # ------------------------------------------------------------------------------------------------ save
    def ask_save(self, reopen: bool = True) -> Path | None:
        """Ask where to write the model with its new reference image (a new name beside it is proposed; the
        dialog asks before replacing a file), then `save`."""
        model = self.session.model_path
        if model is None or not self.session.reference_unsaved:
            self.status.show_error("Nothing to save: set a reference image first (right-click an image > Use as "
                                   "reference).")
            return None
        path, _ = QFileDialog.getSaveFileName(self.dialog_parent, "Save the model with its new reference image",
                                              str(unused_path(model)), f"DefectLab models (*{MODEL_SUFFIX})")
        return self.save(Path(path), reopen) if path else None

    def save(self, path: Path, reopen: bool = True) -> Path | None:
        """Write the open model with the reference image set here to `path`, the image file recorded in its
        metadata; with `reopen`, open the written file (which scores the folder with it). A name without the
        model suffix gets it, and is refused if that file exists (nothing is replaced without a question)."""
        meta, network = self.session.meta, self.network
        if meta is None or network is None or not self.session.reference_unsaved or self.job is not None:
            self.status.show_error("No new reference image to save (or it is still being set); try again.")
            return None
        path = Path(path)
        if not path.name.endswith(MODEL_SUFFIX):
            path = path.with_name(path.name + MODEL_SUFFIX)
            if path.exists():
                self.status.show_error(f"{path} exists already; choose another name.")
                return None
        meta = replace(meta, training={**meta.training, "reference": self.session.reference_source})
        try:
            save_model(path, network, meta)
        except (ValueError, OSError) as exc:
            self.status.show_error(f"Cannot save the model to {path}: {user_message(exc)}")
            return None
        self.session.set_reference(self.session.reference, self.session.reference_source, unsaved=False)
        self.status.say(f"Saved {path.name} with the reference image {Path(meta.training['reference']).name}.")
        if reopen:
            self.open_model(path)
        return path

    def keep_or_discard(self) -> bool:
        """Before the open model is replaced or the window closes: False when the user cancels; True when a
        reference image set here was saved or discarded, or there is none."""
        model = self.session.model_path
        if not self.session.reference_unsaved or model is None:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self.dialog_parent, "DefectLab: reference image not saved",
            f"The reference image of {model.name} was set to {Path(self.session.reference_source).name} and is not "
            "saved. Save the model with it?", buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        if answer == buttons.Save:
            return self.ask_save(reopen=False) is not None
        return answer == buttons.Discard
