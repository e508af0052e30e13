"""The review loop end to end: the queue follows the thresholds, G / D mark the image on screen and move on,
the verdicts show as measured precision / recall, count as labels for F1-optimal, exclude reviewed defects from
label-free calibration, come back with the project and reach the exported report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from core.review import DEFECT, GOOD
from windows import scored_window_at_home

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def window(qapp, tiny_dataset: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    with scored_window_at_home(tmp_path_factory.mktemp("review_home"), tiny_dataset, tiny_model) as window:
        yield window


def test_keys_mark_the_queue_and_measure_the_model(window: MainWindow, qtbot, tmp_path: Path) -> None:
    session, review = window.session, window.review
    window.side_tabs.setCurrentWidget(review)  # the Review tab
    scores = window.thresholds.scores
    session.set_thresholds(image=float(np.sort(scores)[4]))  # half the test images flagged
    assert len(review.queue) >= 4 and review.list.count() == len(review.queue)
    session.set_thresholds(review=(float(np.sort(scores)[2]), float(np.sort(scores)[6])))
    assert len(review.queue) >= 6  # the band's images join the queue
    first = review.queue[0]
    session.set_current(first)
    qtbot.keyClick(window, Qt.Key.Key_D)
    assert session.reviews == {first: DEFECT}
    assert session.current == review.queue[1]  # moved on to the next one not reviewed
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert session.reviews[review.queue[1]] == GOOD
    assert "2 reviewed: precision 0.50, recall 1.00" in review.measured.text()
    assert "2</b> reviewed" in review.summary.text()
    # F1-optimal and calibration take the person's word
    record = session.record(review.queue[1])
    window.thresholds.f1_button.click()
    assert "reviewed by a person" in session.thresholds.how
    if record is not None and record.is_defective:
        assert window.thresholds.known_labels.sum() == 3  # a labelled defect said to be good
    session.set_review(review.queue[0], DEFECT)
    assert all(r.path != review.queue[0] for r in session.reference_normals())
    # saved with the project and read back
    path = window.save_project(tmp_path / "reviewed")
    saved = dict(session.reviews)
    session.set_reviews({})
    window.open_project(path, locate=None)
    qtbot.waitUntil(lambda: session.reviews == saved and window.scoring.job is None, timeout=30000)
    # exported in the report
    with qtbot.waitSignal(window.reports.exportFinished, timeout=60000) as blocker:
        window.reports.export_report(tmp_path / "report")
    files = blocker.args[0].result
    rows = list(csv.DictReader(files.csv.open(encoding="utf-8")))
    assert {Path(r["file"]): r["reviewed_as"] for r in rows if r["reviewed_as"]} == saved
    assert "Reviewed by a person" in files.html.read_text(encoding="utf-8")


def test_keys_work_while_the_review_tab_is_hidden(window: MainWindow, qtbot) -> None:
    window.side_tabs.setCurrentWidget(window.training)
    session = window.session
    session.set_thresholds(image=float(np.sort(window.thresholds.scores)[2]), review=None)
    session.set_reviews({})
    target = next(p for p in sorted(session.results, key=lambda p: -session.results[p].scores[
        session.thresholds.map_name]) if session.results[p].split != "train")
    session.set_current(target)
    if window.reports.offer is not None:
        window.reports.offer.close()  # the "report written" box of the test before took the focus
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    window.viewer.grid.setFocus()  # not a text field: typed letters go there
    qtbot.keyClick(window.viewer.grid, Qt.Key.Key_G)
    assert session.reviews[target] == GOOD
    window.side_tabs.setCurrentWidget(window.review)
    assert window.review.list.count() == len(window.review.queue) > 0
