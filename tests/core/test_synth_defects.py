"""Tests for core.synth.defects: synthetic defects and their exact masks."""

from __future__ import annotations

import numpy as np
import pytest

from core.synth.defects import DEFECTS, MIN_DELTA
from core.synth.textures import brushed_metal, ceramic_tiles, woven_fabric


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel max |change| over channels, (H, W)."""
    diff = np.abs(after.astype(np.float64) - before.astype(np.float64))
    return diff if diff.ndim == 2 else diff.max(axis=0)


@pytest.mark.parametrize("name", sorted(DEFECTS))
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("seed", range(4))
def test_defect_mask_is_exact(name: str, channels: int, seed: int) -> None:
    base = (woven_fabric if seed % 2 else ceramic_tiles)((96, 96), rng(100 + seed), channels=channels)
    if channels == 1:
        base = base[None]  # (1, H, W): the documented (C, H, W) form
    before = base.copy()
    image, mask = DEFECTS[name](base, rng(seed))
    assert np.array_equal(base, before), "input must not be modified"
    assert image.shape == base.shape and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert mask.shape == (96, 96) and mask.dtype == bool and mask.any()
    change = _changed(base, image)
    assert (change[~mask] == 0).all(), "pixels outside the mask changed"
    assert (change[mask] >= MIN_DELTA).all(), "masked pixels changed too little"


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_accepts_2d_and_extreme_images(name: str) -> None:
    for fill in (0.0, 1.0):  # all-black/all-white: clipping must not hide the change
        base = np.full((64, 64), fill, dtype=np.float32)
        image, mask = DEFECTS[name](base, rng(1))
        assert image.shape == (64, 64)
        change = _changed(base, image)
        assert mask.any() and (change[mask] >= MIN_DELTA).all() and (change[~mask] == 0).all()


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_on_tiny_image_has_mask(name: str) -> None:
    image, mask = DEFECTS[name](brushed_metal((24, 24), rng(0), channels=3), rng(5))
    assert mask.any()


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_is_seeded(name: str) -> None:
    base = ceramic_tiles((64, 64), rng(0), channels=3)
    a, ma = DEFECTS[name](base, rng(9))
    b, mb = DEFECTS[name](base, rng(9))
    c, mc = DEFECTS[name](base, rng(10))
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(ma, mc)


def test_defects_are_local() -> None:
    """Defects are small: a subtle, not trivially detectable, share of the image."""
    for name, func in DEFECTS.items():
        fractions = [func(woven_fabric((128, 128), rng(s)), rng(s))[1].mean() for s in range(5)]
        assert 0.0 < np.mean(fractions) < 0.08, name
