"""Score histogram as an RGB image, drawn with NumPy/OpenCV (no plotting library, no Qt)."""

from __future__ import annotations

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (40, 40, 40)
GRID = (225, 225, 225)
THRESHOLD_RGB = (200, 30, 30)
# Group colours (RGB): ground truth when the folder has labels, else the verdict.
COLOURS = {"good": (80, 160, 90), "defect": (230, 140, 40), "unknown": (120, 130, 150),
           "defective": (230, 140, 40)}


def _text(image: np.ndarray, text: str, x: int, y: int, scale: float = 0.45, colour=INK,
          anchor: str = "left") -> None:
    (w, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    if anchor == "center":
        x -= w // 2
    elif anchor == "right":
        x -= w
    cv2.putText(image, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)


def score_groups(labels: list[str], verdicts: list[str]) -> list[str]:
    """Colour group per image: good / defect / unknown from labels when any is known, else the verdict."""
    if any(label != "unknown" for label in labels):
        return ["unknown" if label == "unknown" else "good" if label == "good" else "defect" for label in labels]
    return list(verdicts)


def score_histogram(scores: np.ndarray, groups: list[str], threshold: float | None, bins: int = 40,
                    size: tuple[int, int] = (760, 280)) -> np.ndarray:
    """Stacked histogram of image scores, one colour per group, with the image threshold as a red line.

    Args:
        scores: (N,) image scores.
        groups: N group names (keys of COLOURS), e.g. from score_groups().
        threshold: image threshold drawn as a vertical line, or None.
        size: (width, height) of the picture.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    width, height = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 56, 16, 30, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        _text(image, "no scores", width // 2, height // 2, 0.6, anchor="center")
        return image
    lo, hi = float(finite.min()), float(finite.max())
    if threshold is not None and np.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    if hi <= lo:  # all equal: give the single bar some room
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.02
    lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, bins + 1)
    names = [g for g in COLOURS if g in set(groups)]
    counts = {g: np.histogram(finite_of(scores, groups, g), edges)[0] for g in names}
    step = _count_step(int(sum(counts.values()).max()))
    peak = step * max(1, -(-int(sum(counts.values()).max()) // step))  # axis top: a whole number of steps

    def x_of(value: float) -> int:
        return left + int(round((value - lo) / (hi - lo) * plot_w))

    def y_of(count: float) -> int:
        return top + plot_h - int(round(count / peak * plot_h))

    for count in range(step, peak + 1, step):  # horizontal grid at whole counts
        y = y_of(count)
        cv2.line(image, (left, y), (left + plot_w, y), GRID, 1)
        _text(image, str(count), left - 6, y + 4, anchor="right")
    base = np.zeros(bins)
    for g in names:
        for k in np.nonzero(counts[g])[0]:
            x0, x1 = x_of(edges[k]), max(x_of(edges[k + 1]) - 1, x_of(edges[k]) + 1)
            cv2.rectangle(image, (x0, y_of(base[k] + counts[g][k])), (x1, y_of(base[k])), COLOURS[g], -1)
        base += counts[g]
    cv2.line(image, (left, top + plot_h), (left + plot_w, top + plot_h), INK, 1)
    cv2.line(image, (left, top), (left, top + plot_h), INK, 1)
    for value in np.linspace(lo + pad, hi - pad, 5):
        x = x_of(value)
        cv2.line(image, (x, top + plot_h), (x, top + plot_h + 4), INK, 1)
        _text(image, f"{value:.3g}", x, top + plot_h + 18, anchor="center")
    _text(image, "image score", left + plot_w // 2, height - 6, anchor="center")
    _text(image, "images", 6, top - 12)
    if threshold is not None and np.isfinite(threshold):
        x = x_of(threshold)
        for y in range(top, top + plot_h, 8):  # dashed, so bars behind stay readable
            cv2.line(image, (x, y), (x, min(y + 4, top + plot_h)), THRESHOLD_RGB, 2)
        label = f"threshold {threshold:.3g}"
        (w, _), _ = cv2.getTextSize(label, FONT, 0.45, 1)
        right_side = x + 6 + w < width - right  # else write it left of the line
        _text(image, label, x + 6 if right_side else x - 6, top + 12, colour=THRESHOLD_RGB,
              anchor="left" if right_side else "right")
    x = width - right
    for g in reversed(names):  # legend, top right
        label = f"{g} ({int(counts[g].sum())})"
        (w, _), _ = cv2.getTextSize(label, FONT, 0.45, 1)
        x -= w + 22
        cv2.rectangle(image, (x, 10), (x + 12, 22), COLOURS[g], -1)
        _text(image, label, x + 16, 21)
    return image


def _count_step(peak: int) -> int:
    """Grid step for counts: 1, 2, 5, 10, 20, 50, ... giving at most about 5 lines up to `peak`."""
    step = 1
    while step * 5 < peak:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def finite_of(scores: np.ndarray, groups: list[str], group: str) -> np.ndarray:
    """(N,) scores -> the finite scores of one group."""
    chosen = scores[np.asarray([g == group for g in groups], dtype=bool)]
    return chosen[np.isfinite(chosen)]
