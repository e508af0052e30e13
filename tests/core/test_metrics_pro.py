"""Tests for core.metrics.pro (PRO curve, AUPRO) and pixel-level summaries."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from core.metrics import aupro, pixel_metrics, pixel_metrics_at_threshold, pro_curve

# Hand-made example: two images of different sizes, two regions of different sizes.
#   image 1 (2x4): region R1 = {(0,0), (0,1)} (2 px), region R2 = {(1,3)} (1 px; not
#                  8-adjacent to R1); the other 5 pixels are normal.
#   image 2 (1x5): defect-free, 5 normal pixels.  -> n_regions = 2, n_normal = 10.
# PRO weights: each R1 pixel 1/(2*2) = 0.25, the R2 pixel 1/(1*2) = 0.5; each normal 0.1 FPR.
MASK1 = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], dtype=np.uint8)
MAP1 = np.array([[0.9, 0.4, 0.8, 0.4], [0.3, 0.25, 0.2, 0.6]])
MASK2 = np.zeros((1, 5), dtype=np.uint8)
MAP2 = np.array([[0.15, 0.1, 0.05, 0.0, 0.0]])
# Sweep from the top (distinct thresholds; note the tie at 0.4 of an R1 and a normal pixel):
#   0.9  R1        -> FPR 0.0, PRO 0.25
#   0.8  normal    -> FPR 0.1, PRO 0.25
#   0.6  R2        -> FPR 0.1, PRO 0.75
#   0.4  R1+normal -> FPR 0.2, PRO 1.0   (one diagonal step, not two)
#   0.3, 0.25, 0.2, 0.15, 0.1, 0.05 -> FPR 0.3 .. 0.8, PRO 1; 0.0 (two normals) -> FPR 1.0
EXPECTED_FPR = [0.0, 0.0, 0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]
EXPECTED_PRO = [0.0, 0.25, 0.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_pro_curve_hand_computed() -> None:
    fpr, pro = pro_curve([MASK1, MASK2], [MAP1, MAP2])
    np.testing.assert_allclose(fpr, EXPECTED_FPR, atol=1e-12)
    np.testing.assert_allclose(pro, EXPECTED_PRO, atol=1e-12)


@pytest.mark.parametrize(
    ("fpr_limit", "expected"),
    [
        # [0,0.1] at 0.25 -> 0.025; [0.1,0.2] from 0.75 to 1 -> 0.0875; [0.2,0.3] at 1 -> 0.1.
        # 0.2125 / 0.3 = 0.708333...  (splitting the 0.4 tie would give 0.225/0.3 = 0.75)
        (0.3, 0.2125 / 0.3),
        # Limit inside the diagonal step: PRO(0.15) = 0.75 + 0.5*0.25 = 0.875;
        # 0.025 + (0.75 + 0.875)/2 * 0.05 = 0.065625 -> / 0.15 = 0.4375.
        (0.15, 0.4375),
        # Whole curve: 0.025 + 0.0875 + 0.8 * 1 = 0.9125.
        (1.0, 0.9125),
    ],
)
def test_aupro_hand_computed(fpr_limit: float, expected: float) -> None:
    assert aupro([MASK1, MASK2], [MAP1, MAP2], fpr_limit=fpr_limit) == pytest.approx(
        expected, abs=1e-12
    )


def test_aupro_default_limit_and_bool_masks() -> None:
    value = aupro([MASK1.astype(bool), MASK2.astype(bool)], [MAP1, MAP2])
    assert value == pytest.approx(0.2125 / 0.3, abs=1e-12)


def test_eight_connectivity() -> None:
    # (0,0) and (1,1) touch diagonally: one region of 2 px under 8-connectivity; (0,3) is a
    # separate 1-px region. With only (0,0) above the threshold PRO = (1/2 + 0)/2 = 0.25
    # (4-connectivity would give three 1-px regions and 1/3).
    mask = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=np.uint8)
    amap = np.zeros((3, 4))
    amap[0, 0] = 1.0
    fpr, pro = pro_curve(mask[None], amap[None])
    assert pro[1] == pytest.approx(0.25, abs=1e-12) and fpr[1] == 0.0


def test_perfect_and_inverted_maps() -> None:
    masks = np.stack([MASK1, MASK1])
    perfect = masks.astype(np.float32)
    assert aupro(masks, perfect) == pytest.approx(1.0, abs=1e-9)
    assert aupro(masks, -perfect) == pytest.approx(0.0, abs=1e-12)


def _brute_force_aupro(masks: list[np.ndarray], maps: list[np.ndarray], limit: float) -> float:
    """Independent slow reference: loop over thresholds, scipy labelling, explicit means."""
    region_masks: list[tuple[int, np.ndarray]] = []
    for i, m in enumerate(masks):
        lab, n = ndimage.label(m > 0, structure=np.ones((3, 3)))
        region_masks += [(i, lab == k) for k in range(1, n + 1)]
    normal = np.concatenate([(m == 0).ravel() for m in masks])
    allmaps = np.concatenate([a.ravel() for a in maps])
    xs, ys = [0.0], [0.0]
    for t in np.unique(allmaps)[::-1]:
        xs.append(np.mean(allmaps[normal] >= t))
        ys.append(np.mean([np.mean(maps[i][r] >= t) for i, r in region_masks]))
    xs_a, ys_a = np.array(xs), np.array(ys)
    # Cut the piecewise-linear curve at the limit, then trapezoid.
    keep = xs_a <= limit
    # np.interp on a curve with vertical steps is ill-defined only at the step itself; the
    # limit falls there only if some FPR equals it, and then the last kept point is exact.
    y_end = float(np.interp(limit, xs_a, ys_a)) if xs_a[keep][-1] < limit else ys_a[keep][-1]
    x = np.append(xs_a[keep], limit)
    y = np.append(ys_a[keep], y_end)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2) / limit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # packed-sort and argsort paths
@pytest.mark.parametrize("seed", [0, 1])
def test_aupro_matches_brute_force(seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    masks, maps = [], []
    for shape in [(10, 12), (8, 8), (9, 11)]:
        m = (ndimage.uniform_filter(rng.random(shape), 3) > 0.6).astype(np.uint8)
        masks.append(m)
        # Coarse values give ties; the shift makes negative scores appear too.
        maps.append(np.round(rng.random(shape) + 0.4 * m - 0.5, 1).astype(dtype))
    masks.append(np.zeros((6, 6), np.uint8))  # a good image
    maps.append(np.round(rng.random((6, 6)) - 0.5, 1).astype(dtype))
    assert sum(int(m.sum()) for m in masks) > 0
    for limit in (0.3, 0.05):
        expected = _brute_force_aupro(masks, maps, limit)
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(expected, abs=1e-9)


def test_aupro_errors() -> None:
    with pytest.raises(ValueError, match="no defect region"):
        aupro([np.zeros((3, 3))], [np.ones((3, 3))])
    with pytest.raises(ValueError, match="no normal pixels"):
        aupro([np.ones((3, 3))], [np.ones((3, 3))])
    with pytest.raises(ValueError, match="shape"):
        aupro([MASK1], [MAP2])
    with pytest.raises(ValueError, match="1 masks but 2 maps"):
        aupro([MASK1], [MAP1, MAP2])
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro([MASK1], [MAP1], fpr_limit=0.0)
    with pytest.raises(ValueError, match="NaN"):
        aupro([MASK1], [np.full(MASK1.shape, np.nan)])


def test_pixel_metrics_hand_computed() -> None:
    r = pixel_metrics([MASK1, MASK2], [MAP1, MAP2])
    # Positives {0.9, 0.6, 0.4} vs 10 normals: 0.9 beats 10, 0.6 beats 9 (not 0.8), 0.4 beats 8
    # and ties 1 -> (10 + 9 + 8.5) / 30.
    assert r["pixel_auroc"] == pytest.approx(27.5 / 30, abs=1e-9)
    labels = np.concatenate([MASK1.ravel(), MASK2.ravel()])
    scores = np.concatenate([MAP1.ravel(), MAP2.ravel()]).astype(np.float32)
    assert r["pixel_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    # F1 = 2tp/(tp+fp+3): 0.9 -> 2/4, 0.8 -> 2/5, 0.6 -> 4/6, 0.4 -> 6/8, 0.3 -> 6/9 ...
    assert r["pixel_f1_max"] == pytest.approx(0.75, abs=1e-9)
    assert r["pixel_f1_max_threshold"] == pytest.approx(0.4, abs=1e-7)  # float32 of 0.4
    assert r["aupro"] == pytest.approx(0.2125 / 0.3, abs=1e-9)


def test_pixel_metrics_at_threshold() -> None:
    # >= 0.6: defect {0.9, 0.6} and normal {0.8}: tp2 fp1 fn1 tn9 -> P=R=F1=2/3, FRR 0.1.
    r = pixel_metrics_at_threshold([MASK1, MASK2], [MAP1, MAP2], 0.6)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (2, 1, 1, 9)
    assert r["f1"] == pytest.approx(2 / 3) and r["false_reject_rate"] == pytest.approx(0.1)
