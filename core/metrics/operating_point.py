"""What an operating point costs on good parts, and the F1 that needs no model at all.

Pure functions on NumPy arrays; the benchmark puts them beside every label-free threshold and every
F1-max column.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def false_reject_rate(good_scores: np.ndarray, threshold: float) -> float:
    """Share of good parts rejected at `threshold` (defective iff score >= threshold).

    Args:
        good_scores: shape (N,), one score per good image (its pooled image score, or the max of its
            map for a pixel threshold: a part is rejected when any pixel is flagged).
        threshold: the operating point.

    Returns:
        A rate in [0, 1]; NaN when there is no good image.
    """
    scores = np.asarray(good_scores, dtype=np.float64)
    if scores.size == 0:
        return float("nan")
    return float(np.mean(scores >= threshold))


def flag_everything_f1(positives: int, total: int) -> float:
    """F1 of flagging every item as defective: precision p = positives / total, recall 1, F1 = 2p / (1 + p).

    An F1-max at or near this value says the scores separate nothing at that operating point."""
    if total <= 0 or positives <= 0:
        return 0.0
    p = positives / total
    return 2 * p / (1 + p)


def image_flag_everything_f1(labels: Sequence[str], good_label: str = "good") -> float:
    """`flag_everything_f1` over images: N labels, `good_label` for normal images."""
    return flag_everything_f1(sum(label != good_label for label in labels), len(labels))


def pixel_flag_everything_f1(masks: Sequence[np.ndarray]) -> float:
    """`flag_everything_f1` over pixels of (H,W) boolean masks (good images contribute all-False masks)."""
    return flag_everything_f1(int(sum(int(m.sum()) for m in masks)), int(sum(m.size for m in masks)))
