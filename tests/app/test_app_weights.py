"""Tools > Import weights file…: a recognized file is imported in the background and the status bar names the
new perceptual backbone; an unknown file is a readable message."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.main_window import MainWindow
from core.scoring import perceptual

pytestmark = pytest.mark.gui


def test_import_weights_file_from_the_workbench(qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = tmp_path / "alexnet.pth"
    source.write_bytes(b"alexnet weights, pretend")
    digits = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    monkeypatch.setitem(perceptual.TRUNK_FILES, "alex", f"alexnet-owt-{digits}.pth")
    perceptual.find_trunk_weights.cache_clear()
    window = MainWindow()
    qtbot.addWidget(window)
    assert "bundled" in window.machine.backbone_label.text()
    assert any(a.text() == "Import &weights file…" for m in window.menuBar().actions() if m.menu()
               for a in m.menu().actions())
    with qtbot.waitSignal(window.weights.imported, timeout=10000) as blocker:
        window.weights.import_file(source)
    assert blocker.args[0].name == f"alexnet-owt-{digits}.pth"
    assert "lpips-alex" in window.machine.backbone_label.text()
    assert "imported" in window.job_status.label.text()

    other = tmp_path / "other.pth"
    other.write_bytes(b"something else")
    job = window.weights.import_file(other)
    qtbot.waitUntil(lambda: not job.is_running() and bool(window.job_status.errors), timeout=10000)
    assert "none of the weights files" in window.job_status.errors[-1]
    window.close()
    perceptual.find_trunk_weights.cache_clear()
