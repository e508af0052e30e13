"""Patch discriminators and their losses.

- TrustMAE's discriminator (supplement Table 2) with its hinge GAN and feature-matching losses (Eq. 13-15);
- SN-PatchGAN (Yu et al. 2019, the DeepFill v2 discriminator that I3AD uses): spectrally normalised 5x5
  stride-2 convolutions whose flattened last map is a set of patch scores, trained with the same hinge loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TABLE2_CHANNELS = (32, 64, 128, 256, 512, 1024)
SN_PATCHGAN_CHANNELS = (64, 128, 256, 256, 256, 256)


def discriminator_depth(input_size: int, max_layers: int = len(TABLE2_CHANNELS)) -> int:
    """How many of Table 2's stride-2 layers to use: as many as leave a map of at least 4x4, at most 6.

    At the paper's 256x256 that is all 6 (a 4x4 patch map); smaller inputs drop the deepest layers.
    """
    return max(1, min(max_layers, int(math.log2(input_size)) - 2))


class PatchDiscriminator(nn.Module):
    """Conv 4x4 stride 2 + LeakyReLU(0.2) per layer, then a 3x3 conv to one logit per patch.

    Input (N,C,S,S) in [-1,1]; output (logits (N,1,s,s), [per-layer features]) where the features feed the
    GAN feature-matching loss.
    """

    def __init__(self, in_channels: int, input_size: int, width_scale: float = 1.0) -> None:
        super().__init__()
        widths = scaled_widths(TABLE2_CHANNELS[:discriminator_depth(input_size)], width_scale)
        self.layers = strided_layers(in_channels, widths, kernel=4)
        self.head = nn.Conv2d(widths[-1], 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.head(x), features


class SNPatchDiscriminator(nn.Module):
    """SN-PatchGAN: spectrally normalised Conv 5x5 stride 2 + LeakyReLU(0.2) per layer, no head.

    Input (N,C,S,S) (for I3AD the image in [-1,1] and its hole mask); output (N, K): the last map flattened,
    every element the score of one patch. Six layers at 256 (a 4x4x256 map), fewer for smaller inputs as
    `discriminator_depth` says.
    """

    def __init__(self, in_channels: int, input_size: int, width_scale: float = 1.0) -> None:
        super().__init__()
        widths = scaled_widths(SN_PATCHGAN_CHANNELS[:discriminator_depth(input_size)], width_scale)
        self.layers = strided_layers(in_channels, widths, kernel=5, spectral=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x.flatten(1)


def scaled_widths(channels: tuple[int, ...], width_scale: float) -> list[int]:
    """A table's channel counts times `width_scale`, at least 8."""
    return [max(8, int(c * width_scale)) for c in channels]


def strided_layers(in_channels: int, widths: list[int], kernel: int, spectral: bool = False) -> nn.ModuleList:
    """One Conv (kernel x kernel, stride 2, halving the map) + LeakyReLU(0.2) per width; with `spectral`
    each conv's weight is divided by its largest singular value (Miyato et al. 2018, one power iteration per
    training forward)."""
    layers = []
    previous = in_channels
    for width in widths:
        conv: nn.Module = nn.Conv2d(previous, width, kernel, 2, (kernel - 1) // 2)
        if spectral:
            conv = nn.utils.parametrizations.spectral_norm(conv)
        layers.append(nn.Sequential(conv, nn.LeakyReLU(0.2, inplace=True)))
        previous = width
    return nn.ModuleList(layers)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 13: -E[min(0, -1 + D(x))] - E[min(0, -1 - D(G(x)))] = E[relu(1 - D(x))] + E[relu(1 + D(G(x)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 14: -E[D(G(x))]."""
    return -fake_logits.mean()


def feature_matching_loss(real_features: list[torch.Tensor], fake_features: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 15: sum over layers of the mean absolute difference of discriminator features; the real
    features are targets (no gradient)."""
    return sum((F.l1_loss(fake, real.detach()) for real, fake in zip(real_features, fake_features)),
               start=real_features[0].new_zeros(()))
