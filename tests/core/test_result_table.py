"""Tests for core.result_table: columns appended group by group, pixels of chosen rows, an even subsample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.result_table import DEFECTIVE, GOOD, UNKNOWN, ResultTable
from core.results import CachedResult


def result(i: int, label: str, split: str = "test", pixels: int = 4) -> CachedResult:
    r = CachedResult(Path(f"/d/{i}.png"), label, split, {"l2": float(i)}, (8, 8))
    r.pixel_sample = {"l2": np.full(pixels, i, np.float16)}
    r.pixel_sample_labels = np.arange(pixels) < (1 if label not in ("good", "unknown") else 0)
    return r


def test_columns_follow_the_results_in_order() -> None:
    table = ResultTable()
    assert table.add([result(0, "good", "train"), result(1, "crack")])
    assert table.add([result(2, "unknown")])
    assert not table.add([result(1, "crack")])  # already there: nothing added
    assert table.paths == [Path("/d/0.png"), Path("/d/1.png"), Path("/d/2.png")]
    assert table.train.tolist() == [True, False, False]
    assert table.labels.tolist() == [GOOD, DEFECTIVE, UNKNOWN]
    assert table.scores("l2").tolist() == [0.0, 1.0, 2.0]
    assert np.isnan(table.scores("ssim")).all() and table.scores("ssim").size == 3


def test_pixels_of_chosen_rows_and_a_subsample_within_budget() -> None:
    table = ResultTable()
    table.add([result(i, "crack" if i % 2 else "good", pixels=100) for i in range(50)])
    labels, values = table.pixels("l2")
    assert values.size == 5000 and labels.sum() == 25 and values.dtype == np.float32
    odd = np.arange(50) % 2 == 1
    labels, values = table.pixels("l2", odd)
    assert set(values.tolist()) == set(range(1, 50, 2)) and labels.sum() == 25
    _, values = table.pixels("l2", budget=500)
    assert 450 <= values.size <= 550 and len(set(values.tolist())) == 50  # every image still represented
    assert table.pixels("ssim")[1].size == 0


def test_an_expected_job_is_given_room_after_its_first_group() -> None:
    table = ResultTable()
    table.expect(1000)
    table.add([result(i, "good", pixels=50) for i in range(10)])
    values = table._pixels["l2"][0]
    assert values._data.size >= 1000 * 50  # sized for the whole job from the first group's pixels per image
    before = values._data
    for start in range(10, 1000, 30):
        table.add([result(i, "good", pixels=50) for i in range(start, min(start + 30, 1000))])
    assert values._data is before  # no later copy
    assert len(table) == 1000 and set(table.pixels("l2")[1].tolist()) == set(range(1000))
