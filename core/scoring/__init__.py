"""Anomaly maps and image scores."""

from core.scoring.maps import RECONSTRUCTION_MAPS, l1_map, l2_map, ssim_residual_map
from core.scoring.msfr import msfr_from_features, msfr_map
from core.scoring.perceptual import available_backbone, perceptual_map, perceptual_mse_map
from core.scoring.pooling import POOLINGS, pool_map, pool_scores
from core.scoring.ssim import gaussian_window, ssim_loss, ssim_map

__all__ = [
    "RECONSTRUCTION_MAPS", "POOLINGS", "available_backbone", "gaussian_window", "l1_map", "l2_map", "msfr_from_features",
    "msfr_map", "perceptual_map", "perceptual_mse_map", "pool_map", "pool_scores", "ssim_loss", "ssim_map",
    "ssim_residual_map",
]
