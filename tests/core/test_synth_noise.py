"""Tests for core.synth.noise: Perlin noise, fractal noise and Perlin masks."""

from __future__ import annotations

import numpy as np
import pytest

from core.synth.noise import fractal_noise, perlin_mask, perlin_noise


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


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
