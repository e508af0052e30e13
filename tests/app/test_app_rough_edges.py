"""Rough edges kept fixed: long paths do not widen the window, map panes keep the input's aspect, legends sit
outside the plots, the threshold counts agree with the confusion matrix (review band included), a short
threshold dock scrolls, a new sort shows the grid from the top, opening a report without a program says so,
and the training ETA waits for the job's own pace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QDesktopServices

from app.dataset_panel import DatasetPanel
from app.eta import Eta
from app.image_panes import PaneGrid
from app.main_window import MainWindow
from app.session import Session, Thresholds
from app.threshold_panel import ThresholdPanel
from app.worker import JobRunner
from core.data.demo import make_demo_dataset
from core.data.index import DatasetIndex, ImageRecord
from core.results import CachedResult

pytestmark = pytest.mark.gui


def results(n: int, labelled: bool = True) -> list[CachedResult]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        defective = i % 4 == 0
        label = ("crack" if defective else "good") if labelled else "unknown"
        r = CachedResult(Path(f"/x/{i:04d}.png"), label, "test", {"l2": float(rng.random() + defective)}, (8, 8))
        r.pixel_sample = {"l2": rng.random(16).astype(np.float16)}
        r.pixel_sample_labels = np.zeros(16, bool)
        out.append(r)
    return out


def session_with(n: int, labelled: bool = True) -> Session:
    session = Session()
    items = results(n, labelled)
    session.index = DatasetIndex(Path("/x"), "folder", [ImageRecord(r.path, "test", r.label) for r in items])
    session._records = {r.path: r for r in session.index.records}
    session.thresholds = Thresholds("l2", 1.0, 0.5)
    session.add_results(items)
    return session


def test_long_paths_do_not_widen_the_window(qtbot, tmp_path: Path) -> None:
    widths = []
    for name in ("short", "/".join(["a_very_long_folder_name_without_any_break_" * 4] * 3)):
        data = make_demo_dataset(tmp_path / name, "metal", n_train=2, n_test_good=1, n_test_defect=1, size=32)
        window = MainWindow()
        qtbot.addWidget(window)
        window.show()
        with qtbot.waitSignal(window.session.datasetChanged, timeout=10000):
            window.open_folder(data)
        window.session.set_current(window.session.index.records[0].path)
        qtbot.wait(20)
        widths.append(window.minimumSizeHint().width())
        window.close()
    assert widths[1] <= widths[0] + 20 and widths[1] < 1600, widths


def test_map_panes_keep_the_aspect_of_the_input(qtbot) -> None:
    grid = PaneGrid(3)
    qtbot.addWidget(grid)
    grid.resize(1100, 700)
    grid.show()
    grid.build([("input", False), ("reconstruction", False), ("l2", True), ("ssim", True), ("l1", True)])
    image = np.random.default_rng(0).random((460, 1130)).astype(np.float32)
    for pane in grid.panes.values():
        pane.set_base(image, QRectF(0, 0, 1130, 460))
    qtbot.wait(20)
    grid.fit(1130, 460)
    qtbot.wait(20)
    for key, pane in grid.panes.items():
        (x0, x1), (y0, y1) = pane.plot.vb.viewRange()
        x_scale, y_scale = pane.plot.vb.width() / (x1 - x0), pane.plot.vb.height() / (y1 - y0)
        assert x_scale == pytest.approx(y_scale, rel=0.01), key  # square pixels in every pane


def test_legends_are_outside_the_plots(qtbot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    training = window.training
    assert training.loss_plot.plotItem.legend is None
    for step in range(3):
        training.losses.update({f"loss {k}": ([step], [1.0]) for k in range(6)})
    training._plot()
    assert all(f"loss {k}" in training.loss_legend.text() for k in range(6))  # all six entries readable
    assert window.thresholds.image_hist.plot.plotItem.legend is None
    window.close()


def test_counts_and_confusion_agree_with_a_review_band(qtbot) -> None:
    session = session_with(40)
    panel = ThresholdPanel(session)
    qtbot.addWidget(panel)
    panel.rebuild()
    scores = np.sort(panel.scores)
    session.set_thresholds(image=float(scores[25]), review=(float(scores[20]), float(scores[30])))
    header = [panel.confusion.horizontalHeaderItem(c).text() for c in range(panel.confusion.columnCount())]
    assert header == ["pred. good", "review", "pred. defect"]
    column = {name: sum(int(panel.confusion.item(r, c).text()) for r in (0, 1)) for c, name in enumerate(header)}
    text = panel.counts.text()
    assert f"defective <b>{column['pred. defect']}</b>" in text and f"review <b>{column['review']}</b>" in text
    assert f"good <b>{column['pred. good']}</b>" in text
    session.set_thresholds(review=None)
    assert panel.confusion.columnCount() == 2


def test_roc_names_what_it_lacks_and_uses_reviews(qtbot) -> None:
    session = session_with(12, labelled=False)
    panel = ThresholdPanel(session)
    qtbot.addWidget(panel)
    panel.rebuild()
    assert "no defective image" in panel.roc.plotItem.titleLabel.text
    session.set_review(Path("/x/0000.png"), "defect")
    session.set_review(Path("/x/0001.png"), "good")
    assert "2 images" in panel.roc.plotItem.titleLabel.text and panel.f1_button.isEnabled()


def test_short_threshold_dock_scrolls_instead_of_overlapping(qtbot) -> None:
    session = session_with(40)
    panel = ThresholdPanel(session)
    qtbot.addWidget(panel)
    panel.resize(1400, 170)
    panel.show()
    panel.rebuild()
    qtbot.wait(20)
    assert panel.counts.geometry().bottom() <= panel.how.geometry().top()
    assert panel.how.geometry().bottom() <= panel.confusion.geometry().top()
    assert panel.confusion.geometry().bottom() <= panel.metrics.geometry().top()


def test_a_new_sort_shows_the_grid_from_the_top(qtbot) -> None:
    session = session_with(600)
    browser = DatasetPanel(session, JobRunner())
    qtbot.addWidget(browser)
    browser.resize(330, 700)
    browser.show()
    browser._dataset_changed()
    lowest = min(session.scored(), key=lambda r: r.scores["l2"]).path
    session.set_current(lowest)
    qtbot.wait(20)
    browser.sort.setCurrentIndex(1)  # highest first: the current image is now last
    qtbot.wait(20)
    assert browser.grid.verticalScrollBar().value() == 0
    assert session.current == lowest


def test_opening_a_report_without_a_program_says_so(qtbot, monkeypatch, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda _url: False)
    assert not window.reports.open_file(tmp_path / "report.html")
    assert "No program is set up" in window.job_status.errors[-1] and str(tmp_path) in window.job_status.errors[-1]
    window.close()


def test_eta_waits_for_the_jobs_own_pace() -> None:
    now = [0.0]
    eta = Eta(clock=lambda: now[0])
    assert eta.update(1, 101) is None  # the first step took long (loading, first batch): no estimate from it
    for step in range(2, 12):
        now[0] += 1.0  # then one second per step
        value = eta.update(step, 101)
    assert value == pytest.approx(90.0)  # 90 steps left at 1 s each
