"""Compare: two models on the same data, metrics side by side from results already scored (nothing scored
twice), columns headed by the models' names, progress shown, and a comparison that can be cancelled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.main_window import MainWindow
from windows import scored_window

pytestmark = pytest.mark.gui


def test_compare_two_models_fills_both_columns(qtbot, tiny_dataset: Path, tiny_model: Path,
                                               tmp_path: Path, monkeypatch) -> None:
    window = scored_window(tiny_dataset, tiny_model)
    qtbot.addWidget(window)
    panel = window.compare
    import app.jobs as jobs  # noqa: PLC0415

    scored_with: list[Path] = []
    real = jobs.predict_folder
    monkeypatch.setattr(jobs, "predict_folder", lambda request, cancel: (scored_with.append(request.model),
                                                                         real(request, cancel))[1])
    panel.start(tiny_model)  # the same model twice: both columns must show (and agree)
    assert not panel.progress.isHidden() and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.job is None, timeout=60000)
    assert scored_with == []  # B's results came back from disk: scored when it was model A
    values = [panel.table.item(row, col).text() for row in range(panel.table.rowCount()) for col in (0, 1)]
    assert values[0] == values[1] and values[0] != "—"
    assert [panel.table.horizontalHeaderItem(c).text() for c in (0, 1)] == ["A: tiny_ae", "B: tiny_ae"]
    assert len(panel.other) == 16 and panel.progress.isHidden()
    other = tmp_path / "elsewhere" / tiny_model.name  # the same weights elsewhere: same content, same results
    other.parent.mkdir()
    shutil.copy(tiny_model, other)
    panel.start(other)
    qtbot.waitUntil(lambda: panel.job is None, timeout=60000)
    assert panel.table.horizontalHeaderItem(1).text() == "B: elsewhere/tiny_ae"
    window.close()


def test_compare_can_be_cancelled_and_waits_for_model_a(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                        tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(tiny_dataset, then_model=tiny_model)
    qtbot.waitUntil(lambda: window.session.model_path is not None and window.scoring.job is not None, timeout=20000)
    panel = window.compare
    if len(window.session.results) < 16:
        panel.start(tiny_model)
        assert panel.job is None and "wait for it to finish" in panel.status.text()
    qtbot.waitUntil(lambda: len(window.session.results) == 16 and window.scoring.job is None, timeout=60000)
    window.scoring.discard()
    from core.result_store import results_dir  # noqa: PLC0415

    shutil.rmtree(results_dir(), ignore_errors=True)  # B must be scored this time
    panel.start(tiny_model)
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.job is None, timeout=60000)
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.status.text() in ("Comparison cancelled.", "Compared on 16 images.")
    window.close()
