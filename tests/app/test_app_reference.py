"""The model's reference image in the workbench: Use as reference is offered only for a model whose method uses
one, replaces the reference with the chosen image's pixels (model file and image untouched, scores marked
stale), the viewer shows it, saving writes a new model file that records the image, and closing asks first."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from app.image_panes import as_display
from app.main_window import MainWindow
from core.data.io import read_image
from core.data.preprocess import working_image
from core.modelfile import load_model, read_meta
from windows import model_file, wait_for

pytestmark = pytest.mark.gui
SIZE = 64  # the smallest NDP-Net input: level 5 (4x4) holds one 4x4 RBFRM patch
TINY_NDPNET = dict(input_size=SIZE, widths=(4, 4, 8, 8, 8), ffm_channels=4, weight_perceptual=0.0)
Buttons = QMessageBox.StandardButton


@dataclass
class Answers:
    """What the "reference image not saved" question answers (the last of `replies`) and what it asked."""

    replies: list[Buttons] = field(default_factory=lambda: [Buttons.Discard])
    asked: list[str] = field(default_factory=list)


@pytest.fixture(autouse=True)
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    """No dialog blocks a test: the question is answered from `Answers` (Discard unless a test says otherwise)."""
    answers = Answers()

    def question(_parent: object, _title: str, text: str, *_args: object) -> Buttons:
        answers.asked.append(text)
        return answers.replies[-1]
    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return answers


@pytest.fixture
def ndpnet_file(tmp_path: Path) -> Path:
    return model_file(tmp_path, "ndpnet", reference=torch.full((1, SIZE, SIZE), 0.5), **TINY_NDPNET)


def _window(qtbot, folder: Path, model: Path) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1600, 1000)
    window.show()
    window.open_folder(folder, then_model=model)
    _wait_scored(window, model)
    return window


def _wait_scored(window: MainWindow, model: Path) -> None:
    session = window.session
    wait_for(lambda: session.model_path == model and len(session.results) == 16 and window.scoring.job is None
             and window.references.job is None, what="scoring")


def _train_image(window: MainWindow) -> Path:
    assert window.session.index is not None
    return window.session.index.train_records()[2].path


def test_use_as_reference_is_offered_only_for_a_model_that_uses_one(qtbot, tiny_dataset: Path, tmp_path: Path,
                                                                     ndpnet_file: Path) -> None:
    plain = model_file(tmp_path, "ae-ssim")
    window = _window(qtbot, tiny_dataset, plain)
    window.session.set_current(_train_image(window))
    assert not window.dataset.use_reference.isEnabled()
    assert window.session.reference is None and "reference" not in window.viewer.grid.panes

    window.open_model(ndpnet_file)
    _wait_scored(window, ndpnet_file)
    assert window.dataset.use_reference.isEnabled()
    pane = window.viewer.grid.panes["reference"]  # the reference stored in the model file, shown
    assert pane.base.image is not None and np.allclose(pane.base.image, 0.5)
    assert pane.plot.titleLabel.text == "reference — chosen in training"
    defective = next(r.path for r in window.session.index.records if r.is_defective)
    window.session.set_current(defective)
    assert not window.dataset.use_reference.isEnabled()  # a defective image is no reference for normal

    window.open_model(plain)
    _wait_scored(window, plain)
    assert "reference" not in window.viewer.grid.panes and not window.dataset.use_reference.isEnabled()


def test_using_an_image_as_reference_sets_its_pixels_and_saving_writes_a_new_file(
        qtbot, tiny_dataset: Path, ndpnet_file: Path, tmp_path: Path) -> None:
    window = _window(qtbot, tiny_dataset, ndpnet_file)
    chosen = _train_image(window)
    image_bytes, model_bytes = chosen.read_bytes(), ndpnet_file.read_bytes()
    window.session.set_current(chosen)
    window.dataset.use_reference.trigger()
    wait_for(lambda: window.session.reference_unsaved, what="setting the reference")

    expected = working_image(read_image(chosen), window.references.network.config.policy)
    assert expected.shape == (1, SIZE, SIZE) and not np.allclose(expected, 0.5)
    assert torch.allclose(window.references.network.reference_image(), torch.from_numpy(expected), atol=1e-6)
    assert np.allclose(window.session.reference, expected, atol=1e-6)
    pane = window.viewer.grid.panes["reference"]
    assert np.allclose(pane.base.image, as_display(expected), atol=1e-6)
    assert pane.plot.titleLabel.text == f"reference — {chosen.name} (not saved)"
    assert window.session.results_stale and "stale" in window.job_status.label.text()
    assert window.references.save_action.isEnabled()
    assert chosen.read_bytes() == image_bytes and ndpnet_file.read_bytes() == model_bytes  # nothing written
    if os.environ.get("DEFECTLAB_SCREENSHOT"):  # keep a picture of the window to look at
        window.grab().save(os.environ["DEFECTLAB_SCREENSHOT"])

    saved = window.references.save(tmp_path / "with-reference")  # the suffix is added
    assert saved == tmp_path / "with-reference.safetensors"
    _wait_scored(window, saved)  # the saved model is opened and the folder scored with it
    assert not window.session.reference_unsaved and not window.session.results_stale
    assert read_meta(saved).training["reference"] == str(chosen)
    assert torch.allclose(load_model(saved)[0].reference_image(), torch.from_numpy(expected), atol=1e-6)
    assert ndpnet_file.read_bytes() == model_bytes
    assert window.viewer.grid.panes["reference"].plot.titleLabel.text == f"reference — {chosen.name}"


def test_a_corrupt_image_is_reported_and_the_reference_kept(qtbot, tiny_dataset: Path, ndpnet_file: Path,
                                                           tmp_path: Path) -> None:
    window = _window(qtbot, tiny_dataset, ndpnet_file)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n half a file")
    window.references.use_image(broken)
    wait_for(lambda: window.references.job is None, what="setting the reference")
    assert any("broken.png" in message for message in window.job_status.errors)
    assert not window.session.reference_unsaved and np.allclose(window.session.reference, 0.5)
    assert broken.read_bytes() == b"\x89PNG\r\n\x1a\n half a file"


def test_closing_with_an_unsaved_reference_asks_first(qtbot, tiny_dataset: Path, ndpnet_file: Path,
                                                     answers: Answers) -> None:
    window = _window(qtbot, tiny_dataset, ndpnet_file)
    window.references.use_image(_train_image(window))
    wait_for(lambda: window.session.reference_unsaved, what="setting the reference")
    answers.replies.append(Buttons.Cancel)
    assert not window.close() and window.isVisible()
    answers.replies.append(Buttons.Discard)
    assert window.close()
    assert len(answers.asked) == 2 and "not saved" in answers.asked[0]
