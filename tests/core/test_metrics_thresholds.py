"""Tests for core.metrics.thresholds and thresholded image metrics."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from core.metrics import (
    Threshold,
    label_free_threshold,
    metrics_at_threshold,
    normal_quantile_threshold,
)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        # scores 1..100, method 'higher': index ceil(0.99 * 99) = ceil(98.01) = 99 -> 100;
        # exactly 1 of 100 scores >= 100 -> 1 %.
        (0.01, 100.0),
        # ceil(0.95 * 99) = ceil(94.05) = 95 -> 96; scores 96..100 -> 5 of 100.
        (0.05, 96.0),
        # ceil(0.9 * 99) = ceil(89.1) = 90 -> 91; scores 91..100 -> 10 of 100.
        (0.10, 91.0),
    ],
)
def test_quantile_threshold_hand_computed(rate: float, expected: float) -> None:
    scores = np.arange(1, 101, dtype=float)
    t = normal_quantile_threshold(scores, rate)
    assert t == expected
    assert np.mean(scores >= t) == pytest.approx(rate)


def test_quantile_threshold_is_an_observed_score_and_order_free() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(76)
    # 76 images, 1 %: index ceil(0.99 * 75) = ceil(74.25) = 75 -> the maximum (1/76 rejected);
    # linear interpolation would give a value between the two largest scores instead.
    t = normal_quantile_threshold(scores, 0.01)
    assert t == scores.max()
    assert t in scores
    assert normal_quantile_threshold(rng.permutation(scores), 0.01) == t


@pytest.mark.parametrize("n", [7, 50, 333])
@pytest.mark.parametrize("rate", [0.01, 0.05, 0.2, 0.5])
def test_quantile_threshold_rejects_about_target_rate(n: int, rate: float) -> None:
    scores = np.random.default_rng(n).random(n)  # distinct with probability 1
    t = normal_quantile_threshold(scores, rate)
    rejected = int(np.sum(scores >= t))
    assert rejected >= 1  # never above the largest held-out score
    assert abs(rejected / n - rate) < 1.0 / n  # within one image of the target


def test_quantile_threshold_with_ties() -> None:
    # Half the scores tie at the top: the threshold lands on the tie, and all tied scores are
    # rejected together (a threshold cannot split equal scores).
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    t = normal_quantile_threshold(scores, 0.1)
    assert t == 5.0 and np.sum(scores >= t) == 6


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_quantile_threshold_rejects_bad_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        normal_quantile_threshold(np.arange(10.0), rate)


def test_quantile_threshold_rejects_bad_scores() -> None:
    with pytest.raises(ValueError, match="empty"):
        normal_quantile_threshold(np.array([]), 0.01)
    with pytest.raises(ValueError, match="NaN"):
        normal_quantile_threshold(np.array([0.1, np.nan]), 0.01)


def test_threshold_dataclass_roundtrip_and_frozen() -> None:
    t = Threshold(value=np.float32(0.5), how="F1-max on labelled data")
    assert type(t.value) is float and t.value == 0.5
    d = t.to_dict()
    assert d == {"value": 0.5, "how": "F1-max on labelled data"}
    assert Threshold.from_dict(json.loads(json.dumps(d))) == t
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.value = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="missing key"):
        Threshold.from_dict({"value": 1.0})
    with pytest.raises(ValueError, match="NaN"):
        Threshold(value=float("nan"), how="x")
    with pytest.raises(ValueError, match="non-empty"):
        Threshold(value=1.0, how="")


def test_label_free_threshold_describes_itself() -> None:
    scores = np.linspace(0.0, 1.0, 76)
    t = label_free_threshold(scores, 0.01)
    assert t.value == normal_quantile_threshold(scores, 0.01)
    assert t.how == (
        "label-free: 99th percentile of 76 held-out normal images "
        "(target false-reject rate 1%)"
    )
    t = label_free_threshold(scores, 0.005)
    assert t.how == (
        "label-free: 99.5th percentile of 76 held-out normal images "
        "(target false-reject rate 0.5%)"
    )
    assert "92nd percentile" in label_free_threshold(scores, 0.08).how


def test_metrics_at_threshold_with_label_free_threshold() -> None:
    labels = ["good", "good", "good", "crack", "crack", "hole"]
    scores = np.array([0.1, 0.2, 0.6, 0.5, 0.7, 0.3])
    t = Threshold(value=0.5, how="label-free: test")
    r = metrics_at_threshold(labels, scores, t)
    # >= 0.5: good 0.6 (fp), crack 0.5 and 0.7 (tp); hole 0.3 missed (fn); goods 0.1, 0.2 (tn).
    # P = 2/3, R = 2/3, F1 = 2/3, false-reject rate = 1/3 of the good images.
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (2, 1, 1, 2)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["false_reject_rate"] == pytest.approx(1 / 3)
    assert r["threshold"] == 0.5 and r["how"] == "label-free: test"
    # A bare number works too and carries no provenance.
    assert metrics_at_threshold(labels, scores, 0.65)["tp"] == 1
    assert metrics_at_threshold(labels, scores, 0.65)["how"] == ""


# --- false-reject rate and degenerate calibrations --------------------------------------------------------

def test_false_reject_rate_by_hand() -> None:
    from core.metrics.thresholds import false_reject_rate

    scores = np.array([0.1, 0.2, 0.3, 0.4])
    assert false_reject_rate(scores, 0.3) == 0.5  # 0.3 and 0.4 are flagged (score >= threshold)
    assert false_reject_rate(scores, 0.05) == 1.0 and false_reject_rate(scores, 0.41) == 0.0
    assert false_reject_rate(np.array([[0.5, 0.1], [0.7, 0.2]]), 0.5) == 0.5  # any shape: pixels too


def test_flag_everything_f1() -> None:
    from core.metrics.thresholds import flag_everything_f1

    assert flag_everything_f1(0.5) == pytest.approx(2 / 3)  # precision 1/2, recall 1
    assert flag_everything_f1(392 / 585) == pytest.approx(0.802, abs=5e-4)  # the magnetic_tile test split
    with pytest.raises(ValueError):
        flag_everything_f1(0.0)


def test_degenerate_rule_by_hand() -> None:
    from core.metrics.thresholds import DEGENERATE_F1_MARGIN, degenerate_reason

    labels = np.array([False, False, True, True])  # p = 0.5: flag-everything F1 = 2/3
    # Separating scores: threshold 0.3 gives F1 1 -> a real operating point.
    assert degenerate_reason(1.0, 0.3, np.array([0.1, 0.2, 0.3, 0.4]), labels) is None
    # Threshold at the lowest score flags all four parts.
    reason = degenerate_reason(2 / 3, 0.1, np.array([0.1, 0.2, 0.3, 0.4]), labels)
    assert reason is not None and "lowest score" in reason
    # F1 0.67 <= 2/3 + margin: no better than flagging everything, even with a threshold above the minimum.
    assert 0.67 <= 2 / 3 + DEGENERATE_F1_MARGIN
    reason = degenerate_reason(0.67, 0.2, np.array([0.1, 0.2, 0.3, 0.4]), labels)
    assert reason is not None and "no better than flagging every part" in reason and "0.667" in reason
    assert degenerate_reason(0.70, 0.2, np.array([0.1, 0.2, 0.3, 0.4]), labels) is None
