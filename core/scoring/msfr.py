"""Multi-scale feature residual (CMA-AE Eq. 14).

    MSFR(I, I') = sum_i RF_i * mean_c(up((F_i - F'_i)^2)) / sum_i RF_i,   i = 1..3

F_i, F'_i are the model's own encoder features of the input and of the reconstruction at scale i,
`up` is bilinear up-sampling to H x W, `mean_c` the channel mean, and RF_i the receptive-field area
(H'_i x W'_i) of scale i: coarse scales, which see more context, weigh more.

Any model can be scored this way if it exposes its encoder's scales: either a method
`encoder_scales(x) -> (features, receptive_fields)`, or an `encoder` made of nn.Sequential conv blocks
(Conv2d followed by an activation), from which the first three conv outputs are taken.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SCALES = 3  # the paper keeps scales 1-3: deeper residual maps are noisy (CMA-AE Fig. 7)
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)


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


def _flat_layers(module: nn.Module) -> list[nn.Module]:
    children = list(module.children())
    if not children:
        return [module]
    return [leaf for child in children for leaf in _flat_layers(child)]


def sequential_encoder_scales(encoder: nn.Module, x: torch.Tensor, scales: int = SCALES
                              ) -> tuple[list[torch.Tensor], list[float]]:
    """Run a plain conv encoder layer by layer; return the first `scales` conv-block outputs (after their
    activation) and their receptive-field areas."""
    feats: list[torch.Tensor] = []
    convs: list[tuple[int, int]] = []
    layers = _flat_layers(encoder)
    h = x
    for i, layer in enumerate(layers):
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            convs.append((layer.kernel_size[0], layer.stride[0]))
            following = layers[i + 1] if i + 1 < len(layers) else None
            if not isinstance(following, _ACTIVATIONS):
                feats.append(h)
        elif isinstance(layer, _ACTIVATIONS) and len(feats) < len(convs):
            feats.append(h)
        if len(feats) == scales:
            break
    if len(feats) < scales:
        raise ValueError(f"encoder has only {len(feats)} conv scales; MSFR needs {scales}")
    sides = receptive_fields(convs)[:scales]
    return feats, [float(s * s) for s in sides]


def encoder_scales(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], list[float]]:
    """The model's first three encoder scales (N,C_i,H_i,W_i) and their RF areas."""
    if hasattr(model, "encoder_scales"):
        return model.encoder_scales(x)
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, nn.Module):
        return sequential_encoder_scales(encoder, x)
    raise ValueError(f"{type(model).__name__} exposes no encoder scales; MSFR needs `encoder_scales(x)` or a "
                     "conv `encoder`")


def supports_msfr(model: nn.Module) -> bool:
    return hasattr(model, "encoder_scales") or isinstance(getattr(model, "encoder", None), nn.Module)


@torch.no_grad()
def msfr_map(model: nn.Module, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """MSFR of an input (N,C,H,W) and its reconstruction through `model`'s encoder -> (N,1,H,W)."""
    feats_x, weights = encoder_scales(model, x)
    feats_y, _ = encoder_scales(model, recon)
    return msfr_from_features(feats_x, feats_y, weights, tuple(x.shape[-2:]))
