"""Tests for core.results: shrinking, compact results (maps, mask, reconstruction) and their pixel samples."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.data.index import ImageRecord
from core.inference import ImageResult
from core.results import CachedResult, compact_result, pixel_sample, shrink


def test_shrink_keeps_small_arrays_and_limits_the_long_side() -> None:
    small = np.zeros((10, 20), np.float32)
    assert shrink(small, 64) is small
    assert shrink(np.zeros((300, 600), np.float32), 100).shape == (50, 100)


def test_compact_result_shrinks_maps_reads_the_mask_and_samples_pixels(tmp_path: Path) -> None:
    image_path = tmp_path / "a.png"
    mask_path = tmp_path / "a_mask.png"
    cv2.imwrite(str(image_path), np.zeros((40, 80), np.uint8))
    mask = np.zeros((40, 80), np.uint8)
    mask[10:20, 10:30] = 255
    cv2.imwrite(str(mask_path), mask)
    maps = {"l2": np.random.default_rng(0).random((40, 80)).astype(np.float32)}
    result = ImageResult(image_path, "crack", 0.9, "defective", {"l2": 0.9}, maps, np.zeros((1, 40, 80), np.float32))
    cached = compact_result(result, ImageRecord(image_path, "test", "crack", mask_path), keep_maps=True, max_side=40)
    assert cached.full_hw == (40, 80) and cached.maps["l2"].shape == (20, 40) and cached.maps["l2"].dtype == np.float16
    assert cached.reconstruction.shape == (20, 40, 1) and cached.reconstruction.dtype == np.uint8
    assert cached.mask.sum() == 5 * 10
    labels, values = pixel_sample([cached], "l2")
    assert labels.sum() == 50 and values.size == labels.size == 800  # every pixel of a small map
    bare = compact_result(result, None, keep_maps=False)
    assert bare.maps == {} and bare.scores == {"l2": 0.9} and bare.is_defective


def test_pixel_sample_skips_unlabelled_images() -> None:
    unknown = CachedResult(Path("x.png"), "unknown", "unsplit", {"l2": 1.0}, (4, 4))
    labels, values = pixel_sample([unknown], "l2")
    assert labels.size == values.size == 0
