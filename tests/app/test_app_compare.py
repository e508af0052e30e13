"""Compare: two models on the same data, metrics side by side and both maps in linked panes."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.main_window import MainWindow

pytestmark = pytest.mark.gui


def test_compare_two_models_fills_both_columns(qtbot, tiny_dataset: Path, tiny_model: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(tiny_dataset, then_model=tiny_model)
    qtbot.waitUntil(lambda: window.session.model_path is not None and window.session.index is not None,
                    timeout=20000)
    panel = window.compare
    panel.start(tiny_model)  # the same model twice: both columns must show (and agree)
    qtbot.waitUntil(lambda: panel.job is None, timeout=60000)
    values = [[panel.table.item(0, col).text() for col in (0, 1)]]
    assert values[0][0] == values[0][1] and values[0][0] != "—"
    assert len(panel.other) == 16
    window.close()
