"""Tests for core.synth: Perlin noise/masks, procedural textures, synthetic defects."""

from __future__ import annotations

import numpy as np
import pytest

from core.synth import (
    DEFECTS,
    MIN_DELTA,
    brushed_metal,
    ceramic_tiles,
    fractal_noise,
    perlin_mask,
    perlin_noise,
    random_texture,
    woven_fabric,
)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- noise -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,res", [((64, 64), (4, 4)), ((100, 70), (3, 4)), ((37, 53), (37, 1))])
def test_perlin_noise_shape_range_dtype(shape: tuple[int, int], res: tuple[int, int]) -> None:
    noise = perlin_noise(shape, res, rng(0))
    assert noise.shape == shape and noise.dtype == np.float32
    assert np.isfinite(noise).all()
    assert -1.01 <= noise.min() and noise.max() <= 1.01
    assert noise.std() > 0.05  # actually noisy, not flat


def test_perlin_noise_is_seeded() -> None:
    a = perlin_noise((48, 48), (4, 4), rng(1))
    assert np.array_equal(a, perlin_noise((48, 48), (4, 4), rng(1)))
    assert not np.array_equal(a, perlin_noise((48, 48), (4, 4), rng(2)))


def test_fractal_noise() -> None:
    a = fractal_noise((64, 80), (2, 3), rng(0), octaves=4)
    assert a.shape == (64, 80) and a.dtype == np.float32
    assert -1.01 <= a.min() and a.max() <= 1.01
    assert np.array_equal(a, fractal_noise((64, 80), (2, 3), rng(0), octaves=4))


def test_perlin_mask_never_empty() -> None:
    for seed in range(30):
        mask = perlin_mask((64, 64), rng(seed))
        assert mask.dtype == bool and mask.shape == (64, 64) and mask.any()
    # A threshold above the noise range forces the fallback path.
    assert perlin_mask((32, 48), rng(0), threshold=5.0).any()


def test_perlin_mask_is_seeded() -> None:
    a = perlin_mask((64, 64), rng(3), rotate=True)
    assert np.array_equal(a, perlin_mask((64, 64), rng(3), rotate=True))
    assert not np.array_equal(a, perlin_mask((64, 64), rng(4), rotate=True))


# --- textures ----------------------------------------------------------------------------

TEXTURE_FUNCS = [woven_fabric, brushed_metal, ceramic_tiles, random_texture]


@pytest.mark.parametrize("func", TEXTURE_FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("channels", [1, 3])
def test_texture_shape_range_dtype(func, channels: int) -> None:
    image = func((48, 64), rng(0), channels=channels)
    expected = (48, 64) if channels == 1 else (3, 48, 64)
    assert image.shape == expected and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert image.std() > 0.01


@pytest.mark.parametrize("func", TEXTURE_FUNCS, ids=lambda f: f.__name__)
def test_texture_is_seeded_and_varies(func) -> None:
    a = func((64, 64), rng(7), channels=3)
    assert np.array_equal(a, func((64, 64), rng(7), channels=3))
    assert not np.array_equal(a, func((64, 64), rng(8), channels=3))


@pytest.mark.parametrize("func", [woven_fabric, brushed_metal, ceramic_tiles], ids=lambda f: f.__name__)
def test_normal_samples_look_alike(func) -> None:
    """Natural variation, but the same material: global brightness stays close."""
    means = [func((64, 64), rng(s), channels=3).mean() for s in range(5)]
    assert max(means) - min(means) < 0.1


def test_texture_rejects_bad_channels() -> None:
    with pytest.raises(ValueError):
        woven_fabric((16, 16), rng(0), channels=2)


# --- defects -----------------------------------------------------------------------------


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
