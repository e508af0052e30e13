"""Multi-scale feature residual (CMA-AE Eq. 14).

    MSFR(I, I') = sum_i RF_i * mean_c(up((F_i - F'_i)^2)) / sum_i RF_i,   i = 1..3

F_i, F'_i are the model's own encoder features of the input and of the reconstruction at scale i,
`up` is bilinear up-sampling to H x W, `mean_c` the channel mean, and RF_i the receptive-field area
(H'_i x W'_i) of scale i: coarse scales, which see more context, weigh more.

A model can be scored this way when it exposes at least three encoder scales through the model interface
(`AnomalyModel.feature_scales` / `encoder_features`, which apply the model's own input normalisation and
take each stage after its normalisation and activation). Methods that expose none have no MSFR map.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch
import torch.nn.functional as F


class FeatureEncoder(Protocol):
    """What MSFR needs of a model (`core.models.base.AnomalyModel` provides it; scoring sits below models)."""

    def feature_scales(self) -> Sequence[Any]: ...

    def encoder_features(self, images: torch.Tensor, count: int | None = None) -> list[torch.Tensor]: ...

__all__ = ["SCALES", "msfr_from_features", "msfr_map", "receptive_fields", "supports_msfr"]

SCALES = 3  # the paper keeps scales 1-3: deeper residual maps are noisy (CMA-AE Fig. 7)


def msfr_from_features(feats_x: list[torch.Tensor], feats_y: list[torch.Tensor], weights: list[float],
                       size: tuple[int, int]) -> torch.Tensor:
    """Eq. 14 from features. feats_*[i]: (N,C_i,H_i,W_i); weights[i]: RF area of scale i -> (N,1,H,W)."""
    if not (len(feats_x) == len(feats_y) == len(weights)) or not weights:
        raise ValueError(f"MSFR needs one weight per scale, got {len(feats_x)}/{len(feats_y)} features and "
                         f"{len(weights)} weights")
    total = None
    for fx, fy, w in zip(feats_x, feats_y, weights):
        residual = F.interpolate((fx - fy) ** 2, size=size, mode="bilinear", align_corners=False)
        term = float(w) * residual.mean(dim=1, keepdim=True)
        total = term if total is None else total + term
    return total / float(sum(weights))


def receptive_fields(layers: list[tuple[int, int]]) -> list[int]:
    """Receptive-field side after each (kernel, stride) conv layer: r_i = r_{i-1} + (k_i - 1) * jump."""
    sides, side, jump = [], 1, 1
    for kernel, stride in layers:
        side += (kernel - 1) * jump
        jump *= stride
        sides.append(side)
    return sides


def supports_msfr(model: FeatureEncoder) -> bool:
    """Whether the model exposes the SCALES encoder scales MSFR needs."""
    return len(model.feature_scales()) >= SCALES


@torch.no_grad()
def msfr_map(model: FeatureEncoder, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """MSFR of an input (N,C,H,W) in [0,1] and its reconstruction (same shape, [0,1]) through the model's
    first SCALES encoder scales -> (N,1,H,W)."""
    scales = model.feature_scales()[:SCALES]
    if len(scales) < SCALES:
        raise ValueError(f"{model.method or type(model).__name__} exposes {len(scales)} encoder scales; "
                         f"MSFR needs {SCALES}")
    # One pass for both: the encoder runs in eval mode, so every image is encoded independently.
    feats = model.encoder_features(torch.cat([x, recon]), SCALES)
    n = x.shape[0]
    weights = [float(s.receptive_field ** 2) for s in scales]
    return msfr_from_features([f[:n] for f in feats], [f[n:] for f in feats], weights, tuple(x.shape[-2:]))
