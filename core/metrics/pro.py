"""Per-Region-Overlap (PRO) curve and its normalised area AUPRO.

Pixel AUROC is dominated by large defects (they own most defective pixels). PRO instead gives
every connected ground-truth region the same weight: at a threshold ``t``

    PRO(t) = mean over all regions R of  |{p in R : map[p] >= t}| / |R|
    FPR(t) = |{p normal : map[p] >= t}| / |normal pixels|

where regions are the 8-connected components of every ground-truth mask, and "normal pixels" are
all pixels with mask == 0 across all images, defect-free images included. AUPRO is the area under
PRO as a function of FPR on [0, fpr_limit], divided by fpr_limit so that a perfect map scores 1.

Computed exactly, without a threshold grid: one descending sort of all pixels; a region pixel
carries weight ``1 / (region_size * n_regions)`` towards PRO and a normal pixel ``1 / n_normal``
towards FPR; cumulative sums read at the last index of each tie group give the curve at every
distinct score.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ._sorting import cumulative_count_at, sort_with_payload

__all__ = ["aupro", "pro_curve"]

ImageStack = np.ndarray | Sequence[np.ndarray]


def _as_image_list(images: ImageStack, what: str) -> list[np.ndarray]:
    """Turn an (N, H, W) array or a sequence of (H, W) arrays into a list of (H, W) arrays."""
    if isinstance(images, np.ndarray):
        if images.ndim != 3:
            raise ValueError(
                f"{what} as one array must have shape (N, H, W), got {images.shape}; "
                "pass a list of (H, W) arrays for images of different sizes"
            )
        return list(images)
    out = [np.asarray(im) for im in images]
    for i, im in enumerate(out):
        if im.ndim != 2:
            raise ValueError(f"{what}[{i}] must be a 2-D (H, W) array, got shape {im.shape}")
    return out


def _region_ids(masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Label the 8-connected defect regions of every mask with one global numbering.

    Args:
        masks: list of (H_i, W_i) arrays; any nonzero value is defect.

    Returns:
        ``(ids, sizes)``: ``ids`` shape (sum H_i*W_i,) uint32 over the concatenated ravelled
        pixels, 0 for a normal pixel and 1..R for the region it belongs to (unsigned so it can
        ride along the sort as a payload); ``sizes`` shape (R,) pixels per region, ``sizes[r-1]``
        for id r.
    """
    ids_parts: list[np.ndarray] = []
    size_parts: list[np.ndarray] = []
    offset = 0
    for mask in masks:
        binary = (mask != 0).astype(np.uint8)
        n_labels, lab = cv2.connectedComponents(binary, connectivity=8, ltype=cv2.CV_32S)
        lab = lab.ravel()
        # cv2 labels background 0 and regions 1..n-1; shift regions to the global numbering.
        ids_parts.append(np.where(lab > 0, lab + offset, 0).astype(np.uint32))
        size_parts.append(np.bincount(lab, minlength=n_labels)[1:])
        offset += n_labels - 1
    return np.concatenate(ids_parts), np.concatenate(size_parts)


def _pro_points(masks: ImageStack, maps: ImageStack) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) at every distinct map value, starting from (0, 0).

    Returns:
        ``(fpr, pro)``, each shape (K+1,) float64 for K distinct map values; both non-decreasing,
        ending at (1, 1) up to floating-point rounding of the PRO weights.
    """
    mask_list = _as_image_list(masks, "masks")
    map_list = _as_image_list(maps, "maps")
    if len(mask_list) != len(map_list):
        raise ValueError(f"got {len(mask_list)} masks but {len(map_list)} maps; need one per image")
    if not mask_list:
        raise ValueError("no images given; need at least one (mask, map) pair")
    for i, (m, a) in enumerate(zip(mask_list, map_list)):
        if m.shape != a.shape:
            raise ValueError(f"image {i}: mask shape {m.shape} differs from map shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise ValueError(f"maps[{i}] must hold real numbers, got dtype {a.dtype}")

    ids, sizes = _region_ids(mask_list)
    n_regions = sizes.size
    n_normal = int(np.count_nonzero(ids == 0))
    if n_regions == 0:
        raise ValueError(
            "PRO is undefined: the ground-truth masks contain no defect region; "
            "include test images with annotated defects"
        )
    if n_normal == 0:
        raise ValueError(
            "PRO is undefined: every pixel is marked defective, so there are no normal pixels "
            "to measure false positives on"
        )

    # np.concatenate keeps float32 if every map is float32, which halves memory on big sets.
    scores = np.concatenate([a.ravel() for a in map_list])
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        raise ValueError("maps contain NaN values; NaN cannot be ranked, fix the scoring step")

    sorted_ids, ends, _ = sort_with_payload(scores, ids, max(1, int(n_regions).bit_length()))
    del scores, ids

    # Weight table indexed by region id; entry 0 (normal pixels) adds nothing to PRO.
    table = np.concatenate(([0.0], 1.0 / (sizes.astype(np.float64) * n_regions)))
    pro_w = table[sorted_ids]
    np.cumsum(pro_w, out=pro_w)  # in place: no second pixel-sized float64 buffer
    pro = pro_w[ends]
    del pro_w
    # Integer counting keeps FPR exact (fractions with denominator n_normal).
    fpr = cumulative_count_at(sorted_ids == 0, ends) / n_normal

    fpr = np.concatenate(([0.0], fpr))
    pro = np.concatenate(([0.0], np.minimum(pro, 1.0)))  # clip rounding just above 1
    return fpr, pro


def pro_curve(masks: ImageStack, maps: ImageStack) -> tuple[np.ndarray, np.ndarray]:
    """Full Per-Region-Overlap curve.

    Args:
        masks: (N, H, W) array or list of N (H_i, W_i) arrays; nonzero = defect.
        maps: same layout and shapes as ``masks``; real anomaly scores, higher = more anomalous.

    Returns:
        ``(fpr, pro)``, each shape (K+1,) float64 for K distinct map values: the point (0, 0)
        followed by one point per distinct map value from the highest to the lowest threshold.

    Raises:
        ValueError: mismatched inputs, no defect region, no normal pixel, or NaN scores.
    """
    return _pro_points(masks, maps)


def _normalised_area(fpr: np.ndarray, pro: np.ndarray, fpr_limit: float) -> float:
    """Trapezoid area under ``pro(fpr)`` on [0, fpr_limit], divided by fpr_limit.

    Args:
        fpr, pro: shape (K,), fpr non-decreasing starting at 0 and reaching at least fpr_limit.
    """
    j = int(np.searchsorted(fpr, fpr_limit, side="right"))  # first point beyond the limit
    x, y = fpr[:j], pro[:j]
    if j < fpr.size and x[-1] < fpr_limit:
        # The curve is piecewise linear between measured points, so the value at exactly
        # fpr_limit is the linear interpolation on the segment that crosses it.
        t = (fpr_limit - fpr[j - 1]) / (fpr[j] - fpr[j - 1])
        x = np.append(x, fpr_limit)
        y = np.append(y, pro[j - 1] + t * (pro[j] - pro[j - 1]))
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2.0)
    return area / fpr_limit


def aupro(masks: ImageStack, maps: ImageStack, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to a false positive rate limit.

    Args:
        masks: (N, H, W) array or list of N (H_i, W_i) arrays; nonzero = defect. Defect-free
            images (all-zero masks) belong here too: their pixels count as normal for the FPR.
        maps: same layout and shapes as ``masks``; real anomaly scores.
        fpr_limit: upper end of the integration range, in (0, 1]; 0.3 is the MVTec AD convention.

    Returns:
        Area under PRO(FPR) on [0, fpr_limit] (trapezoid rule, the curve interpolated linearly at
        exactly fpr_limit) divided by fpr_limit; 1.0 for a perfect map.

    Raises:
        ValueError: bad fpr_limit, mismatched inputs, no defect region, or no normal pixel.
    """
    fpr_limit = float(fpr_limit)
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    fpr, pro = _pro_points(masks, maps)
    return _normalised_area(fpr, pro, fpr_limit)
