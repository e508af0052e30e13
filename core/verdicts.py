"""Verdicts of images from their scores: good, defective, or for a person to review (a band around the image
threshold)."""

from __future__ import annotations

import numpy as np

GOOD, DEFECTIVE, REVIEW = "good", "defective", "review"


def verdicts(scores: np.ndarray, threshold: float, review: tuple[float, float] | None = None) -> np.ndarray:
    """Array of "good" / "defective" / "review" per score: defective iff score >= threshold; with a review
    band (low, high) scores in [low, high) need a person, below low are good, at or above high defective."""
    scores = np.asarray(scores, dtype=np.float64)
    if review is None:
        return np.where(scores >= threshold, DEFECTIVE, GOOD)
    low, high = sorted(review)
    out = np.where(scores >= high, DEFECTIVE, GOOD).astype(object)
    out[(scores >= low) & (scores < high)] = REVIEW
    return out.astype(str)


def verdict_counts(scores: np.ndarray, threshold: float, review: tuple[float, float] | None = None
                   ) -> dict[str, int]:
    """How many scores get each verdict (the same rules as `verdicts`), without building the array."""
    scores = np.asarray(scores, dtype=np.float64)
    if review is None:
        defective = int(np.count_nonzero(scores >= threshold))
        return {GOOD: scores.size - defective, DEFECTIVE: defective, REVIEW: 0}
    low, high = sorted(review)
    defective = int(np.count_nonzero(scores >= high))
    review_n = int(np.count_nonzero((scores >= low) & (scores < high)))
    return {GOOD: scores.size - defective - review_n, DEFECTIVE: defective, REVIEW: review_n}
