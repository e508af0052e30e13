"""Evaluation metrics: pure numpy functions, no Qt, no printing.

Convention everywhere: a sample (image or pixel) is predicted defective when
``score >= threshold``; tied scores always fall on the same side of a threshold.
"""

from .curves import auroc, f1_at, f1_max, pr_curve, roc_curve
from .pro import aupro, pro_curve
from .summary import (
    ImageMetrics,
    image_metrics,
    metrics_at_threshold,
    per_type_image_auroc,
    pixel_metrics,
    pixel_metrics_at_threshold,
)
from .thresholds import Threshold, label_free_threshold, normal_quantile_threshold

__all__ = [
    "roc_curve",
    "auroc",
    "pr_curve",
    "f1_at",
    "f1_max",
    "aupro",
    "pro_curve",
    "normal_quantile_threshold",
    "label_free_threshold",
    "Threshold",
    "per_type_image_auroc",
    "ImageMetrics",
    "image_metrics",
    "pixel_metrics",
    "metrics_at_threshold",
    "pixel_metrics_at_threshold",
]
