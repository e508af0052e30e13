"""Label-free thresholds as stored and evaluated: false-reject rates on good parts, degenerate synthetic-split
calibrations in the model file, the evaluate report and the CLI table (hand-computed cases)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.cli.tables import threshold_table
from core.metrics.thresholds import Threshold
from core.modelfile import ModelMeta
from core.workflow import evaluate
from core.workflow.evaluate import map_metrics
from core.workflow.calibrate import SyntheticSplit, threshold_entry
from core.workflow.train import degenerate_message


def test_threshold_entry_stores_the_false_reject_rate_of_good_images() -> None:
    image = threshold_entry(Threshold(0.3, "label-free: test"), np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert image == {"value": 0.3, "how": "label-free: test", "false_reject_rate": pytest.approx(0.6)}
    # Pixel threshold: image maxima 0.9 and 0.2 -> 1 of 2 good parts shows a region; 2 of 8 pixels flagged.
    pixels = np.array([0.1, 0.2, 0.9, 0.6, 0.1, 0.2, 0.1, 0.0])
    pixel = threshold_entry(Threshold(0.5, "label-free: px"), np.array([0.9, 0.2]), pixels)
    assert pixel["false_reject_rate"] == 0.5 and pixel["pixel_false_positive_rate"] == 0.25
    assert "degenerate" not in pixel
    synthetic = threshold_entry(Threshold(0.1, "label-free synthetic validation"), np.array([0.1, 0.2]), None,
                                True, "it flags everything")
    assert synthetic["degenerate"] is True and synthetic["false_reject_rate"] == 1.0
    assert synthetic["reason"].startswith("Degenerate calibration, not usable") and "flags everything" in synthetic["reason"]


def _split(normal_maps: list[np.ndarray], defect_maps: list[np.ndarray], mask: np.ndarray) -> SyntheticSplit:
    split = SyntheticSplit(0)
    for m in normal_maps:
        split._add({"m": m}, None, "max")
    for m in defect_maps:
        split._add({"m": m}, mask, "max")
    split.kinds = ["perlin"] * len(defect_maps)
    return split


def test_synthetic_split_that_does_not_separate_is_marked_degenerate() -> None:
    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:4] = True
    rng = np.random.default_rng(0)
    noise = [rng.random((8, 8)).astype(np.float32) for _ in range(4)]
    # Defect copies score like the normals except in no particular place: no threshold beats flag-everything.
    flat = _split(noise[:2], [noise[2] * 0.5, noise[3] * 0.5], mask).thresholds("m", "held-out normal")
    image = flat["image_synthetic"]
    assert image["degenerate"] is True and "Degenerate calibration" in image["reason"]
    # Defects that light up inside their mask: a real operating point, nothing flagged degenerate.
    bright = [n * 0.1 for n in noise]
    lit = [b + 5.0 * mask for b in bright[2:]]
    good = _split(bright[:2], lit, mask).thresholds("m", "held-out normal")
    assert good["image_synthetic"]["degenerate"] is False and good["pixel_synthetic"]["degenerate"] is False
    assert good["image_synthetic"]["false_reject_rate"] == 0.0 and "reason" not in good["image_synthetic"]
    assert good["pixel_synthetic"]["false_reject_rate"] == 0.0


def _meta(thresholds: dict) -> ModelMeta:
    return ModelMeta(method="ae-l2", preset="fast", config={}, in_channels=1, input_size=8, default_map="m",
                     map_names=["m"], thresholds={"m": thresholds})


DEGENERATE = {"value": 0.1, "how": "label-free synthetic validation: image F1-max (0.667)", "false_reject_rate": 1.0,
              "degenerate": True, "reason": "Degenerate calibration, not usable as an operating point: x."}


def test_model_file_does_not_offer_a_degenerate_threshold() -> None:
    meta = _meta({"image": {"value": 0.5, "how": "label-free: q", "false_reject_rate": 0.0125},
                  "image_synthetic": DEGENERATE})
    assert meta.threshold("m", "image").value == 0.5
    assert meta.threshold("m", "image_synthetic") is None
    assert meta.degenerate_thresholds() == [("m", "image_synthetic", DEGENERATE["reason"])]
    notes = meta.threshold_notes("m")
    assert "image: rejects 1.2% of held-out good parts" in notes
    assert "image_synthetic: degenerate calibration, not offered" in notes
    assert "m image_synthetic" in degenerate_message(meta)
    assert degenerate_message(_meta({})) == ""


def _test_set() -> evaluate.TestScores:
    # 4 good images (scores 0.1..0.4) and 2 defects (0.35, 0.9); good maps have maxima 0.2, 0.2, 0.6, 0.2.
    labels = ["good"] * 4 + ["crack"] * 2
    paths = [Path(f"{i}.png") for i in range(6)]
    maps = [np.full((2, 2), 0.2, np.float32) for _ in range(6)]
    maps[2][0, 0] = 0.6
    maps[4][0, 0] = maps[5][0, 0] = 0.8
    masks = [np.zeros((2, 2), bool) for _ in range(6)]
    masks[4][0, 0] = masks[5][0, 0] = True
    return evaluate.TestScores(labels, {"m": [0.1, 0.2, 0.3, 0.4, 0.35, 0.9]}, {"m": maps}, masks, [], paths, paths)


def test_evaluate_shows_test_frr_and_the_degenerate_flag() -> None:
    thresholds = {"image": {"value": 0.3, "how": "label-free: q", "false_reject_rate": 0.01},
                  "image_synthetic": DEGENERATE,
                  "pixel": {"value": 0.5, "how": "label-free: px", "false_reject_rate": 0.0}}
    at = map_metrics(_test_set(), "m", thresholds)["at_label_free_thresholds"]
    # Image threshold 0.3: good 0.3, 0.4 flagged -> FRR 2/4; defects 0.35, 0.9 caught -> P 2/4, R 1.
    assert at["image"]["false_reject_rate"] == 0.5 and at["image"]["precision"] == 0.5
    assert at["image"]["recall"] == 1.0 and at["image"]["degenerate"] is False
    assert at["image"]["calibration_false_reject_rate"] == 0.01
    # Degenerate 0.1 flags every good part; it is reported, flagged and explained.
    assert at["image_synthetic"]["false_reject_rate"] == 1.0 and at["image_synthetic"]["degenerate"] is True
    assert at["image_synthetic"]["reason"] == DEGENERATE["reason"]
    # Pixel threshold 0.5: one of 4 good images has a pixel above (0.6); 1 of 20 good pixels flagged.
    assert at["pixel"]["false_reject_rate"] == 0.25
    assert at["pixel"]["pixel_false_positive_rate"] == pytest.approx(1 / 22)
    assert at["pixel"]["recall"] == 1.0


def test_cli_threshold_table_shows_frr_and_degenerate() -> None:
    maps = {"m": map_metrics(_test_set(), "m", {"image": {"value": 0.3, "how": "q", "false_reject_rate": 0.01},
                                                 "image_synthetic": DEGENERATE})}
    table = threshold_table({"maps": maps, "default_map": "m"})
    lines = table.splitlines()
    assert "FRR good (test)" in lines[0] and "calibration" in lines[0]
    image_row = next(line for line in lines if " image " in f" {line} " and "synthetic" not in line)
    assert "50.0%" in image_row and "1.0%" in image_row and "usable" in image_row
    synthetic_row = next(line for line in lines if "image_synthetic" in line)
    assert "100.0%" in synthetic_row and "DEGENERATE" in synthetic_row
