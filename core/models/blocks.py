"""Building blocks shared by the methods: convolution stacks for encoders and decoders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from core.models.base import FeatureScale
from core.scoring.msfr import receptive_fields


@dataclass(frozen=True)
class ConvSpec:
    """One layer of a conv stack: out channels, kernel, stride, padding."""

    channels: int
    kernel: int
    stride: int
    padding: int


def conv_stack(in_channels: int, layers: list[ConvSpec], slope: float = 0.2) -> nn.Sequential:
    """Conv + LeakyReLU per spec."""
    modules: list[nn.Module] = []
    for spec in layers:
        modules += [nn.Conv2d(in_channels, spec.channels, spec.kernel, spec.stride, spec.padding),
                    nn.LeakyReLU(slope, inplace=True)]
        in_channels = spec.channels
    return nn.Sequential(*modules)


def transposed_stack(in_channels: int, layers: list[ConvSpec], slope: float = 0.2) -> nn.Sequential:
    """The mirror of `conv_stack`: stride-1 layers as convs, strided layers as transposed convs."""
    modules: list[nn.Module] = []
    for spec in layers:
        if spec.stride == 1 and spec.kernel % 2 == 1:
            modules.append(nn.Conv2d(in_channels, spec.channels, spec.kernel, 1, spec.padding))
        else:
            modules.append(nn.ConvTranspose2d(in_channels, spec.channels, spec.kernel, spec.stride, spec.padding))
        modules.append(nn.LeakyReLU(slope, inplace=True))
        in_channels = spec.channels
    return nn.Sequential(*modules)


def stage_scales(channels: list[int], layers: list[tuple[int, int]], prefix: str = "stage"
                 ) -> tuple[FeatureScale, ...]:
    """FeatureScales of a chain of conv stages: out channels and (kernel, stride) of each stage's conv."""
    strides, jump = [], 1
    for _, stride in layers:
        jump *= stride
        strides.append(jump)
    return tuple(FeatureScale(f"{prefix}{i + 1}", c, s, r)
                 for i, (c, s, r) in enumerate(zip(channels, strides, receptive_fields(layers))))


def run_stages(stages: Sequence[nn.Module], x: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
    """Output of each of the first `count` stages (all when None) of a chain, [(N,C_i,H_i,W_i)]."""
    out = []
    for stage in stages[:count]:
        x = stage(x)
        out.append(x)
    return out
