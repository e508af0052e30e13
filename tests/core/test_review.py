"""Tests for core.review: the queue of images to look at, and precision / recall on a person's reviews."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.review import DEFECT, GOOD, measure, review_queue


def test_queue_holds_flagged_and_band_images_most_anomalous_first() -> None:
    paths = [Path(f"{i}.png") for i in range(6)]
    scores = np.array([0.1, 0.9, 0.5, 0.7, np.nan, 0.45])
    assert review_queue(paths, scores, 0.6) == [Path("1.png"), Path("3.png")]
    assert review_queue(paths, scores, 0.6, review=(0.48, 0.75)) == [Path("1.png"), Path("3.png"), Path("2.png")]
    assert review_queue(paths, scores, float("inf")) == []


def test_measure_counts_hits_false_alarms_and_misses() -> None:
    scores = {Path("a"): 0.9, Path("b"): 0.8, Path("c"): 0.2, Path("d"): 0.1}
    reviews = {Path("a"): DEFECT, Path("b"): GOOD, Path("c"): DEFECT, Path("d"): GOOD, Path("unscored"): GOOD}
    m = measure(reviews, scores, 0.5)
    assert (m.n, m.tp, m.fp, m.fn, m.tn) == (4, 1, 1, 1, 1)
    assert m.precision == 0.5 and m.recall == 0.5
    assert "4 reviewed: precision 0.50, recall 0.50" in m.text()
    assert measure({}, scores, 0.5).text() == "No image reviewed yet."
    assert measure({Path("d"): GOOD}, scores, 0.5).precision is None
