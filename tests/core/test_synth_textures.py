"""Tests for core.synth.textures: procedural textures."""

from __future__ import annotations

import numpy as np
import pytest

from core.synth.textures import brushed_metal, ceramic_tiles, random_texture, woven_fabric


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


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
