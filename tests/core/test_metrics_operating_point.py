"""Flag-everything F1 over images and pixels, hand-computed."""

from __future__ import annotations

import numpy as np

from core.metrics.operating_point import image_flag_everything_f1, pixel_flag_everything_f1


def test_image_flag_everything_f1_is_2p_over_1_plus_p() -> None:
    assert image_flag_everything_f1(["good", "crack", "crack", "good"]) == 2 * 0.5 / 1.5
    labels = ["good"] * 193 + ["crack"] * 392
    assert round(image_flag_everything_f1(labels), 3) == 0.802  # magnetic_tile's test set
    assert image_flag_everything_f1(["good", "good"]) == 0.0 and image_flag_everything_f1([]) == 0.0


def test_pixel_flag_everything_f1_counts_defect_pixels() -> None:
    masks = [np.zeros((2, 2), bool), np.array([[True, False], [False, False]])]
    assert pixel_flag_everything_f1(masks) == 2 * (1 / 8) / (1 + 1 / 8)
    assert pixel_flag_everything_f1([np.zeros((3, 3), bool)]) == 0.0
