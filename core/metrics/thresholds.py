"""Decision thresholds and where they came from.

Two sources, per the design: F1-max when labelled defects exist (see :func:`curves.f1_max`), and a
label-free calibration otherwise: a high quantile of scores on held-out *normal* images, chosen so
that about a target fraction of normal parts would be falsely rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Threshold", "normal_quantile_threshold", "label_free_threshold", "false_reject_rate",
           "flag_everything_f1", "degenerate_reason", "DEGENERATE_F1_MARGIN"]

# An F1-max calibration whose F1 is within this of the flag-everything F1 is no operating point.
DEGENERATE_F1_MARGIN = 0.005


def _check_rate(rate: float) -> float:
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"target_false_reject_rate must be a number, got {rate!r}") from None
    if not 0.0 < value < 1.0:  # also rejects NaN
        raise ValueError(
            f"target_false_reject_rate must be strictly between 0 and 1 (e.g. 0.01 for 1%), "
            f"got {rate!r}"
        )
    return value


def _check_normal_scores(normal_scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError(
            "normal_scores is empty; need scores of at least one held-out normal image "
            "(tens are recommended for a 1% target)"
        )
    if not np.isfinite(scores).all():
        raise ValueError(
            f"normal_scores contain {int((~np.isfinite(scores)).sum())} NaN/inf value(s); "
            "fix the scoring step"
        )
    return scores


def normal_quantile_threshold(normal_scores: np.ndarray, target_false_reject_rate: float) -> float:
    """Label-free threshold: the (1 - rate) quantile of held-out normal image scores.

    Uses ``np.quantile(..., method="higher")``, i.e. always an observed score, never an
    interpolated one, and the higher of the two neighbours. With n distinct scores
    ``1 + floor(rate * (n - 1))`` of them satisfy ``score >= threshold`` (up to float rounding of
    ``(1 - rate) * (n - 1)`` when it is a whole number), so the empirical
    false-reject rate on the held-out set is the target rounded up to the sample's granularity
    (at least 1/n; ties at the threshold add to it). The threshold therefore never exceeds the
    largest normal score: with few images there is no evidence for anything higher. Example:
    76 images, rate 0.01 -> the maximum score, rejecting 1/76 = 1.3% of the held-out normals.

    Args:
        normal_scores: shape (n,) (any shape is ravelled), anomaly scores of normal images that
            were not used for training.
        target_false_reject_rate: fraction of normal parts that may be flagged, in (0, 1).

    Returns:
        The threshold; predict defective when ``score >= threshold``.

    Raises:
        ValueError: empty or non-finite scores, or a rate outside (0, 1).
    """
    rate = _check_rate(target_false_reject_rate)
    scores = _check_normal_scores(normal_scores)
    return float(np.quantile(scores, 1.0 - rate, method="higher"))


def _ordinal(number: float) -> str:
    """'99th', '1st', '92nd', '99.5th' for a percentile number."""
    text = f"{number:g}"
    if "." in text or "e" in text:
        return f"{text}th"
    n = int(text)
    if n % 100 in (11, 12, 13):
        return f"{text}th"
    return text + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


@dataclass(frozen=True)
class Threshold:
    """A decision threshold on anomaly scores plus a human-readable account of its origin.

    Attributes:
        value: predict defective when ``score >= value``.
        how: e.g. ``"F1-max on labelled data"`` or ``"label-free: 99th percentile of 76
            held-out normal images (target false-reject rate 1%)"``; shown to users and saved
            with results so a number is never separated from its provenance.
    """

    value: float
    how: str

    def __post_init__(self) -> None:
        # Normalise numpy scalars to float so equality, hashing and JSON behave predictably.
        try:
            value = float(self.value)
        except (TypeError, ValueError):
            raise ValueError(f"Threshold.value must be a number, got {self.value!r}") from None
        if math.isnan(value):
            raise ValueError("Threshold.value is NaN; a threshold must be a real number")
        if not isinstance(self.how, str) or not self.how.strip():
            raise ValueError(f"Threshold.how must be a non-empty description, got {self.how!r}")
        object.__setattr__(self, "value", value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"value": float, "how": str}``."""
        return {"value": self.value, "how": self.how}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Threshold:
        """Inverse of :meth:`to_dict`; raises ValueError naming a missing key."""
        missing = [k for k in ("value", "how") if k not in data]
        if missing:
            raise ValueError(
                f"threshold dict is missing key(s) {missing}; got keys {sorted(data)}"
            )
        return cls(value=data["value"], how=data["how"])


def label_free_threshold(
    normal_scores: np.ndarray, target_false_reject_rate: float
) -> Threshold:
    """:func:`normal_quantile_threshold` wrapped with its provenance string.

    Args:
        normal_scores: shape (n,), scores of held-out normal images.
        target_false_reject_rate: in (0, 1).

    Returns:
        ``Threshold`` whose ``how`` reads like "label-free: 99th percentile of 76 held-out
        normal images (target false-reject rate 1%)".
    """
    rate = _check_rate(target_false_reject_rate)
    scores = _check_normal_scores(normal_scores)
    value = normal_quantile_threshold(scores, rate)
    # Rounding to 6 significant digits hides binary noise such as 99.00000000000001.
    percentile = _ordinal(float(f"{(1.0 - rate) * 100:.6g}"))
    noun = "image" if scores.size == 1 else "images"
    how = (
        f"label-free: {percentile} percentile of {scores.size} held-out normal {noun} "
        f"(target false-reject rate {rate * 100:.6g}%)"
    )
    return Threshold(value=value, how=how)


def false_reject_rate(normal_scores: np.ndarray, threshold: float) -> float:
    """Share of normal scores (any shape, ravelled) at or above `threshold`: the good parts it rejects.

    Example: scores [0.1, 0.2, 0.3, 0.4], threshold 0.3 -> 2 of 4 flagged -> 0.5.
    """
    scores = _check_normal_scores(normal_scores)
    return float(np.count_nonzero(scores >= float(threshold))) / scores.size


def flag_everything_f1(defect_share: float) -> float:
    """F1 of flagging every item when a share p of them is defective: precision p, recall 1, so
    F1 = 2p / (1 + p). Example: p = 0.5 -> 2/3."""
    p = float(defect_share)
    if not 0.0 < p <= 1.0:
        raise ValueError(f"defect share must be in (0, 1], got {defect_share!r}")
    return 2.0 * p / (1.0 + p)


def degenerate_reason(f1: float, threshold: float, scores: np.ndarray, labels: np.ndarray,
                      margin: float = DEGENERATE_F1_MARGIN) -> str | None:
    """Why an F1-max threshold found on a (synthetic) labelled split is no operating point, or None.

    Degenerate when its F1 is no better than flagging everything (F1 <= 2p/(1+p) + margin, p = share of
    defective items in the split) or when the threshold is at or below the lowest score (it flags all).

    Args:
        f1: the F1 the threshold reached on the split.
        threshold: the F1-max threshold (defective iff score >= threshold).
        scores: shape (n,) scores of the split (any shape is ravelled).
        labels: matching booleans, True = defective.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.size == 0 or scores.size != labels.size:
        raise ValueError(f"need matching, non-empty scores and labels, got {scores.size} and {labels.size}")
    p = float(labels.mean())
    if p == 0.0:
        return "the split has no defective item, so F1 says nothing"
    everything = flag_everything_f1(p)
    if float(threshold) <= float(scores.min()):
        return (f"the threshold is at or below the lowest score of the split, so it flags every part "
                f"(F1 {f1:.3f} = flag-everything {everything:.3f} at {p:.0%} defective)")
    if f1 <= everything + margin:
        return (f"its F1 {f1:.3f} is no better than flagging every part ({everything:.3f} at {p:.0%} "
                "defective): the scores do not separate the synthetic defects from good parts")
    return None
