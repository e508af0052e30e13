"""Building blocks shared by the methods.

- Convolutions whose padding follows a method's `padding_mode` (`conv2d`, `conv_transpose2d`,
  `PADDING_MODES`): with zero padding every border pixel sees a dark frame that no interior pixel sees, so
  borders reconstruct worse and a max-pooled image score is decided there; "reflect" gives a border pixel a
  mirrored neighbourhood instead.
- Convolution stacks for encoders and decoders (`conv_stack`, `transposed_stack`) and the feature scales of
  a chain of conv stages (`stage_scales`, `run_stages`).
- TrustMAE's residual encoder and decoder (supplement Table 1), which MemAE uses too (`level_widths`,
  `ResidualEncoder`, `ResidualDecoder`), and `MemoryAutoencoder`, the encoder -> memory -> decoder model
  both methods are built on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.models.base import AnomalyModel, FeatureScale, MethodConfig
from core.models.memory import MemoryReadout
from core.scoring.msfr import receptive_fields


PADDING_MODES = ("reflect", "replicate", "zeros")


def conv2d(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, padding_mode: str = "zeros",
           bias: bool = True) -> nn.Conv2d:
    """nn.Conv2d padded with `padding_mode` (one of PADDING_MODES); the parameters are named as in a plain
    Conv2d, so model files of either mode hold the same tensors."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding_mode {padding_mode!r}; choose one of {', '.join(PADDING_MODES)}")
    return nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias, padding_mode=padding_mode)


class PaddedConvTranspose2d(nn.ConvTranspose2d):
    """A transposed conv without the zero frame: (N,C,h,w) -> the size nn.ConvTranspose2d gives.

    A transposed conv sums, at every output pixel, the contributions of the input pixels whose kernel
    footprint covers it; at the border some of those lie outside the input, which a plain transposed conv
    counts as zeros. Here the input is first padded by `margin` pixels with `padding_mode` (enough for every
    missing contributor: ceil((kernel - 1 - padding) / stride)) and the output is cropped by margin * stride
    on each side, so every output pixel gets a full set of contributions. Same parameters as the plain
    layer."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, padding_mode: str,
                 bias: bool = True) -> None:
        super().__init__(cin, cout, kernel, stride, padding, bias=bias)
        self.margin = max(0, -(-(kernel - 1 - padding) // stride))
        self.fill = padding_mode

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        m = min(self.margin, x.shape[-1] - 1, x.shape[-2] - 1) if self.fill == "reflect" else self.margin
        if m <= 0:
            return super().forward(x)
        out = super().forward(F.pad(x, (m, m, m, m), mode=self.fill))
        crop = m * self.stride[0]
        return out[..., crop:out.shape[-2] - crop, crop:out.shape[-1] - crop]


def conv_transpose2d(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
                     padding_mode: str = "zeros", bias: bool = True) -> nn.ConvTranspose2d:
    """A transposed conv for `padding_mode`: the plain layer for "zeros", else `PaddedConvTranspose2d`.
    Only for layers that read a spatial map: a layer that expands a 1x1 code has no border to pad."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding_mode {padding_mode!r}; choose one of {', '.join(PADDING_MODES)}")
    if padding_mode == "zeros":
        return nn.ConvTranspose2d(cin, cout, kernel, stride, padding, bias=bias)
    return PaddedConvTranspose2d(cin, cout, kernel, stride, padding, padding_mode, bias)


@dataclass(frozen=True)
class ConvSpec:
    """One layer of a conv stack: out channels, kernel, stride, padding."""

    channels: int
    kernel: int
    stride: int
    padding: int


def conv_stack(in_channels: int, layers: list[ConvSpec], slope: float = 0.2, padding_mode: str = "zeros"
               ) -> nn.Sequential:
    """Conv + LeakyReLU per spec."""
    modules: list[nn.Module] = []
    for spec in layers:
        modules += [conv2d(in_channels, spec.channels, spec.kernel, spec.stride, spec.padding, padding_mode),
                    nn.LeakyReLU(slope, inplace=True)]
        in_channels = spec.channels
    return nn.Sequential(*modules)


def transposed_stack(in_channels: int, layers: list[ConvSpec], slope: float = 0.2, padding_mode: str = "zeros"
                     ) -> nn.Sequential:
    """The mirror of `conv_stack`: stride-1 layers as convs, strided layers as transposed convs."""
    modules: list[nn.Module] = []
    for spec in layers:
        if spec.stride == 1 and spec.kernel % 2 == 1:
            modules.append(conv2d(in_channels, spec.channels, spec.kernel, 1, spec.padding, padding_mode))
        else:
            modules.append(conv_transpose2d(in_channels, spec.channels, spec.kernel, spec.stride, spec.padding,
                                            padding_mode))
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


# --- residual encoder / decoder (TrustMAE supplement Table 1; MemAE) ------------------------------------------

def level_widths(base_channels: int, latent_dim: int, downsamplings: int) -> list[int]:
    """Channels at each resolution level, stem first: base * 2^i capped at Z, the last level exactly Z.

    Paper (base 32, Z 512, 5 down-samplings): [32, 64, 128, 256, 512, 512], as in Table 1.
    """
    widths = [min(base_channels * 2**i, latent_dim) for i in range(downsamplings + 1)]
    widths[-1] = latent_dim
    return widths


def _conv_norm_relu(conv: nn.Module, channels: int, norm: type[nn.Module] = nn.BatchNorm2d) -> nn.Sequential:
    return nn.Sequential(conv, norm(channels, affine=True), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Table 1's residual block: x + ReLU(BN(Conv3x3(x))), shape preserved (N,C,h,w)."""

    def __init__(self, channels: int, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.body = _conv_norm_relu(conv2d(channels, channels, 3, 1, 1, padding_mode), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualEncoder(nn.Module):
    """(N,C,S,S) in [-1,1] -> bottleneck (N,Z,S/2^d,S/2^d). Shared by TrustMAE and MemAE."""

    def __init__(self, in_channels: int, widths: list[int], residual_blocks: int, padding_mode: str = "zeros"
                 ) -> None:
        super().__init__()
        pm = padding_mode
        layers: list[nn.Module] = [_conv_norm_relu(conv2d(in_channels, widths[0], 7, 1, 3, pm), widths[0])]
        for previous, width in zip(widths[:-1], widths[1:]):
            layers.append(_conv_norm_relu(conv2d(previous, width, 3, 2, 1, pm), width))
        self.levels = len(layers)  # stem + down-samplings: the feature scales
        layers += [ResidualBlock(widths[-1], pm) for _ in range(residual_blocks)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def scales(self) -> tuple[FeatureScale, ...]:
        """The stem and each stride-2 stage (Conv -> BN -> ReLU), finest first."""
        convs = [stage[0] for stage in self.layers[:self.levels]]
        return stage_scales([c.out_channels for c in convs], [(c.kernel_size[0], c.stride[0]) for c in convs])

    def features(self, x: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """(N,C,S,S) in [-1,1] -> the output of the stem and of each stride-2 stage after BN and ReLU."""
        levels = self.levels if count is None else min(count, self.levels)
        return run_stages(self.layers, x, levels)


class ResidualDecoder(nn.Module):
    """Mirror of `ResidualEncoder`: (N,Z,h,w) -> (N,C,h*2^d,w*2^d) in [-1,1] (tanh).

    The last up-sampling uses instance norm, as Table 1 does.
    """

    def __init__(self, out_channels: int, widths: list[int], residual_blocks: int, padding_mode: str = "zeros"
                 ) -> None:
        super().__init__()
        pm = padding_mode
        layers: list[nn.Module] = [ResidualBlock(widths[-1], pm) for _ in range(residual_blocks)]
        ups = list(zip(widths[:0:-1], widths[-2::-1]))  # (from, to) per level, deepest first
        for i, (previous, width) in enumerate(ups):
            norm = nn.InstanceNorm2d if i == len(ups) - 1 else nn.BatchNorm2d
            layers.append(_conv_norm_relu(conv_transpose2d(previous, width, 4, 2, 1, pm), width, norm))
        layers += [conv2d(widths[0], out_channels, 7, 1, 3, pm), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


def check_input_size(method: str, input_size: int, downsamplings: int) -> None:
    """Raise unless `input_size` halves `downsamplings` (>= 1) times without remainder."""
    if downsamplings < 1 or input_size % 2**downsamplings:
        raise ValueError(f"{method} needs input_size divisible by 2^downsamplings = {2**max(downsamplings, 0)} "
                         f"(downsamplings >= 1), got input_size {input_size}, downsamplings {downsamplings}")


class MemoryAutoencoder(AnomalyModel):
    """`ResidualEncoder` -> a memory on the bottleneck map -> `ResidualDecoder`; inputs (N,C,S,S) in [0,1],
    mapped to [-1,1] inside. MemAE and TrustMAE are this model with their own memory and losses.

    The config carries downsamplings, base_channels, latent_dim and residual_blocks. Subclasses give the
    memory through `build_memory`: a module that maps the bottleneck (N,Z,h,w) to a `MemoryReadout` and
    reports `memory_usage()`. It is built between the encoder and the decoder (the order of the seeded
    initialization).
    """

    input_normalisation = "x * 2 - 1 inside the network ([0,1] -> [-1,1])"

    def __init__(self, config: MethodConfig) -> None:
        super().__init__(config)
        c: Any = config
        check_input_size(self.method, c.input_size, c.downsamplings)
        widths = level_widths(c.base_channels, c.latent_dim, c.downsamplings)
        self.encoder = ResidualEncoder(c.in_channels, widths, c.residual_blocks, c.padding_mode)
        self.memory = self.build_memory()
        self.decoder = ResidualDecoder(c.in_channels, widths, c.residual_blocks, c.padding_mode)

    def build_memory(self) -> nn.Module:
        """The memory on the bottleneck map, from `self.config`."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, MemoryReadout]:
        """(N,C,S,S) in [0,1] -> (reconstruction (N,C,S,S) in [-1,1], MemoryReadout)."""
        readout = self.memory(self.encoder(x * 2.0 - 1.0))
        return self.decoder(readout.features), readout

    @torch.no_grad()
    def reconstruction(self, batch: torch.Tensor) -> torch.Tensor:
        return (self(batch)[0] + 1.0) / 2.0

    def feature_scales(self) -> tuple[FeatureScale, ...]:
        return self.encoder.scales()

    def encoder_features(self, images: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """(N,C,H,W) in [0,1], mapped to [-1,1] as in training -> stem and stride-2 stages after BN + ReLU."""
        return self.encoder.features(images * 2.0 - 1.0, count)

    def training_stats(self) -> dict[str, Any]:
        return {"memory_usage": self.memory.memory_usage()}
