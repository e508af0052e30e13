"""File > Export model…: the open model is exported in the background with the map and the thresholds set in
the workbench inside; a method that cannot export, or nothing to export, is a dialog saying why."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.main_window import MainWindow
from core.errors import UserError
from core.export.metadata import read_onnx_meta, read_props
from core.export.onnx_export import check_method_exportable
from core.export.runtime import load_onnx_model
from core.models.registry import get_method
from windows import scored_window

pytestmark = pytest.mark.gui


def menu_action(window: MainWindow, text: str) -> QAction:
    return next(a for m in window.menuBar().actions() if m.menu() for a in m.menu().actions() if a.text() == text)


def choose_file(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(path), ""))


def warnings_shown(window: MainWindow) -> list[str]:
    return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]


def test_export_model_from_the_file_menu(qtbot, monkeypatch: pytest.MonkeyPatch, tiny_dataset: Path,
                                         tiny_model: Path, tmp_path: Path) -> None:
    window = scored_window(tiny_dataset, tiny_model)
    qtbot.addWidget(window)
    session = window.session
    session.set_map("l2")
    stored_pixel = session.meta.pixel_threshold("l2")
    hand = float(sorted(session.scores())[len(session.results) // 2])
    session.set_thresholds(image=hand)
    out = tmp_path / "exported" / "line.onnx"
    out.parent.mkdir()
    choose_file(monkeypatch, out)
    with qtbot.waitSignal(window.model_export.exported, timeout=180000) as blocker:
        menu_action(window, "Export mo&del…").trigger()
        assert window.runner.running("model export")  # in the worker thread, not the GUI's
    result = blocker.args[0]
    assert result.path == out and result.maps[0] == "l2" and result.outputs[:2] == ["score", "map_l2"]
    assert "exported to" in window.job_status.label.text() and not window.job_status.errors
    meta = read_onnx_meta(out)
    assert meta.default_map == "l2" and meta.image_threshold() == pytest.approx(hand)
    assert meta.threshold("l2", "image").how == "set by hand"
    assert meta.pixel_threshold() == stored_pixel  # not moved: stored value, stored account
    assert read_props(out)["image_threshold_how"] == "set by hand"
    runtime, _ = load_onnx_model(out)
    assert runtime.default_map == "l2"
    window.close()


def test_what_cannot_export_is_a_dialog(qtbot, monkeypatch: pytest.MonkeyPatch, tiny_model: Path,
                                        tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    out = tmp_path / "m.onnx"
    choose_file(monkeypatch, out)
    menu_action(window, "Export mo&del…").trigger()  # no model open, none trained here
    assert "No model to export" in window.job_status.errors[-1]
    assert window.model_export.export_file(tiny_model, tmp_path / "m.txt") is None
    assert "must end in .onnx" in window.job_status.errors[-1]

    with pytest.raises(UserError, match="i3ad cannot be exported to ONNX: its test-time procedure is a loop"):
        check_method_exportable("i3ad")  # the check the dialog shows, from the method's name alone
    monkeypatch.setattr(get_method("ae-ssim").model_cls, "export_blocker", "its test-time loop runs in Python")
    assert window.model_export.export_file(tiny_model, out) is None
    message = window.job_status.errors[-1]
    assert message == (f"{tiny_model.name} cannot be exported: ae-ssim cannot be exported to ONNX: its test-time "
                       "loop runs in Python")
    assert message in warnings_shown(window) and not window.runner.jobs and not out.exists()
    window.close()
