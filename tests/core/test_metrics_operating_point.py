"""False-reject rate and flag-everything F1, hand-computed."""

from __future__ import annotations

import math

import numpy as np

from core.metrics.operating_point import (false_reject_rate, flag_everything_f1, image_flag_everything_f1,
                                          pixel_flag_everything_f1)


def test_false_reject_rate_counts_good_scores_at_or_above_the_threshold() -> None:
    assert false_reject_rate(np.array([0.1, 0.5, 0.9, 1.0]), 0.5) == 0.75
    assert false_reject_rate(np.array([0.1, 0.2]), 0.5) == 0.0
    assert math.isnan(false_reject_rate(np.array([]), 0.5))


def test_flag_everything_f1_is_2p_over_1_plus_p() -> None:
    assert flag_everything_f1(392, 585) == 2 * (392 / 585) / (1 + 392 / 585)
    assert round(flag_everything_f1(392, 585), 3) == 0.802
    assert flag_everything_f1(0, 10) == 0.0 and flag_everything_f1(5, 0) == 0.0
    assert image_flag_everything_f1(["good", "crack", "crack", "good"]) == 2 * 0.5 / 1.5
    masks = [np.zeros((2, 2), bool), np.array([[True, False], [False, False]])]
    assert pixel_flag_everything_f1(masks) == 2 * (1 / 8) / (1 + 1 / 8)
