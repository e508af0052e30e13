"""Anomaly maps and image scores."""

from core.scoring.maps import RECONSTRUCTION_MAPS, l1_map, l2_map, ssim_residual_map
from core.scoring.pooling import POOLINGS, pool_map, pool_scores
from core.scoring.ssim import gaussian_window, ssim_loss, ssim_map

__all__ = [
    "RECONSTRUCTION_MAPS", "POOLINGS", "gaussian_window", "l1_map", "l2_map", "pool_map", "pool_scores",
    "ssim_loss", "ssim_map", "ssim_residual_map",
]
