"""Training-set audit in the workbench: suspects ranked and ticked, each viewable, one action to leave the ticked
images out and train again (the new model records them and never replaces the old one); a model that does
not detect is said so after training."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from core.modelfile import read_meta
from windows import scored_window

pytestmark = pytest.mark.gui


def test_audit_rank_view_and_retrain_without_the_ticked(qtbot, tiny_dataset: Path, tiny_model: Path) -> None:
    window = scored_window(tiny_dataset, tiny_model)
    qtbot.addWidget(window)
    audit = window.audit
    audit.start()
    qtbot.waitUntil(lambda: audit.job is None and bool(audit.entries), timeout=60000)
    scores = [e.score for e in audit.entries]
    assert len(audit.entries) == 8 and scores == sorted(scores, reverse=True)  # every training image, ranked
    assert audit.ticked() == tuple(e.path for e in audit.entries if e.suspect)
    audit.table.setCurrentCell(1, 2)  # a click shows the image
    assert window.session.current == audit.entries[1].path
    for row in range(len(audit.entries)):  # tick exactly the two most anomalous
        audit.table.item(row, 0).setCheckState(Qt.CheckState.Checked if row < 2 else Qt.CheckState.Unchecked)
    left_out = audit.ticked()
    assert len(left_out) == 2
    training = window.training
    training.epochs.setValue(1)
    training.batch_size.setValue(4)
    training.device.setCurrentText("cpu")
    with qtbot.waitSignal(training.trainingFinished, timeout=90000) as blocker:
        audit.retrain_button.click()
    model = blocker.args[0]
    meta = read_meta(model)
    assert sorted(meta.training["excluded"]) == sorted(str(p) for p in left_out)
    assert meta.training["n_train"] + meta.training["n_validation"] == 6
    window.close()


def test_a_model_that_does_not_detect_is_said_so(qtbot, tiny_dataset: Path, monkeypatch) -> None:
    import app.training_panel as training_panel  # noqa: PLC0415

    window = MainWindow()
    qtbot.addWidget(window)
    monkeypatch.setattr(training_panel, "read_meta", lambda _path: object())
    monkeypatch.setattr(training_panel, "detection_warning", lambda _meta: "This model does not detect: …")
    with qtbot.waitSignal(window.training.trainingWarning, timeout=1000):
        window.training._check_detection(Path("m.safetensors"))
    assert "does not detect" in window.training.status.text()
    assert window.job_status.errors[-1].startswith("This model does not detect")
    window.close()
