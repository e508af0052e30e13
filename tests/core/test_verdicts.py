"""Tests for core.verdicts: verdicts and their counts with and without a review band."""

from __future__ import annotations

import numpy as np

from core.verdicts import verdict_counts, verdicts


def test_verdicts_and_counts_with_and_without_review_band() -> None:
    scores = np.array([0.1, 0.4, 0.5, 0.6, 0.9])
    assert verdicts(scores, 0.5).tolist() == ["good", "good", "defective", "defective", "defective"]
    assert verdict_counts(scores, 0.5) == {"good": 2, "defective": 3, "review": 0}
    # band [0.4, 0.6): 0.4 and 0.5 go to a person, 0.6 is defective (>= high)
    assert verdicts(scores, 0.5, (0.6, 0.4)).tolist() == ["good", "review", "review", "defective", "defective"]
    assert verdict_counts(scores, 0.5, (0.4, 0.6)) == {"good": 1, "defective": 2, "review": 2}
