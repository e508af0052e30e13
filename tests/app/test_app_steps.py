"""The result viewer's iteration view: offered only for models whose inference has steps, it computes the
current image's steps in a worker and steps through them (mask, image after the step, the step's maps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.result_viewer import ResultViewer
from app.session import Session
from app.steps_view import MASK, RECON
from app.worker import JobRunner
from core.data.io import write_png_atomic
from core.modelfile import read_meta
from windows import model_file

pytestmark = pytest.mark.gui


def _viewer(qtbot, model: Path, image: Path) -> ResultViewer:
    session = Session()
    runner = JobRunner()
    viewer = ResultViewer(session, runner, lambda: "cpu")
    qtbot.addWidget(viewer)
    viewer.show()
    session.set_model(model, read_meta(model))
    session.set_current(image)
    return viewer


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "part.png"
    write_png_atomic(path, np.random.default_rng(0).integers(0, 256, (40, 48), dtype=np.uint8))
    return path


def test_iteration_view_steps_through_the_steps_of_the_current_image(qtbot, tmp_path: Path, image: Path) -> None:
    model = model_file(tmp_path, "i3ad", input_size=32, cnum=8, discriminator_width=0.125, test_iterations=3,
                        early_stop=False, u=0.05, tune_u=False)
    viewer = _viewer(qtbot, model, image)
    assert viewer.iterations.isVisible() and not viewer.steps.isVisible()
    viewer.iterations.setChecked(True)
    steps = viewer.steps
    assert steps.isVisible()
    qtbot.waitUntil(lambda: steps.job is None and len(steps.steps) == 4, timeout=60000)
    assert steps.slider.maximum() == 3 and steps.progress.value() == 4
    assert set(steps.grid.panes) == {"input", MASK, RECON, "ssim"}
    steps.slider.setValue(0)
    assert "Step 1 of 4" in steps.label.text() and "checkerboard" in steps.label.text()
    assert steps.grid.panes[MASK].base.image.shape == (40, 48)  # at the image's own resolution
    steps.next.click()
    assert steps.slider.value() == 1 and "Step 2 of 4" in steps.label.text() and "iteration 1" in steps.label.text()
    shown = steps.grid.panes[RECON].base.image
    assert np.allclose(shown, steps.steps[1].reconstruction[0])
    steps.previous.click()
    assert steps.slider.value() == 0
    viewer.iterations.setChecked(False)
    assert not steps.isVisible()


def test_iteration_view_is_not_offered_for_a_single_pass_method(qtbot, tmp_path: Path, image: Path) -> None:
    model = model_file(tmp_path, "ae-l2")
    viewer = _viewer(qtbot, model, image)
    assert not viewer.iterations.isVisible() and not viewer.steps.available()
