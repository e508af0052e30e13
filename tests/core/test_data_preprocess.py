"""Tests for core.data.preprocess: resize policy, tile grid, extract/stitch, back to full size."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.preprocess import (
    ResizePolicy,
    extract_tiles,
    stitch,
    tile_grid,
    to_full_resolution,
    working_image,
)

RNG = np.random.default_rng(0)


def test_policy_round_trip_and_validation() -> None:
    policy = ResizePolicy(mode="tile", size=64, scale=0.5, overlap=0.5)
    assert ResizePolicy.from_dict(policy.to_dict()) == policy
    assert ResizePolicy.from_dict({}) == ResizePolicy()
    with pytest.raises(ValueError, match="Unknown ResizePolicy keys"):
        ResizePolicy.from_dict({"sise": 3})
    for bad in ({"mode": "crop"}, {"size": 0}, {"scale": 0.0}, {"overlap": 1.0}):
        with pytest.raises(ValueError, match="ResizePolicy"):
            ResizePolicy(**bad)  # type: ignore[arg-type]


def test_working_image_resize_mode() -> None:
    image = RNG.random((3, 50, 70)).astype(np.float32)
    out = working_image(image, ResizePolicy(size=32))
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    gray = working_image(image[:1], ResizePolicy(size=32))
    assert gray.shape == (1, 32, 32)
    np.testing.assert_allclose(gray[0], out[0], atol=1e-6)


def test_working_image_tile_mode_scale_and_pad() -> None:
    image = RNG.random((1, 40, 100)).astype(np.float32)
    scaled = working_image(image, ResizePolicy(mode="tile", size=16, scale=0.5))
    assert scaled.shape == (1, 20, 50)
    padded = working_image(image, ResizePolicy(mode="tile", size=64, scale=0.5))
    assert padded.shape == (1, 64, 64)
    np.testing.assert_array_equal(padded[:, :20, :50], scaled)
    np.testing.assert_array_equal(padded[:, 20, :50], scaled[:, 18, :])  # reflection, not zeros
    tiny = working_image(np.ones((1, 1, 3), np.float32), ResizePolicy(mode="tile", size=8))
    assert tiny.shape == (1, 8, 8) and (tiny == 1).all()


@pytest.mark.parametrize(
    ("h", "w", "size", "overlap"), [(37, 53, 16, 0.25), (16, 16, 16, 0.5), (100, 20, 20, 0.0)]
)
def test_tile_grid_covers_every_pixel(h: int, w: int, size: int, overlap: float) -> None:
    corners = tile_grid(h, w, size, overlap)
    covered = np.zeros((h, w), int)
    for y, x in corners:
        assert 0 <= y <= h - size and 0 <= x <= w - size
        covered[y : y + size, x : x + size] += 1
    assert covered.min() >= 1
    assert max(y for y, _ in corners) == h - size and max(x for _, x in corners) == w - size


def test_tile_grid_stride() -> None:
    assert tile_grid(40, 16, 16, 0.25) == [(0, 0), (12, 0), (24, 0)]
    assert tile_grid(41, 16, 16, 0.25) == [(0, 0), (12, 0), (24, 0), (25, 0)]
    with pytest.raises(ValueError, match="smaller than the tile size"):
        tile_grid(10, 40, 16, 0.25)


def test_stitch_of_extracted_tiles_is_exact() -> None:
    image = RNG.random((1, 45, 61)).astype(np.float32)
    corners = tile_grid(45, 61, 16, 0.5)
    tiles = extract_tiles(image, corners, 16)
    assert tiles.shape == (len(corners), 1, 16, 16)
    out = stitch(tiles, corners, 45, 61)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image)


def test_stitch_averages_and_checks_coverage() -> None:
    corners = [(0, 0), (0, 2)]
    maps = np.stack([np.zeros((1, 4, 4)), np.ones((1, 4, 4))]).astype(np.float32)
    out = stitch(maps, corners, 4, 6)
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0.5, 0.5, 1, 1])
    with pytest.raises(ValueError, match="uncovered"):
        stitch(maps[:1], corners[:1], 4, 6)


def test_to_full_resolution_resize_mode() -> None:
    policy = ResizePolicy(size=32)
    full = to_full_resolution(np.full((1, 32, 32), 0.3, np.float32), policy, (50, 70))
    assert full.shape == (1, 50, 70)
    np.testing.assert_allclose(full, 0.3, atol=1e-6)


def test_tile_pipeline_round_trip() -> None:
    """working image -> tiles -> stitch -> full resolution gives back the image (scale 1, padding)."""
    image = RNG.random((1, 30, 90)).astype(np.float32)
    policy = ResizePolicy(mode="tile", size=40, scale=1.0, overlap=0.25)
    work = working_image(image, policy)
    assert work.shape == (1, 40, 90)
    corners = tile_grid(work.shape[1], work.shape[2], policy.size, policy.overlap)
    stitched = stitch(extract_tiles(work, corners, policy.size), corners, *work.shape[1:])
    np.testing.assert_array_equal(to_full_resolution(stitched, policy, (30, 90)), image)
    halved = ResizePolicy(mode="tile", size=16, scale=0.5)
    small = working_image(image, halved)
    assert to_full_resolution(small, halved, (30, 90)).shape == (1, 30, 90)
