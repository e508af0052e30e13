"""Evaluation summaries built from the primitives: image-level, per defect type, pixel-level.

Image labels are defect-type names as found in the dataset folders (MVTec style): the
``good_label`` name marks a normal image, any other name a defective one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .curves import _auroc_from_counts, _check_pair, _counts, _f1_max_from_counts, f1_at
from .pro import ImageStack, _as_image_list, aupro
from .thresholds import Threshold

__all__ = [
    "ImageMetrics",
    "image_metrics",
    "per_type_image_auroc",
    "pixel_metrics",
    "metrics_at_threshold",
    "pixel_metrics_at_threshold",
]


def _defect_flags(labels: Sequence[str], scores: np.ndarray, good_label: str) -> np.ndarray:
    """Validate string labels against scores; return shape (N,) bool, True = defective."""
    if isinstance(labels, str):
        raise ValueError("labels must be a list of names, one per image, not a single string")
    names = list(labels)
    scores = np.asarray(scores)
    if scores.ndim != 1 or scores.size != len(names):
        raise ValueError(
            f"need one score per label: got {len(names)} labels and scores of shape "
            f"{scores.shape}"
        )
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ValueError(f"labels must be strings (defect-type names), found {bad[0]!r}")
    return np.array([n != good_label for n in names], dtype=bool)


def per_type_image_auroc(
    labels: Sequence[str], scores: np.ndarray, good_label: str = "good"
) -> dict[str, float]:
    """Image AUROC of each defect type against all good images.

    Args:
        labels: N defect-type names, ``good_label`` for normal images.
        scores: shape (N,), image anomaly scores.
        good_label: the name that marks normal images.

    Returns:
        ``{type_name: auroc}`` for every defect type present, keys sorted; empty when there are
        only good images.

    Raises:
        ValueError: length mismatch, or defect types present but no good image to compare with.
    """
    defective = _defect_flags(labels, scores, good_label)
    defective, scores = _check_pair(defective, np.asarray(scores))
    names = np.asarray(list(labels), dtype=object)
    good = ~defective
    if defective.any() and not good.any():
        raise ValueError(
            f"per-type AUROC needs normal images labelled {good_label!r}; none among "
            f"{len(names)} labels"
        )
    result: dict[str, float] = {}
    for name in sorted(set(names[defective])):
        subset = good | (names == name)
        result[name] = _auroc_from_counts(*_counts(defective[subset], scores[subset])[:2])
    return result


@dataclass(frozen=True)
class ImageMetrics:
    """Image-level results of one evaluation.

    Attributes:
        image_auroc: AUROC of good vs all defective images.
        f1_max: best image F1 over all thresholds.
        f1_max_threshold: the score threshold reaching it (defective iff score >= it).
        per_type: AUROC of each defect type vs the good images.
    """

    image_auroc: float
    f1_max: float
    f1_max_threshold: float
    per_type: Mapping[str, float]

    @classmethod
    def compute(
        cls, labels: Sequence[str], scores: np.ndarray, good_label: str = "good"
    ) -> ImageMetrics:
        """Compute all image metrics (see :func:`image_metrics` for arguments)."""
        defective = _defect_flags(labels, scores, good_label)
        flags, checked = _check_pair(defective, np.asarray(scores))
        tps, fps, thr = _counts(flags, checked)  # one sort serves AUROC and F1-max
        f1, f1_thr = _f1_max_from_counts(tps, fps, thr)
        return cls(
            image_auroc=_auroc_from_counts(tps, fps),
            f1_max=f1,
            f1_max_threshold=f1_thr,
            per_type=per_type_image_auroc(labels, checked, good_label),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with keys image_auroc, f1_max, f1_max_threshold, per_type."""
        return {
            "image_auroc": self.image_auroc,
            "f1_max": self.f1_max,
            "f1_max_threshold": self.f1_max_threshold,
            "per_type": dict(self.per_type),
        }


def image_metrics(
    labels: Sequence[str], scores: np.ndarray, good_label: str = "good"
) -> dict[str, Any]:
    """Image AUROC, F1-max with its threshold, and per-type AUROC.

    Args:
        labels: N defect-type names, ``good_label`` for normal images.
        scores: shape (N,), image anomaly scores.
        good_label: the name that marks normal images.

    Returns:
        ``{"image_auroc": float, "f1_max": float, "f1_max_threshold": float,
        "per_type": {type: float}}``.

    Raises:
        ValueError: length mismatch or only one class (good / defective) present.
    """
    return ImageMetrics.compute(labels, scores, good_label).to_dict()


def _pixel_arrays(
    masks: ImageStack, maps: ImageStack
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """Validate per-image masks/maps; also return all pixels ravelled.

    Returns:
        ``(mask_list, map_list_f32, labels, scores)``: the per-image lists (maps as float32) and
        the concatenation of all pixels, ``labels`` shape (P,) bool and ``scores`` (P,) float32.
    """
    mask_list = _as_image_list(masks, "masks")
    # float32 is what the scoring produces and halves the memory of a 50M-pixel set; asarray
    # does not copy maps that are float32 already.
    map_list = [np.asarray(a, dtype=np.float32) for a in _as_image_list(maps, "maps")]
    if len(mask_list) != len(map_list) or not mask_list:
        raise ValueError(
            f"need one map per mask and at least one image, got {len(mask_list)} masks and "
            f"{len(map_list)} maps"
        )
    for i, (m, a) in enumerate(zip(mask_list, map_list)):
        if m.shape != a.shape:
            raise ValueError(f"image {i}: mask shape {m.shape} differs from map shape {a.shape}")
    labels = np.concatenate([(m != 0).ravel() for m in mask_list])
    scores = np.concatenate([a.ravel() for a in map_list])
    return mask_list, map_list, labels, scores


def pixel_metrics(
    masks: ImageStack, maps: ImageStack, fpr_limit: float = 0.3
) -> dict[str, float]:
    """Pixel AUROC, AUPRO and pixel F1-max over all test images.

    Args:
        masks: list of N (H_i, W_i) ground-truth masks (nonzero = defect), or an (N, H, W) array;
            good images have all-zero masks and must be included.
        maps: matching anomaly maps, any real dtype (evaluated as float32).
        fpr_limit: AUPRO integration limit in (0, 1].

    Returns:
        ``{"pixel_auroc", "aupro", "pixel_f1_max", "pixel_f1_max_threshold"}``, all floats.

    Raises:
        ValueError: mismatched inputs, no defect pixel, or no normal pixel.
    """
    mask_list, map_list, labels, scores = _pixel_arrays(masks, maps)
    labels, scores = _check_pair(labels, scores)
    tps, fps, thr = _counts(labels, scores)  # one sort for both AUROC and F1-max
    del labels, scores
    f1, f1_thr = _f1_max_from_counts(tps, fps, thr)
    result = {
        "pixel_auroc": _auroc_from_counts(tps, fps),
        "aupro": 0.0,
        "pixel_f1_max": f1,
        "pixel_f1_max_threshold": f1_thr,
    }
    del tps, fps, thr
    result["aupro"] = aupro(mask_list, map_list, fpr_limit=fpr_limit)
    return result


def _with_threshold(counts: dict[str, Any], threshold: float | Threshold) -> dict[str, Any]:
    """Add false-reject rate and threshold provenance to an :func:`f1_at` result."""
    n_normal = counts["fp"] + counts["tn"]
    out = dict(counts)
    # Share of normal parts flagged: the number a label-free threshold was calibrated for.
    out["false_reject_rate"] = counts["fp"] / n_normal if n_normal else 0.0
    if isinstance(threshold, Threshold):
        out["threshold"] = threshold.value
        out["how"] = threshold.how
    else:
        out["threshold"] = float(threshold)
        out["how"] = ""
    return out


def metrics_at_threshold(
    labels: Sequence[str],
    scores: np.ndarray,
    threshold: float | Threshold,
    good_label: str = "good",
) -> dict[str, Any]:
    """Image precision/recall/F1 at a given (e.g. label-free) threshold.

    Args:
        labels: N defect-type names, ``good_label`` for normal images.
        scores: shape (N,), image anomaly scores.
        threshold: a number or :class:`Threshold`; defective iff ``score >= threshold``.
        good_label: the name that marks normal images.

    Returns:
        :func:`curves.f1_at` keys (precision, recall, f1, tp, fp, fn, tn) plus
        ``false_reject_rate`` (fp / normals), ``threshold`` (float) and ``how`` (provenance, ""
        for a bare number).
    """
    defective = _defect_flags(labels, scores, good_label)
    value = threshold.value if isinstance(threshold, Threshold) else threshold
    return _with_threshold(f1_at(defective, np.asarray(scores), value), threshold)


def pixel_metrics_at_threshold(
    masks: ImageStack, maps: ImageStack, threshold: float | Threshold
) -> dict[str, Any]:
    """Pixel precision/recall/F1 at a given threshold, over all pixels of all images.

    Args:
        masks: list of N (H_i, W_i) masks (nonzero = defect) or an (N, H, W) array.
        maps: matching anomaly maps (evaluated as float32).
        threshold: a number or :class:`Threshold`; defective iff ``map >= threshold``.

    Returns:
        Same keys as :func:`metrics_at_threshold`, counted in pixels.
    """
    _, _, labels, scores = _pixel_arrays(masks, maps)
    value = threshold.value if isinstance(threshold, Threshold) else threshold
    return _with_threshold(f1_at(labels, scores, value), threshold)
