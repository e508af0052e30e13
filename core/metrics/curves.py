"""Threshold-sweep metrics for binary scores: ROC, AUROC, PR, F1 at a threshold and F1-max.

Every function here follows one convention: a sample is predicted positive (defective) when
``score >= threshold``. Curves are swept from the highest threshold to the lowest, with one point
per *distinct* score value, so tied scores always move together (a threshold cannot split a tie).

The work is one sort of the scores followed by cumulative sums (see ``_sorting``), which keeps the
functions usable on whole pixel sets: 50 million float32 values take 1-2 s and under 1 GB of
temporary memory. float64 scores are handled exactly too, by a slower argsort path (~4x), which
is fine for image-level arrays; pass pixel maps as float32.
"""

from __future__ import annotations

import numpy as np

from ._sorting import cumulative_count_at, sort_with_payload

__all__ = ["roc_curve", "auroc", "pr_curve", "f1_at", "f1_max"]


def _check_pair(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise a (labels, scores) pair.

    Args:
        labels: shape (N,), bool or 0/1 integers; True/1 means positive (defective).
        scores: shape (N,), real numbers; higher means more likely positive.

    Returns:
        ``(labels_bool, scores)``: both shape (N,). Scores keep their dtype when it is already a
        real numeric type, so a float32 pixel set is not doubled in memory by a float64 copy.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-D arrays, got shapes {labels.shape} and {scores.shape}; "
            "ravel per-pixel arrays before calling"
        )
    if labels.shape != scores.shape:
        raise ValueError(
            f"labels and scores must have the same length, got {labels.size} and {scores.size}"
        )
    if labels.size == 0:
        raise ValueError("labels and scores are empty; need at least one sample")
    if labels.dtype != np.bool_:
        if not np.issubdtype(labels.dtype, np.number):
            raise ValueError(f"labels must be bool or 0/1 numbers, got dtype {labels.dtype}")
        # A label array with other values (e.g. 255 masks or -1/1) is almost always a caller bug.
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            raise ValueError(
                f"labels must be bool or 0/1, found value {labels[np.argmax(bad)]!r}; "
                "convert masks with `mask > 0` first"
            )
        labels = labels.astype(bool)
    if not (np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)):
        if scores.dtype == np.bool_:
            scores = scores.astype(np.uint8)
        else:
            raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        raise ValueError(
            f"scores contain {int(np.isnan(scores).sum())} NaN value(s); "
            "NaN cannot be ranked, fix the scoring step"
        )
    return labels, scores


def _counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True/false positive counts at every distinct threshold, highest threshold first.

    Args:
        labels: shape (N,) bool (already validated).
        scores: shape (N,) (already validated).

    Returns:
        ``(tps, fps, thresholds)``, each shape (K,) for K distinct scores: ``tps[k]`` / ``fps[k]``
        count positives / negatives with ``score >= thresholds[k]``; int64 counts, thresholds
        strictly decreasing (float32 for float32 scores).
    """
    sorted_labels, ends, thresholds = sort_with_payload(scores, labels, payload_bits=1)
    tps = cumulative_count_at(sorted_labels, ends)
    # Everything at or above a threshold that is not a positive is a negative.
    fps = (ends + 1) - tps
    return tps, fps, thresholds


def _auroc_from_counts(tps: np.ndarray, fps: np.ndarray) -> float:
    """Exact trapezoidal ROC area from cumulative counts (see :func:`_counts`)."""
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    if n_pos == 0 or n_neg == 0:
        which = "negative (normal)" if n_neg == 0 else "positive (defective)"
        raise ValueError(
            f"AUROC is undefined with only one class present: no {which} samples among "
            f"{n_pos + n_neg}; add samples of both classes"
        )
    tp = np.concatenate(([0], tps))
    fp = np.concatenate(([0], fps))
    # Trapezoid area in integer units: sum of dFP * (TP_prev + TP). Integers keep it exact (a tie
    # group contributes half its "diagonal" step, i.e. ties count 1/2 as in the Mann-Whitney U);
    # the sum is at most 2*P*N, far inside int64 for any realistic pixel count.
    twice_area = int(np.sum(np.diff(fp) * (tp[1:] + tp[:-1])))
    return twice_area / (2.0 * n_pos * n_neg)


def _f1_max_from_counts(
    tps: np.ndarray, fps: np.ndarray, thresholds: np.ndarray
) -> tuple[float, float]:
    """Best F1 over the distinct thresholds of :func:`_counts`; highest threshold wins ties."""
    n_pos = int(tps[-1])
    if n_pos == 0:
        raise ValueError("F1-max is undefined without positive (defective) samples")
    # F1 = 2TP / (2TP + FP + FN) and FN = P - TP, so the denominator is TP + FP + P (never 0).
    f1 = 2.0 * tps / (tps + fps + n_pos)
    best = int(np.argmax(f1))  # first maximum = highest threshold = fewest false alarms
    return float(f1[best]), float(thresholds[best])


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic curve.

    Args:
        labels: shape (N,), bool or 0/1; True = positive (defective).
        scores: shape (N,), higher = more defective; positive iff ``score >= threshold``.

    Returns:
        ``(fpr, tpr, thresholds)``, each shape (K+1,) for K distinct scores. The first point is
        (0, 0) with threshold ``+inf``; then one point per distinct score, thresholds strictly
        decreasing, ending at (1, 1). Collinear points are kept (unlike scikit-learn's default
        ``drop_intermediate``) so every threshold can be looked up.

    Raises:
        ValueError: bad shapes/values, or only one class present (rates would divide by zero).
    """
    labels, scores = _check_pair(labels, scores)
    tps, fps, thr = _counts(labels, scores)
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"ROC curve is undefined with only one class present ({n_pos} positive, "
            f"{n_neg} negative samples); add samples of both classes"
        )
    fpr = np.concatenate(([0.0], fps / n_neg))
    tpr = np.concatenate(([0.0], tps / n_pos))
    thresholds = np.concatenate(([np.inf], thr.astype(np.float64)))
    return fpr, tpr, thresholds


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, exact with ties (equals ``sklearn.metrics.roc_auc_score``).

    Args:
        labels: shape (N,), bool or 0/1; True = positive (defective).
        scores: shape (N,), higher = more defective.

    Returns:
        AUROC in [0, 1]: the probability that a random positive outscores a random negative,
        ties counting 1/2.

    Raises:
        ValueError: bad shapes/values, or only one class present.
    """
    labels, scores = _check_pair(labels, scores)
    tps, fps, _ = _counts(labels, scores)
    return _auroc_from_counts(tps, fps)


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall curve.

    Args:
        labels: shape (N,), bool or 0/1; True = positive (defective).
        scores: shape (N,), higher = more defective; positive iff ``score >= threshold``.

    Returns:
        ``(precision, recall, thresholds)``, each shape (K,) for K distinct scores, one point per
        distinct score with thresholds strictly decreasing (so recall is non-decreasing and ends
        at 1). No artificial (recall 0, precision 1) point is added: at every listed threshold at
        least one sample is predicted positive, so precision is always defined.

    Raises:
        ValueError: bad shapes/values, or no positive samples (recall undefined).
    """
    labels, scores = _check_pair(labels, scores)
    tps, fps, thr = _counts(labels, scores)
    n_pos = int(tps[-1])
    if n_pos == 0:
        raise ValueError("PR curve is undefined without positive (defective) samples")
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return precision, recall, thr.astype(np.float64)


def f1_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Confusion counts, precision, recall and F1 for ``prediction = score >= threshold``.

    Args:
        labels: shape (N,), bool or 0/1; True = positive (defective).
        scores: shape (N,).
        threshold: scalar; samples with ``score >= threshold`` are predicted positive.

    Returns:
        dict with float ``precision``, ``recall``, ``f1`` and int ``tp``, ``fp``, ``fn``, ``tn``.
        A ratio whose denominator is zero (nothing predicted positive, or no positives at all) is
        reported as 0.0, as scikit-learn does with ``zero_division=0``.
    """
    labels, scores = _check_pair(labels, scores)
    # A float64 numpy scalar makes the comparison happen in float64 (float32 scores widen
    # exactly), so a threshold returned by f1_max reproduces the same prediction bit for bit.
    threshold = np.float64(threshold)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN; pass a real number")
    pred = scores >= threshold
    tp = int(np.count_nonzero(pred & labels))
    n_pred = int(np.count_nonzero(pred))
    n_pos = int(np.count_nonzero(labels))
    fp = n_pred - tp
    fn = n_pos - tp
    tn = labels.size - n_pred - fn
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_pos if n_pos else 0.0
    # 2TP / (2TP + FP + FN) equals the harmonic mean and needs no special case when P = R = 0
    # unless the denominator itself is 0 (no positives and nothing predicted).
    denom = 2 * tp + fp + fn
    f1 = 2 * tp / denom if denom else 0.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def f1_max(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Best F1 over all distinct thresholds.

    Args:
        labels: shape (N,), bool or 0/1; True = positive (defective).
        scores: shape (N,).

    Returns:
        ``(f1, threshold)``: ``threshold`` is one of the score values, and predicting
        ``score >= threshold`` achieves ``f1``. When several thresholds tie for the best F1 the
        highest is returned (fewest false alarms for the same F1).

    Raises:
        ValueError: bad shapes/values, or no positive samples.
    """
    labels, scores = _check_pair(labels, scores)
    tps, fps, thr = _counts(labels, scores)
    return _f1_max_from_counts(tps, fps, thr)
