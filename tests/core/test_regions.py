"""Defect regions on hand-made maps, with areas, boxes, centroids and scores computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.regions import Region, find_regions


def _map() -> np.ndarray:
    """10x20 map: a 2x3 block of 0.8 (one pixel 0.9), a single pixel 0.6, a diagonal pair 0.7."""
    m = np.zeros((10, 20), np.float32)
    m[1:3, 2:5] = 0.8  # rows 1-2, cols 2-4: 6 px
    m[2, 4] = 0.9
    m[7, 15] = 0.6  # 1 px
    m[5, 10] = m[6, 11] = 0.7  # diagonal neighbours: one region with 8-connectivity, two with 4
    return m


def test_regions_by_hand():
    regions = find_regions(_map(), 0.5, min_area=1)
    assert [r.area for r in regions] == [6, 2, 1]  # sorted by max score: 0.9, 0.7, 0.6
    block = regions[0]
    assert block.bbox == (2, 1, 3, 2)
    assert block.centroid == pytest.approx((3.0, 1.5))
    assert block.max_score == pytest.approx(0.9)
    assert block.mean_score == pytest.approx((5 * 0.8 + 0.9) / 6)
    assert block.area_percent == pytest.approx(100 * 6 / 200)
    assert regions[1].bbox == (10, 5, 2, 2) and regions[1].centroid == pytest.approx((10.5, 5.5))
    assert regions[2].bbox == (15, 7, 1, 1) and regions[2].mean_score == pytest.approx(0.6)


def test_min_area_connectivity_and_threshold():
    m = _map()
    assert [r.area for r in find_regions(m, 0.5, min_area=2)] == [6, 2]
    assert [r.area for r in find_regions(m, 0.5, min_area=1, connectivity=4)] == [6, 1, 1, 1]
    assert [r.area for r in find_regions(m, 0.8, min_area=1)] == [6]  # threshold is inclusive
    assert find_regions(m, 0.95) == []
    assert find_regions(np.full((4, 4), np.nan, np.float32), 0.1) == []  # NaN is never defective


def test_whole_image_region_and_round_trip():
    regions = find_regions(np.ones((4, 5), np.float32), 0.5, min_area=1)
    assert len(regions) == 1 and regions[0].area_percent == pytest.approx(100.0)
    assert regions[0].bbox == (0, 0, 5, 4)
    assert Region.from_dict(regions[0].to_dict()) == regions[0]


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match=r"\(H,W\) map"):
        find_regions(np.zeros((1, 4, 4)), 0.5)
    with pytest.raises(ValueError, match="connectivity"):
        find_regions(np.zeros((4, 4)), 0.5, connectivity=6)
