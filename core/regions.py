"""Defect regions: connected areas of an anomaly map at or above a pixel threshold.

A region is what a quality engineer talks about ("a 0.4 % scratch near the top left"): its size, where it
is, and how strongly the model flagged it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

DEFAULT_MIN_AREA = 16  # pixels; a 4x4 patch. Smaller blobs are mostly speckle of the map, not defects.


@dataclass(frozen=True)
class Region:
    """One connected defect region, in pixel coordinates of the map (x = column, y = row)."""

    area: int  # pixels
    area_percent: float  # of the whole image
    bbox: tuple[int, int, int, int]  # x, y, width, height
    centroid: tuple[float, float]  # x, y
    max_score: float
    mean_score: float

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["bbox"] = list(self.bbox)
        values["centroid"] = [round(c, 2) for c in self.centroid]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Region:
        return cls(int(values["area"]), float(values["area_percent"]), tuple(int(v) for v in values["bbox"]),
                   tuple(float(v) for v in values["centroid"]), float(values["max_score"]),
                   float(values["mean_score"]))


def find_regions(anomaly_map: np.ndarray, threshold: float, min_area: int = DEFAULT_MIN_AREA,
                 connectivity: int = 8) -> list[Region]:
    """Connected regions of `anomaly_map >= threshold` with at least `min_area` pixels, most anomalous first.

    Args:
        anomaly_map: (H,W) float map, higher = more anomalous.
        threshold: pixel threshold; pixels at or above it are defective.
        min_area: regions with fewer pixels are dropped (0 or 1 keeps all).
        connectivity: 8 (diagonal neighbours join a region) or 4.

    Returns:
        Regions sorted by max score, then area, descending.
    """
    values = np.asarray(anomaly_map, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"find_regions needs an (H,W) map, got shape {values.shape}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    # NaN compares False, so NaN pixels are never defective.
    mask = (values >= threshold).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=connectivity)
    if count <= 1:
        return []
    inside = labels > 0
    ids = labels[inside]
    scores = values[inside]
    sums = np.bincount(ids, weights=scores, minlength=count)
    maxima = np.full(count, -np.inf)
    np.maximum.at(maxima, ids, scores)
    total = values.size
    regions = []
    for k in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < min_area:
            continue
        regions.append(Region(area, 100.0 * area / total, (x, y, w, h),
                              (float(centroids[k][0]), float(centroids[k][1])),
                              float(maxima[k]), float(sums[k] / area)))
    regions.sort(key=lambda r: (r.max_score, r.area), reverse=True)
    return regions
