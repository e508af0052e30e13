"""The F1 that needs no model at all, over images and over pixels.

Pure functions; the benchmark puts them beside every F1-max column. The rule itself (F1 = 2p / (1 + p))
and the false-reject rate live in `core.metrics.thresholds`, beside the calibration that uses them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.metrics.thresholds import flag_everything_f1


def _flag_everything(positives: int, total: int) -> float:
    """0 when there is nothing to find (no item or no defective one), else 2p / (1 + p)."""
    return flag_everything_f1(positives / total) if total > 0 and positives > 0 else 0.0


def image_flag_everything_f1(labels: Sequence[str], good_label: str = "good") -> float:
    """Flag-everything F1 over images: N labels, `good_label` for normal images."""
    return _flag_everything(sum(label != good_label for label in labels), len(labels))


def pixel_flag_everything_f1(masks: Sequence[np.ndarray]) -> float:
    """Flag-everything F1 over pixels of (H,W) boolean masks (good images contribute all-False masks)."""
    return _flag_everything(int(sum(int(m.sum()) for m in masks)), int(sum(m.size for m in masks)))
