"""Anomaly maps from an input and its reconstruction: (N,C,H,W) x2 -> (N,1,H,W), higher = more anomalous."""

from __future__ import annotations

from typing import Callable

import torch

from core.scoring.ssim import ssim_map

MapFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def l1_map(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over channels."""
    return (x - recon).abs().mean(dim=1, keepdim=True)


def l2_map(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Mean squared error over channels."""
    return ((x - recon) ** 2).mean(dim=1, keepdim=True)


def ssim_residual_map(x: torch.Tensor, recon: torch.Tensor, border: str = "neutral") -> torch.Tensor:
    """1 - SSIM, so that structural differences score high (Bergmann et al.); `border` as in `ssim_map`."""
    return 1.0 - ssim_map(x, recon, border=border)


RECONSTRUCTION_MAPS: dict[str, MapFn] = {"l1": l1_map, "l2": l2_map, "ssim": ssim_residual_map}
