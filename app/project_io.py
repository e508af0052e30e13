"""Projects in the workbench: the session and the panels' states as a core `Project`, and back again, with the
File menu's Open / Save project. Missing paths (data moved) give one clear message and an offer to point at
the dataset's new folder, never a failure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.session import Session
from app.status_bar import JobStatus
from core.project import (PROJECT_SUFFIX, Project, ProjectFileError, ThresholdState, missing_paths, missing_report,
                          relocate)
from core.project import open_project as read_project
from core.project import save_project as write_project

# Given the project and the message listing what is missing, the dataset's new folder (None: leave it).
Locator = Callable[[Project, str], "Path | None"]
# open_folder(folder, then_model, then): index the folder, call `then`, open the model.
OpenFolder = Callable[[Path, "Path | None", "Callable[[], None] | None"], None]


class Stateful(Protocol):
    """A panel whose settings a project keeps."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ProjectParts:
    """What a project is made of and restored into: the session, the panels with a state, and how to open a
    folder and show a message."""

    session: Session
    viewer: Stateful
    compare: Stateful
    reports: Stateful
    open_folder: OpenFolder
    show_error: Callable[[str], None]


def ask_dataset_folder(parent: QWidget, project: Project, message: str) -> Path | None:
    """Modal: show what is missing and offer to locate the moved dataset folder."""
    name = project.dataset.name if project.dataset else ""
    answer = QMessageBox.question(parent, "DefectLab: data not found",
                                  f"{message}\n\nLocate the dataset folder ({name}) now?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    if answer != QMessageBox.StandardButton.Yes:
        return None
    folder = QFileDialog.getExistingDirectory(parent, "Where is the dataset folder now?", str(Path.home()))
    return Path(folder) if folder else None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def project_of(parts: ProjectParts) -> Project:
    """The work as a Project: dataset, models, thresholds and how they were set, image, reports, view."""
    session = parts.session
    models = [session.model_path] if session.model_path else []
    other = parts.compare.state().get("model_b")
    if other is not None and Path(other) not in models:
        models.append(Path(other))
    t = session.thresholds
    viewer: dict[str, Any] = {"map": t.map_name, **parts.viewer.state()}
    root = session.index.root if session.index else None
    reviews = {}
    for path, said in session.reviews.items():
        try:
            reviews[path.relative_to(root).as_posix() if root else str(path)] = said
        except ValueError:
            reviews[str(path)] = said
    return Project(dataset=root, models=tuple(models), reviews=reviews,
                   active_model=session.model_path,
                   thresholds=ThresholdState(t.map_name, _finite(t.image), _finite(t.pixel), t.review, t.how),
                   current_image=session.current, reports=tuple(parts.reports.state()["folders"]), viewer=viewer)


def apply_thresholds(session: Session, saved: ThresholdState) -> None:
    """The project's map and thresholds, when the open model has that map."""
    if session.meta is None or saved.map_name not in session.meta.map_names:
        return
    session.set_map(saved.map_name)
    session.set_thresholds(image=math.inf if saved.image is None else float(saved.image),
                           pixel=math.inf if saved.pixel is None else float(saved.pixel),
                           review=saved.review, how=saved.how or session.thresholds.how)


def restore_project(parts: ProjectParts, project: Project, locate: Locator | None) -> str:
    """Open the project's dataset, model, thresholds, image, reports and view. Returns the message about
    missing paths ("" when all were found); it is also shown. `locate` may point at the moved dataset."""
    message = missing_report(missing_paths(project))
    dataset_missing = project.dataset is not None and not project.dataset.is_dir()
    if message and dataset_missing and locate is not None:
        new_root = locate(project, message)
        if new_root is not None:
            project = relocate(project, project.dataset, new_root)
            message = missing_report(missing_paths(project))
    if message:
        parts.show_error(message)
    parts.reports.restore({"folders": list(project.reports)})
    parts.viewer.restore(project.viewer)
    other = [m for m in project.models if m != project.active_model and m.is_file()]
    if other:
        parts.compare.restore({"model_b": other[0]})
    if project.dataset is None or not project.dataset.is_dir():
        return message
    model = project.active_model if project.active_model and project.active_model.is_file() else None
    session = parts.session

    def model_opened() -> None:
        session.modelChanged.disconnect(model_opened)
        if session.model_path == model:
            apply_thresholds(session, project.thresholds)

    def dataset_opened() -> None:
        if session.index is not None and project.reviews:
            session.set_reviews({session.index.root / rel: said for rel, said in project.reviews.items()})
        if project.current_image is None or session.index is None:
            return
        try:  # by its place in the dataset, so a relocated or differently spelled root still matches
            path = session.index.root / project.current_image.relative_to(project.dataset)
        except ValueError:
            path = project.current_image
        if session.record(path) is not None:
            session.set_current(path)
    if model is not None:
        session.modelChanged.connect(model_opened)
    parts.open_folder(project.dataset, model, dataset_opened)
    return message


class ProjectActions(QObject):
    """File > Open project… / Save project…."""

    def __init__(self, dialog_parent: QWidget, parts: ProjectParts, status: JobStatus) -> None:
        super().__init__(dialog_parent)
        self.dialog_parent = dialog_parent
        self.parts = parts
        self.status = status

    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.dialog_parent, "Open a project", str(Path.home()),
                                              f"DefectLab projects (*{PROJECT_SUFFIX})")
        if path:
            self.open(Path(path))

    def ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.dialog_parent, "Save the project",
                                              str(Path.home() / f"project{PROJECT_SUFFIX}"),
                                              f"DefectLab projects (*{PROJECT_SUFFIX})")
        if path:
            self.save(Path(path))

    def save(self, path: Path) -> Path | None:
        """Save dataset, models, thresholds (and how they were set), current image, reports and view."""
        try:
            saved = write_project(path, project_of(self.parts))
        except (OSError, ValueError) as exc:
            self.status.show_error(f"Cannot save the project to {path}: {exc}")
            return None
        self.status.say(f"Project saved to {saved}")
        return saved

    def open(self, path: Path, locate: Locator | None | bool = True) -> str:
        """Open a project; returns the message about missing paths ("" when all were found). `locate`: True asks
        the user for a moved dataset's folder (modal), None never asks, or a function that answers instead."""
        try:
            project = read_project(path)
        except ProjectFileError as exc:
            self.status.show_error(str(exc))
            return str(exc)
        if locate is True:
            locate = lambda project, message: ask_dataset_folder(self.dialog_parent, project, message)  # noqa: E731
        return restore_project(self.parts, project, locate or None)
