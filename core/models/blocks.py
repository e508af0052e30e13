"""Building blocks shared by the methods: convolution stacks for encoders and decoders."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


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
