"""Threshold tuning: counts, confusion matrix and metrics follow the thresholds; label-free and F1-optimal
buttons use core.metrics; a threshold move over 1000 images takes well under 100 ms."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.main_window import MainWindow
from app.session import Session
from app.threshold_panel import ThresholdPanel
from core.results import CachedResult
from core.metrics import f1_max
from core.modelfile import read_meta
from windows import scored_window_at_home

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def scored_window(qapp, tiny_dataset: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """One window scored by the tiny model, shared by the tests of this module (scoring takes seconds)."""
    with scored_window_at_home(tmp_path_factory.mktemp("threshold_home"), tiny_dataset, tiny_model) as window:
        yield window


def cell(panel: ThresholdPanel, row: int, col: int) -> int:
    return int(panel.confusion.item(row, col).text())


def test_moving_thresholds_updates_counts_and_confusion(scored_window: MainWindow) -> None:
    window = scored_window
    panel = window.thresholds
    scores = panel.scores
    assert scores.size == 8 and panel.labels is not None and panel.labels.sum() == 4  # the test split
    middle = float(np.sort(scores)[4])  # 4 images at or above it
    panel.image_hist.line.setValue(middle)  # as if dragged
    assert window.session.thresholds.image == pytest.approx(middle)
    assert "defective <b>4</b>" in panel.counts.text() and "good <b>4</b>" in panel.counts.text()
    assert sum(cell(panel, r, c) for r in (0, 1) for c in (0, 1)) == 8
    assert cell(panel, 0, 1) + cell(panel, 1, 1) == 4
    panel.image_value.setValue(float(scores.max()) + 1)  # typed: nothing is defective
    assert "defective <b>0</b>" in panel.counts.text()
    assert cell(panel, 1, 1) == 0 and cell(panel, 1, 0) == 4
    # verdicts reach the browser
    verdicts = set(window.session.verdicts().values())
    assert verdicts == {"good"}
    # review band: images between the two edges are for a person
    panel.review.setChecked(True)
    low, high = float(np.sort(scores)[2]), float(np.sort(scores)[6])
    window.session.set_thresholds(review=(low, high))
    assert f"review <b>4</b>" in panel.counts.text()
    # the pixel threshold moves the contours' level
    window.session.set_thresholds(pixel=0.5)
    assert panel.pixel_value.value() == pytest.approx(0.5)
    panel.review.setChecked(False)
    assert window.session.thresholds.review is None


def test_f1_optimal_and_label_free_buttons(scored_window: MainWindow, tiny_model: Path) -> None:
    window = scored_window
    panel = window.thresholds
    panel.f1_button.click()
    assert window.session.thresholds.image == pytest.approx(f1_max(panel.labels, panel.scores)[1])
    assert "F1" in panel.metrics.text()
    panel.label_free.click()
    reference = window.session.reference_normals()
    assert reference and all(r.split == "train" for r in reference)  # the model's held-out images
    expected = max(r.scores[window.session.thresholds.map_name] for r in reference)  # 1 % of a few images
    assert window.session.thresholds.image == pytest.approx(expected)
    panel.reset.click()
    meta = read_meta(tiny_model)
    assert window.session.thresholds.image == pytest.approx(meta.image_threshold())


def fake_results(n: int, rng: np.random.Generator) -> list[CachedResult]:
    results = []
    for i in range(n):
        defective = i % 4 == 0
        value = rng.random((64, 64)).astype(np.float16) + (0.5 if defective else 0)
        mask = np.zeros((64, 64), bool)
        mask[10:20, 10:20] = defective
        result = CachedResult(Path(f"/x/{i}.png"), "crack" if defective else "good", "test",
                              {"l2": float(value.max())}, (64, 64), maps={"l2": value}, mask=mask)
        pick = rng.choice(value.size, 512, replace=False)
        result.pixel_sample = {"l2": value.ravel()[pick].astype(np.float32)}
        result.pixel_sample_labels = mask.ravel()[pick]
        results.append(result)
    return results


def test_threshold_move_is_fast_for_1000_images(qtbot) -> None:
    session = Session()
    panel = ThresholdPanel(session)
    qtbot.addWidget(panel)
    from app.dataset_panel import DatasetPanel  # noqa: PLC0415
    from app.worker import JobRunner  # noqa: PLC0415
    from core.data.index import DatasetIndex, ImageRecord  # noqa: PLC0415

    results = fake_results(1000, np.random.default_rng(0))
    browser = DatasetPanel(session, JobRunner())
    qtbot.addWidget(browser)
    session.index = DatasetIndex(Path("/x"), "folder", [ImageRecord(r.path, "test", r.label) for r in results])
    session.thresholds = session.thresholds.__class__("l2", 1.0, 0.9, None)
    session.add_results(results)
    browser._dataset_changed()
    timings = []
    for value in np.linspace(0.8, 1.4, 20):
        start = time.perf_counter()
        session.set_thresholds(image=float(value), pixel=float(value) - 0.1)
        timings.append(time.perf_counter() - start)
    print(f"threshold move median {1000 * np.median(timings):.1f} ms")
    assert np.median(timings) < 0.1, timings
    expected = int(np.count_nonzero(panel.scores >= 1.4))
    assert f"defective <b>{expected}</b>" in panel.counts.text()


def test_panel_says_which_calibrations_are_degenerate(qtbot) -> None:
    from core.modelfile import ModelMeta  # noqa: PLC0415

    degenerate = {"value": 0.1, "how": "label-free synthetic validation: image F1-max (0.667)",
                  "false_reject_rate": 1.0, "degenerate": True, "reason": "Degenerate calibration: x."}
    meta = ModelMeta(method="ae-l2", preset="fast", config={}, in_channels=1, input_size=8, default_map="l2",
                     map_names=["l2"], thresholds={"l2": {
                         "image": {"value": 0.5, "how": "label-free: q", "false_reject_rate": 0.02},
                         "image_synthetic": degenerate}})
    session = Session()
    panel = ThresholdPanel(session)
    qtbot.addWidget(panel)
    session.set_model(Path("/x/m.safetensors"), meta)
    panel.update_thresholds()
    assert session.thresholds.image == 0.5  # the usable held-out threshold is the one in use
    text = panel.how.text()
    assert "rejects 2.0% of held-out good parts" in text and "image_synthetic: degenerate calibration" in text
