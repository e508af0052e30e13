"""Tests for core.metrics.curves (ROC, AUROC, PR, F1) and the image-level summaries."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from core.metrics import (
    auroc,
    f1_at,
    f1_max,
    image_metrics,
    per_type_image_auroc,
    pr_curve,
    roc_curve,
)

# Classic 4-sample example. Distinct thresholds from high to low and what is >= each:
#   0.8  -> {0.8 (pos)}                     tp=1 fp=0
#   0.4  -> + 0.4 (neg)                     tp=1 fp=1
#   0.35 -> + 0.35 (pos)                    tp=2 fp=1
#   0.1  -> + 0.1 (neg)                     tp=2 fp=2
LABELS = np.array([0, 0, 1, 1])
SCORES = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_curve_hand_computed() -> None:
    fpr, tpr, thr = roc_curve(LABELS, SCORES)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_auroc_hand_computed() -> None:
    # Area: fpr 0->0.5 at tpr 0.5 gives 0.25, fpr 0.5->1 at tpr 1 gives 0.5; total 0.75.
    assert auroc(LABELS, SCORES) == pytest.approx(0.75, abs=1e-12)


def test_ties_are_one_threshold_and_count_half() -> None:
    # pos {0.9, 0.5}, neg {0.5, 0.1}. Thresholds 0.9 (tp1 fp0), 0.5 (tp2 fp1), 0.1 (tp2 fp2).
    # The tie at 0.5 moves a positive and a negative together: a diagonal ROC step.
    labels = np.array([True, False, True, False])
    scores = np.array([0.5, 0.5, 0.9, 0.1])
    fpr, tpr, thr = roc_curve(labels, scores)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.5, 0.1])
    # Pairs: (0.9>0.5)=1, (0.9>0.1)=1, (0.5=0.5)=1/2, (0.5>0.1)=1 -> 3.5/4 = 0.875.
    assert auroc(labels, scores) == pytest.approx(0.875, abs=1e-12)


def test_perfect_inverted_and_constant_scores() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert auroc(labels, scores) == 1.0
    assert auroc(labels, -scores) == 0.0
    assert auroc(labels, np.zeros(5)) == 0.5


@pytest.mark.parametrize("labels", [np.zeros(4, bool), np.ones(4, bool)])
def test_one_class_raises(labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="one class"):
        auroc(labels, np.arange(4.0))
    with pytest.raises(ValueError, match="one class"):
        roc_curve(labels, np.arange(4.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auroc_and_roc_match_sklearn_with_ties(seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    labels = rng.random(n) < 0.2
    # Rounding to 2 decimals makes ~100 distinct values, i.e. heavy ties; a shift makes
    # positives score a little higher on average so the AUROC is not trivially 0.5.
    scores = np.round(rng.random(n) + 0.3 * labels, 2).astype(dtype)
    assert abs(auroc(labels, scores) - roc_auc_score(labels, scores)) < 1e-9
    fpr, tpr, thr = roc_curve(labels, scores)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_negative_zero_and_infinite_scores(dtype: type) -> None:
    # float16/float32 take the packed-integer sort path, float64 the argsort path; both must
    # order negatives, infinities and zeros like floats do and treat -0.0 == +0.0 as one tie.
    rng = np.random.default_rng(7)
    values = np.array([-np.inf, -3.5, -1.0, -0.0, 0.0, 1e-3, 2.0, 7.25, np.inf])
    scores = rng.choice(values, size=400).astype(dtype)
    labels = rng.random(400) < (0.3 + 0.05 * np.argsort(np.argsort(scores)) / 400)
    # sklearn refuses infinities, so compare with it on dense ranks (same order, same ties).
    ranks = np.unique(scores, return_inverse=True)[1]
    assert abs(auroc(labels, scores) - roc_auc_score(labels, ranks)) < 1e-9
    fpr, tpr, thr = roc_curve(labels, scores)
    np.testing.assert_array_equal(thr[1:], np.unique(scores)[::-1])
    # A lone -0.0 vs +0.0 pair is a single tie: two ROC points and AUROC exactly 1/2.
    fpr, tpr, thr = roc_curve(np.array([1, 0]), np.array([-0.0, 0.0], dtype=dtype))
    assert len(thr) == 2 and auroc(np.array([1, 0]), np.array([-0.0, 0.0], dtype=dtype)) == 0.5


def test_integer_and_bool_inputs() -> None:
    # 0/1 int labels and integer scores are accepted and agree with sklearn.
    labels = np.array([1, 0, 1, 1, 0, 0, 1])
    scores = np.array([3, 1, 2, 2, 2, 0, 5])
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="same length"):
        auroc(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="NaN"):
        auroc(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="mask > 0"):
        auroc(np.array([0, 255]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="1-D"):
        auroc(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="empty"):
        auroc(np.array([], bool), np.array([]))


def test_pr_curve_hand_computed() -> None:
    # From the table above: precision = tp/(tp+fp), recall = tp/2.
    precision, recall, thr = pr_curve(LABELS, SCORES)
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thr, [0.8, 0.4, 0.35, 0.1])


def test_f1_at_hand_computed() -> None:
    # threshold 0.4 -> predicted [0,1,0,1] vs [0,0,1,1]: tp1 fp1 fn1 tn1, P=R=F1=0.5.
    r = f1_at(LABELS, SCORES, 0.4)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (1, 1, 1, 1)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.5)
    # threshold equal to a score includes it (>=): 0.35 -> [0,1,1,1]: tp2 fp1 fn0 tn1,
    # P=2/3, R=1, F1 = 2*(2/3)/(5/3) = 0.8.
    r = f1_at(LABELS, SCORES, 0.35)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (2, 1, 0, 1)
    assert r["precision"] == pytest.approx(2 / 3) and r["f1"] == pytest.approx(0.8)
    # Above every score: nothing predicted, precision defined as 0 (zero division).
    r = f1_at(LABELS, SCORES, 1.0)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (0, 0, 2, 2)
    assert r["precision"] == 0.0 and r["recall"] == 0.0 and r["f1"] == 0.0


def test_f1_max_hand_computed() -> None:
    # F1 = 2tp/(tp+fp+P): 0.8 -> 2/3, 0.4 -> 2/4, 0.35 -> 4/5, 0.1 -> 4/6. Best 0.8 at 0.35.
    f1, thr = f1_max(LABELS, SCORES)
    assert f1 == pytest.approx(0.8, abs=1e-12)
    assert thr == 0.35


def test_f1_max_tie_keeps_highest_threshold() -> None:
    # pos 0.9, neg 0.8, neg 0.7, pos 0.6 (P=2): F1 = 2tp/(tp+fp+2) is 2/3 at 0.9, 2/4 at 0.8,
    # 2/5 at 0.7 and 4/6 = 2/3 again at 0.6. Equal F1: the higher threshold (fewer false
    # alarms) is the documented choice.
    f1, thr = f1_max(np.array([1, 0, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6]))
    assert f1 == pytest.approx(2 / 3, abs=1e-12)
    assert thr == 0.9


def test_f1_max_no_positive_raises() -> None:
    with pytest.raises(ValueError, match="positive"):
        f1_max(np.zeros(3, bool), np.arange(3.0))


@pytest.mark.parametrize("seed", [3, 4])
def test_f1_max_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + 0.5 * labels, 1).astype(np.float32)
    best_f1, best_thr = -1.0, None
    # Brute force from high to low with strict ">" keeps the highest threshold on ties,
    # which is the documented tie rule.
    for t in np.unique(scores)[::-1]:
        f1 = f1_at(labels, scores, t)["f1"]
        if f1 > best_f1 + 1e-15:
            best_f1, best_thr = f1, float(t)
    f1, thr = f1_max(labels, scores)
    assert f1 == pytest.approx(best_f1, abs=1e-12)
    assert thr == best_thr
    # The returned float threshold reproduces the same F1 on float32 scores.
    assert f1_at(labels, scores, thr)["f1"] == pytest.approx(f1, abs=1e-12)


def test_image_metrics_and_per_type() -> None:
    labels = ["good", "scratch", "dent", "good", "scratch"]
    scores = np.array([0.1, 0.5, 0.2, 0.3, 0.9])
    # good {0.1, 0.3}; defective {0.5, 0.2, 0.9}. Pairs won: 0.5 -> 2, 0.9 -> 2, 0.2 -> 1 (beats
    # 0.1 only) = 5 of 6. scratch vs good: 4/4 = 1; dent vs good: 1/2.
    m = image_metrics(labels, scores)
    assert m["image_auroc"] == pytest.approx(5 / 6)
    assert m["per_type"] == {"dent": pytest.approx(0.5), "scratch": pytest.approx(1.0)}
    # F1 (P=3) per threshold: 0.9 -> 2/4, 0.5 -> 4/5, 0.3 -> 4/6, 0.2 -> 6/7, 0.1 -> 6/8.
    assert m["f1_max"] == pytest.approx(6 / 7)
    assert m["f1_max_threshold"] == 0.2
    assert per_type_image_auroc(labels, scores) == m["per_type"]


def test_per_type_needs_good_images() -> None:
    with pytest.raises(ValueError, match="normal images"):
        per_type_image_auroc(["a", "b"], np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="one score per label"):
        per_type_image_auroc(["good", "a"], np.array([0.1, 0.2, 0.3]))
