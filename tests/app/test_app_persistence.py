"""Results that persist: reopening a folder with the same model (or relaunching and reopening the project) shows
the results kept on disk without scoring; an inspection asks before replacing the open folder; training never
replaces a model file unless told to; recent folders are stored absolute."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from app.main_window import MainWindow
from app.settings import add_recent, open_settings, recent
from windows import scored_window
from core.result_store import SUMMARY, ResultStore
from core.workflow import default_model_path

pytestmark = pytest.mark.gui


def test_results_come_back_from_disk_after_a_relaunch(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                      tmp_path: Path) -> None:
    window = scored_window(tiny_dataset, tiny_model)
    qtbot.addWidget(window)
    assert "Scored 16 images" in window.job_status.label.text()
    store = ResultStore.open(tiny_model, tiny_dataset)
    assert (store.folder / SUMMARY).is_file()
    kept = next(r for r in window.session.scored() if r.split == "test")
    assert kept.maps == {} and kept.maps_file is not None and kept.maps_file.is_file()  # maps on disk only
    scores = {p: r.scores for p, r in window.session.results.items()}
    project = window.save_project(tmp_path / "work")
    window.close()

    relaunched = MainWindow()
    qtbot.addWidget(relaunched)
    relaunched.show()
    relaunched.open_project(project, locate=None)
    qtbot.waitUntil(lambda: len(relaunched.session.results) == 16 and relaunched.scoring.job is None,
                    timeout=60000)
    assert "earlier run" in relaunched.job_status.label.text()
    assert {p: r.scores for p, r in relaunched.session.results.items()} == scores
    relaunched.session.set_current(kept.path)
    assert relaunched.viewer.loaded.maps  # full maps read back for the image on screen
    relaunched.opening.score_folder(again=True)  # Tools > Score again
    qtbot.waitUntil(lambda: relaunched.scoring.job is None and len(relaunched.session.results) == 16,
                    timeout=60000)
    assert "Scored 16 images" in relaunched.job_status.label.text()
    relaunched.close()


def test_inspecting_asks_before_replacing_the_open_folder(qtbot, tiny_dataset: Path, monkeypatch) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.reports.confirm_replace()  # nothing open: nothing to ask
    with qtbot.waitSignal(window.session.datasetChanged, timeout=10000):
        window.open_folder(tiny_dataset)
    asked: list[str] = []

    def answer(_parent, _title, text, *_args):  # noqa: ANN001, ANN202
        asked.append(text)
        return QMessageBox.StandardButton.No
    monkeypatch.setattr(QMessageBox, "question", answer)
    assert not window.reports.confirm_replace() and "replaces the open folder" in asked[0]
    window.close()


def test_training_writes_a_new_model_file_beside_an_existing_one(qtbot, tiny_dataset: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.session.datasetChanged, timeout=10000):
        window.open_folder(tiny_dataset)
    panel = window.training
    panel.method.setCurrentText("ae-ssim")
    panel.preset.setCurrentText("fast")
    usual = default_model_path(tiny_dataset, "ae-ssim", "fast")
    assert panel.model_path() == usual and panel.replace.isHidden()
    usual.parent.mkdir(parents=True, exist_ok=True)
    usual.write_bytes(b"an earlier model")
    panel._show_model_file()
    assert panel.model_path() == usual.with_name(usual.name.replace(".safetensors", "-2.safetensors"))
    assert panel.request().out == panel.model_path() and not panel.replace.isHidden()
    assert panel.model_file.text().endswith("-2.safetensors")
    panel.replace.setChecked(True)  # the user says so
    assert panel.request().out == usual
    window.close()


def test_recent_folders_are_stored_absolute(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "images").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = open_settings()
    add_recent(settings, "recent/folders", Path("images"))
    assert settings.value("recent/folders") == [str(tmp_path.resolve() / "images")]
    os.chdir("/")
    assert recent(settings, "recent/folders") == [tmp_path.resolve() / "images"]
