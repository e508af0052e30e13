"""Inspection reports and projects through the window: "Inspect folder…" to the finished signal, a cancelled
inspection's partial report, "Export report…" with hand-set thresholds, and projects saved, reopened and
opened after the data moved."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from core.paths import models_dir
from core.progress import Progress
from core.report import read_report
from core.report.csvjson import PARTIAL_ROW

pytestmark = pytest.mark.gui


def new_window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    return window


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def inspect(qtbot, window: MainWindow, model: Path, folder: Path, out: Path | None = None) -> Progress:
    with qtbot.waitSignal(window.reports.inspectionFinished, timeout=60000) as blocker:
        assert window.reports.inspect_folder(model, folder, out) is not None
    return blocker.args[0]


def test_inspect_folder_writes_the_report_and_shows_the_results(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                                 tmp_path: Path) -> None:
    window = new_window(qtbot)
    folder = tiny_dataset / "test"
    last = inspect(qtbot, window, tiny_model, folder)  # default report folder
    assert last.phase == "done"
    files = last.extra["report"]
    assert files.html.parent.parent == models_dir().parent / "reports"
    assert files.html.parent.name.startswith("test-")
    for path in (files.csv, files.json, files.histogram, files.html, files.pdf):
        assert path.is_file() and path.stat().st_size > 0
    rows = csv_rows(files.csv)
    assert len(rows) == 8 and {Path(r[0]).name for r in rows} >= {"000.png", "003.png"}
    # the folder is open in the browser with scores and verdicts, the model in the viewer
    session = window.session
    assert session.index is not None and session.index.root == folder
    assert session.model_path == tiny_model and len(session.results) == 8
    assert set(session.verdicts().values()) <= {"good", "defective"}
    assert "not scored" not in window.dataset.model.data(window.dataset.model.index(0))
    assert session.current is not None and window.viewer.result is not None
    assert str(files.html.parent) in window.job_status.label.text()
    assert window.reports.offer is not None and window.reports.folders == [files.html.parent]
    assert not window.job_status.cancel_button.isVisible()
    window.close()


def test_cancelled_inspection_writes_a_partial_report(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "lot"
    folder.mkdir()
    images = sorted((tiny_dataset / "train" / "good").glob("*.png"))
    for n in range(40):  # five batches of eight
        shutil.copy(images[n % len(images)], folder / f"{n:03d}.png")
    window = new_window(qtbot)
    with qtbot.waitSignal(window.reports.inspectionFinished, timeout=60000) as blocker:
        job = window.reports.inspect_folder(tiny_model, folder, tmp_path / "report")
        # cancel in the worker's thread at the first scored image, as the Cancel button would a moment later
        job.worker.progress.connect(lambda p: job.cancel() if p.phase == "predict" else None,
                                    Qt.ConnectionType.DirectConnection)
    last = blocker.args[0]
    assert last.phase == "cancelled"
    report = read_report(tmp_path / "report")
    assert report.partial and report.planned == 40 and 0 < len(report.records) < 40
    rows = csv_rows(tmp_path / "report" / "inspection.csv")
    assert rows[-1] == [PARTIAL_ROW] and len(rows) - 1 == len(report.records)
    assert (tmp_path / "report" / "report.html").is_file() and (tmp_path / "report" / "report.pdf").is_file()
    assert "partial" in window.job_status.label.text()
    window.close()


def test_export_report_uses_the_thresholds_in_use(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                  tmp_path: Path) -> None:
    window = new_window(qtbot)
    inspect(qtbot, window, tiny_model, tiny_dataset / "test", tmp_path / "inspection")
    session = window.session
    scores = sorted(session.scores())
    session.set_thresholds(image=float(scores[4]), pixel=0.25)
    assert session.thresholds.how == "set by hand"
    with qtbot.waitSignal(window.reports.exportFinished, timeout=60000) as blocker:
        window.reports.export_report(tmp_path / "export")
    files = blocker.args[0].result
    report = read_report(files.json)
    info = report.info
    assert info.model == tiny_model and info.method == "ae-ssim" and info.map_name == session.thresholds.map_name
    assert info.image_threshold.value == pytest.approx(scores[4]) and info.image_threshold.how == "set by hand"
    assert info.pixel_threshold.value == pytest.approx(0.25)
    assert report.n_defective == 4 and len(csv_rows(files.csv)) == 8 and files.pdf.is_file()
    html = files.html.read_text(encoding="utf-8")
    assert "set by hand" in html and tiny_model.name in html and "ae-ssim" in html
    window.close()


def scored_window(qtbot, dataset: Path, model: Path) -> MainWindow:
    window = new_window(qtbot)
    window.open_folder(dataset, then_model=model)
    qtbot.waitUntil(lambda: len(window.session.results) == 16 and window.scoring.job is None, timeout=60000)
    return window


def test_project_saved_and_reopened_in_a_fresh_window(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                      tmp_path: Path) -> None:
    window = scored_window(qtbot, tiny_dataset, tiny_model)
    session = window.session
    assert session.thresholds.how.startswith("from the model: label-free")
    window.thresholds.label_free.click()
    qtbot.wait(50)  # the panel's boxes and lines follow without counting as a hand change
    assert session.thresholds.how.startswith("label-free: image threshold at 1.00% false-reject rate")
    other_map = next(name for name in session.meta.map_names if name != session.thresholds.map_name)
    session.set_map(other_map)
    session.set_thresholds(image=0.125, pixel=0.5)
    current = next(p for p in session.results if "test" in p.parts and p.name == "002.png")
    session.set_current(current)
    window.viewer.mode.setCurrentIndex(1)
    window.viewer.opacity.setValue(30)
    saved = window.save_project(tmp_path / "work")
    assert saved == tmp_path / "work.defectlab.json" and saved.is_file()
    window.close()

    fresh = new_window(qtbot)
    assert fresh.open_project(saved, locate=None) == ""
    s = fresh.session
    qtbot.waitUntil(lambda: s.model_path == tiny_model and s.thresholds.image == 0.125 and len(s.results) == 16,
                    timeout=60000)
    assert s.index.root == tiny_dataset
    assert s.thresholds.map_name == other_map and s.thresholds.pixel == 0.5 and s.thresholds.how == "set by hand"
    assert fresh.thresholds.map_choice.currentText() == other_map
    assert s.current == current
    assert fresh.viewer.mode.currentIndex() == 1 and fresh.viewer.opacity.value() == 30
    fresh.close()


def test_project_with_moved_data_says_what_is_missing(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                      tmp_path: Path) -> None:
    data = tmp_path / "data_a"
    shutil.copytree(tiny_dataset, data)
    window = scored_window(qtbot, data, tiny_model)
    window.session.set_thresholds(image=0.2)
    saved = window.save_project(tmp_path / "projects" / "moved.defectlab.json")
    window.close()
    data.rename(tmp_path / "data_b")

    lost = new_window(qtbot)
    message = lost.open_project(saved, locate=None)  # no dialog: the message is returned and shown
    assert "not found" in message and str(data) in message and "dataset" in message
    assert lost.job_status.errors[-1] == message
    assert lost.session.index is None  # nothing opened, nothing crashed
    lost.close()

    found = new_window(qtbot)
    asked: list[str] = []
    found.open_project(saved, locate=lambda project, text: asked.append(text) or tmp_path / "data_b")
    s = found.session
    qtbot.waitUntil(lambda: s.index is not None and s.model_path == tiny_model and s.thresholds.image == 0.2,
                    timeout=60000)
    assert asked and s.index.root == tmp_path / "data_b"
    found.close()


def test_broken_project_file_is_a_message(qtbot, tmp_path: Path) -> None:
    window = new_window(qtbot)
    path = tmp_path / "broken.defectlab.json"
    path.write_text("{not json", encoding="utf-8")
    message = window.open_project(path, locate=None)
    assert "Cannot open project" in message and window.job_status.errors[-1] == message
    window.close()
