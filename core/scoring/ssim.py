"""SSIM (Wang et al. 2004) as a per-pixel map: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03."""

from __future__ import annotations

import torch
import torch.nn.functional as F

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """Normalized 2-D Gaussian, shape (1,1,size,size)."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


BORDERS = ("neutral", "padded")


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, border: str = "neutral") -> torch.Tensor:
    """Local SSIM between x and y, (N,C,H,W) -> (N,1,H,W), averaged over channels.

    `border` "neutral" (default): SSIM only where the whole window lies inside the image (as Wang et al.'s
    reference code computes it), and a pixel closer than 5 px to the border takes the value of the nearest
    full window: near the border a padded window holds fewer distinct pixels, so its variance and covariance
    estimates are noisier and 1 - SSIM is higher on normal texture. "padded": reflect-padded windows, one per
    pixel. Images smaller than a window fall back to "padded".
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim_map needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    if border not in BORDERS:
        raise ValueError(f"unknown SSIM border {border!r}; choose one of {', '.join(BORDERS)}")
    channels = x.shape[1]
    window = gaussian_window().to(x).expand(channels, 1, WINDOW, WINDOW)
    pad = WINDOW // 2
    valid = border == "neutral" and min(x.shape[-2:]) >= WINDOW
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t if valid else F.pad(t, (pad, pad, pad, pad), mode=mode), window, groups=channels)

    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    out = (num / den).mean(dim=1, keepdim=True)
    return F.pad(out, (pad, pad, pad, pad), mode="replicate") if valid else out


def ssim_loss(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, border: str = "neutral") -> torch.Tensor:
    """Scalar 1 - mean SSIM, the AE-SSIM training loss; with `border` "neutral" the mean over the full
    windows only (the replicated border of the map would weigh the edge windows more)."""
    local = ssim_map(x, y, data_range, border)
    pad = WINDOW // 2
    if border == "neutral" and min(x.shape[-2:]) >= WINDOW:
        local = local[..., pad:local.shape[-2] - pad, pad:local.shape[-1] - pad]
    return 1.0 - local.mean()
