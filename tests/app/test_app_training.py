"""Training through the panel: a tiny fast AE run to the finished signal, results scored afterwards, and a
cancelled run that keeps its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.main_window import MainWindow
from core.workflow import default_model_path
from core.workflow.train import checkpoint_path_for

pytestmark = pytest.mark.gui


def window_on(qtbot, folder: Path) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.session.datasetChanged, timeout=10000):
        window.open_folder(folder)
    return window


def test_train_fast_ae_through_the_panel(qtbot, tiny_dataset: Path) -> None:
    window = window_on(qtbot, tiny_dataset)
    panel = window.training
    panel.method.setCurrentText("ae-ssim")
    panel.preset.setCurrentText("fast")
    panel.epochs.setValue(1)
    panel.batch_size.setValue(4)
    panel.device.setCurrentText("cpu")
    assert panel.overrides()["epochs"] == 1
    with qtbot.waitSignal(panel.trainingFinished, timeout=60000) as blocker:
        panel.train_button.click()
        assert panel.is_running() and not panel.train_button.isEnabled()
    model = blocker.args[0]
    assert model == default_model_path(tiny_dataset, "ae-ssim", "fast") and model.is_file()
    assert panel.curves  # live loss curves were drawn
    assert panel.progress.value() == panel.progress.maximum()
    # the new model is opened and starts scoring the folder (scoring itself is tested with thresholds)
    assert window.session.model_path == model and window.session.meta.method == "ae-ssim"
    assert window.scoring.job is not None
    window.close()  # cancels the scoring


def test_cancel_training_keeps_the_checkpoint(qtbot, tiny_dataset: Path) -> None:
    window = window_on(qtbot, tiny_dataset)
    panel = window.training
    panel.method.setCurrentText("ae-l2")
    panel.epochs.setValue(200)
    panel.batch_size.setValue(4)
    panel.device.setCurrentText("cpu")
    steps: list[int] = []
    panel.train_button.click()
    panel.job.progress.connect(lambda p: steps.append(p.step) if p.losses else None)
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=30000)
    with qtbot.waitSignal(panel.trainingCancelled, timeout=10000):
        panel.cancel_button.click()
    assert len(steps) < 50  # stopped within a step or two of the click, not after 200 epochs
    model = default_model_path(tiny_dataset, "ae-l2", "fast")
    assert checkpoint_path_for(model).is_file() and not model.exists()
    assert "checkpoint" in panel.status.text()
    assert panel.train_button.isEnabled()
    window.close()


def test_training_without_a_folder_says_what_to_do(qtbot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.training.train_button.click()
    assert "Open a folder" in window.job_status.errors[-1]
    window.close()


def test_a_bad_output_folder_is_refused_with_a_message_before_training(qtbot, tiny_dataset: Path) -> None:
    from core.paths import models_dir  # noqa: PLC0415

    models_dir().parent.mkdir(parents=True, exist_ok=True)
    models_dir().write_text("a file where the models folder should be")
    window = window_on(qtbot, tiny_dataset)
    panel = window.training
    panel.method.setCurrentText("ae-l2")
    panel.epochs.setValue(1)
    panel.device.setCurrentText("cpu")
    panel.train_button.click()
    qtbot.waitUntil(lambda: bool(window.job_status.errors), timeout=20000)
    message = window.job_status.errors[-1]
    assert "is a file, not a folder" in message and "Traceback" not in message
    assert models_dir().read_text() == "a file where the models folder should be"
    qtbot.waitUntil(lambda: panel.train_button.isEnabled(), timeout=10000)
    window.close()
