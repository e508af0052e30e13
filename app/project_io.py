"""Projects in the workbench: what the window holds as a core `Project`, and back again. Missing paths (data
moved) give one clear message and an offer to point at the dataset's new folder, never a failure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.project import Project, ThresholdState, missing_paths, missing_report, relocate

if TYPE_CHECKING:
    from app.main_window import MainWindow

# Given the project and the message listing what is missing, the dataset's new folder (None: leave it).
Locator = Callable[[Project, str], "Path | None"]


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


def project_of(window: MainWindow) -> Project:
    """The window's work as a Project: dataset, models, thresholds and how they were set, image, reports, view."""
    session = window.session
    models = [session.model_path] if session.model_path else []
    other = window.compare.model_b.text().strip()
    if other and Path(other).is_file() and Path(other) not in models:
        models.append(Path(other))
    t = session.thresholds
    viewer = window.viewer
    state: dict[str, Any] = {"mode": viewer.mode.currentText(), "opacity": viewer.opacity.value(),
                             "map": t.map_name, "show_predicted": viewer.show_pred.isChecked(),
                             "show_truth": viewer.show_truth.isChecked()}
    return Project(dataset=session.index.root if session.index else None, models=tuple(models),
                   active_model=session.model_path,
                   thresholds=ThresholdState(t.map_name, _finite(t.image), _finite(t.pixel), t.review, t.how),
                   current_image=session.current, reports=tuple(window.reports.folders), viewer=state)


def apply_viewer(window: MainWindow, state: dict[str, Any]) -> None:
    viewer = window.viewer
    if isinstance(state.get("mode"), str) and viewer.mode.findText(state["mode"]) >= 0:
        viewer.mode.setCurrentText(state["mode"])
    if isinstance(state.get("opacity"), int):
        viewer.opacity.setValue(state["opacity"])
    for key, box in (("show_predicted", viewer.show_pred), ("show_truth", viewer.show_truth)):
        if isinstance(state.get(key), bool):
            box.setChecked(state[key])


def apply_thresholds(window: MainWindow, saved: ThresholdState) -> None:
    session = window.session
    if session.meta is None or saved.map_name not in session.meta.map_names:
        return
    session.set_map(saved.map_name)
    session.set_thresholds(image=math.inf if saved.image is None else float(saved.image),
                           pixel=math.inf if saved.pixel is None else float(saved.pixel),
                           review=saved.review, how=saved.how or session.thresholds.how)


def restore_project(window: MainWindow, project: Project, locate: Locator | None) -> str:
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
        window.show_error(message)
    window.reports.folders = [r for r in project.reports if r.is_dir()]
    apply_viewer(window, project.viewer)
    if project.dataset is None or not project.dataset.is_dir():
        return message
    model = project.active_model if project.active_model and project.active_model.is_file() else None
    session = window.session

    def model_opened() -> None:
        session.modelChanged.disconnect(model_opened)
        if session.model_path == model:
            apply_thresholds(window, project.thresholds)

    def dataset_opened() -> None:
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
    window.open_folder(project.dataset, then_model=model, then=dataset_opened)
    return message
