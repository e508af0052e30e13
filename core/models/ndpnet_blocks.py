"""NDP-Net's networks and losses (Luo et al.; the paper gives none of the layer stacks, only the figures):
the 5-level encoder, the decoder with skips from levels 3-4, the three MSDSM heads, the pixel-level defect
perception loss (Eq. 2), the focal segmentation loss (Eq. 10) and the final map (Eq. 11 and its filters).

Declared layers (the paper's figures only):
- encoder level l: Conv(k_l, s_l) -> BN -> LeakyReLU(0.2) -> Conv3x3 -> BN -> LeakyReLU(0.2), level 1 at
  stride 1 (AM1 is at input resolution: Eq. 11 upsamples only AM2 and AM3), levels 2-5 4x4 stride 2, in
  the style of the same group's CMA-AE encoder;
- decoder: U-Net-like, bottom input level 5 and skips from levels 3-4 only: unrepaired shallow skips would
  leak the defect into the reconstruction (the paper's criticism of Skip-GANomaly);
- MSDSM head i: Conv3x3(2C_i -> C_i) + BN + ReLU -> Conv3x3 + BN + ReLU -> Conv1x1 -> one logit.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from core.models.base import FeatureScale
from core.models.blocks import conv2d, conv_transpose2d
from core.scoring.msfr import receptive_fields

LEVELS = 5
FUSION_WEIGHTS = (0.2, 0.2, 0.6)  # lambda_1..3 of Eq. 11
FILTER_SIZE = 5  # the 5x5 mean and median filters after Eq. 11


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, padding: int, act: nn.Module, padding_mode: str
             ) -> list[nn.Module]:
    return [conv2d(cin, cout, kernel, stride, padding, padding_mode, bias=False), nn.BatchNorm2d(cout), act]


class Encoder(nn.Module):
    """(N,C,S,S) in [-1,1] -> five levels (N,w_l,S/2^(l-1),S/2^(l-1)), l = 1..5."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], padding_mode: str = "zeros") -> None:
        super().__init__()
        self.layers = [(3, 1)] + [(4, 2)] * (LEVELS - 1)  # (kernel, stride) of each level's first conv
        self.widths = widths
        levels, cin, pm = [], in_channels, padding_mode
        for width, (kernel, stride) in zip(widths, self.layers):
            levels.append(nn.Sequential(
                *_conv_bn(cin, width, kernel, stride, 1, nn.LeakyReLU(0.2, inplace=True), pm),
                *_conv_bn(width, width, 3, 1, 1, nn.LeakyReLU(0.2, inplace=True), pm)))
            cin = width
        self.levels = nn.ModuleList(levels)

    def forward(self, x: torch.Tensor, count: int = LEVELS) -> list[torch.Tensor]:
        out = []
        for level in self.levels[:count]:
            x = level(x)
            out.append(x)
        return out

    def scales(self) -> tuple[FeatureScale, ...]:
        convs = [layer for first in self.layers for layer in (first, (3, 1))]
        fields = receptive_fields(convs)[1::2]  # after each level's second conv
        strides = [2 ** i for i in range(LEVELS)]
        return tuple(FeatureScale(f"level{i + 1}", w, s, r)
                     for i, (w, s, r) in enumerate(zip(self.widths, strides, fields)))


def _up(cin: int, cout: int, padding_mode: str) -> list[nn.Module]:
    return [conv_transpose2d(cin, cout, 4, 2, 1, padding_mode, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


def _two_convs(cin: int, cout: int, padding_mode: str = "zeros") -> list[nn.Module]:
    return [*_conv_bn(cin, cout, 3, 1, 1, nn.ReLU(inplace=True), padding_mode),
            *_conv_bn(cout, cout, 3, 1, 1, nn.ReLU(inplace=True), padding_mode)]


class Decoder(nn.Module):
    """(F5, F4, F3) -> image (N,C,S,S) in [0,1] (sigmoid). F_l are (repaired) level-l features."""

    def __init__(self, out_channels: int, widths: tuple[int, ...], padding_mode: str = "zeros") -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        pm = padding_mode
        self.up5 = nn.Sequential(*_up(w5, w4, pm))
        self.up4 = nn.Sequential(*_two_convs(2 * w4, w4, pm), *_up(w4, w3, pm))
        self.up3 = nn.Sequential(*_two_convs(2 * w3, w3, pm), *_up(w3, w2, pm))
        self.up2 = nn.Sequential(*_two_convs(w2, w2, pm), *_up(w2, w1, pm))
        self.out = nn.Sequential(*_conv_bn(w1, w1, 3, 1, 1, nn.ReLU(inplace=True), pm),
                                 conv2d(w1, out_channels, 3, 1, 1, pm), nn.Sigmoid())

    def forward(self, f5: torch.Tensor, f4: torch.Tensor, f3: torch.Tensor) -> torch.Tensor:
        x = self.up4(torch.cat([self.up5(f5), f4], dim=1))
        x = self.up3(torch.cat([x, f3], dim=1))
        return self.out(self.up2(x))


class SegmentationHeads(nn.Module):
    """MSDSM: head i reads concat(Phi_i(I), Phi_i(I^)) of levels 1-3 -> logits (N,1,H_i,W_i)."""

    def __init__(self, widths: tuple[int, ...], padding_mode: str = "zeros") -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(*_two_convs(2 * w, w, padding_mode), nn.Conv2d(w, 1, 1))
                                   for w in widths[:3])

    def forward(self, image_features: list[torch.Tensor], recon_features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [head(torch.cat([a, b], dim=1)) for head, a, b in zip(self.heads, image_features, recon_features)]


def area_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A mask (N,1,H,W) in [0,1] resized by area averaging to `size`: the covered fraction of each cell,
    so a defect smaller than a cell still leaves a soft target (nearest resizing would drop it)."""
    return mask if tuple(mask.shape[-2:]) == tuple(size) else F.adaptive_avg_pool2d(mask, size)


def defect_perception_loss(clean: list[torch.Tensor], defective: list[torch.Tensor], mask: torch.Tensor
                           ) -> torch.Tensor:
    """Eq. 2: mean over levels of MSE(N(mean_c (Phi_l(I_o) - Phi_l(I_ad))^2), I_m^l). Features (N,C_l,H_l,W_l)
    per level, mask (N,1,H,W). N is per-sample min-max; a sample whose map is flat (range < 1e-6) is left out
    of that level's term, since normalising it would only amplify noise."""
    terms = []
    for a, b in zip(clean, defective):
        diff = ((a - b) ** 2).mean(dim=1, keepdim=True)
        low = diff.amin(dim=(1, 2, 3), keepdim=True)
        span = diff.amax(dim=(1, 2, 3), keepdim=True) - low
        valid = span.flatten() >= 1e-6
        if not valid.any():
            continue
        normalised = (diff - low) / (span + 1e-8)
        target = area_mask(mask, tuple(diff.shape[-2:]))
        terms.append(((normalised - target) ** 2)[valid].mean())
    return torch.stack(terms).mean() if terms else mask.new_zeros(())


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss (Lin et al.) of logits against soft targets in [0,1], no alpha, mean over pixels:
    -[t (1-p)^g log p + (1-t) p^g log(1-p)]."""
    p = torch.sigmoid(logits)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    loss = -(target * (1 - p) ** gamma * log_p + (1 - target) * p ** gamma * log_not_p)
    return loss.mean()


def fuse_maps(maps: list[torch.Tensor], size: tuple[int, int], weights: tuple[float, ...] = FUSION_WEIGHTS
              ) -> torch.Tensor:
    """Eq. 11: sum_i lambda_i g(AM_i), g bilinear up-sampling to `size`; maps (N,1,H_i,W_i) -> (N,1,*size)."""
    out = None
    for weight, m in zip(weights, maps):
        if tuple(m.shape[-2:]) != tuple(size):
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        out = weight * m if out is None else out + weight * m
    return out


def mean_filter(maps: torch.Tensor, size: int = FILTER_SIZE) -> torch.Tensor:
    """size x size box mean of (N,1,H,W), borders replicated (a constant map stays constant)."""
    pad = size // 2
    return F.avg_pool2d(F.pad(maps, (pad,) * 4, mode="replicate"), size, stride=1)


def median_filter(maps: torch.Tensor, size: int = FILTER_SIZE) -> torch.Tensor:
    """size x size (lower) median of (N,1,H,W), borders replicated, as torch.median gives.

    A min/max selection network over the size*size shifted copies of the map: exact, about 3x faster on a
    CPU than a median or top-k over unfolded windows (measured at 256 x 256, batch 8), and exportable to
    ONNX (aten.median has no ONNX op)."""
    h, w = maps.shape[-2:]
    pad = size // 2
    padded = F.pad(maps, (pad,) * 4, mode="replicate")
    shifted = [padded[..., dy:dy + h, dx:dx + w] for dy in range(size) for dx in range(size)]
    return select_median(shifted)


def select_median(values: list[torch.Tensor]) -> torch.Tensor:
    """Elementwise lower median (the (n+1)//2-th smallest) of n same-shape tensors."""
    steps, target, low = median_network(len(values))
    wires: list[torch.Tensor | None] = [None] * low + list(values)
    wires += [None] * (steps_width(len(values)) - len(wires))
    for i, j, keep_min, keep_max in steps:
        a, b = wires[i], wires[j]
        if not (keep_min or keep_max):  # a swap with a padding wire (see median_network)
            wires[i], wires[j] = b, a
            continue
        assert a is not None and b is not None
        wires[i] = torch.minimum(a, b) if keep_min else None
        wires[j] = torch.maximum(a, b) if keep_max else None
    result = wires[target]
    assert result is not None
    return result


def steps_width(count: int) -> int:
    """Wires of the sorting network a median of `count` values runs on: the next power of two."""
    return 1 << max(count - 1, 0).bit_length()


@lru_cache(maxsize=None)
def median_network(count: int) -> tuple[tuple[tuple[int, int, bool, bool], ...], int, int]:
    """(steps, output wire, leading pads) of a selection network for the lower median of `count` values.

    Batcher's odd-even merge sort on the next power of two wires, the inputs between pads of -inf below and
    +inf above; comparators with a pad on one side are resolved ahead (in order, or a swap: both flags
    False) and, going backwards from the median's wire, only the min or max outputs it depends on are kept.
    The result is exact for any input, ties included (a sub-network of a sorting network)."""
    width = steps_width(count)
    low = (width - count) // 2
    state = ["low"] * low + ["value"] * count + ["high"] * (width - count - low)
    live: list[tuple[int, int, bool]] = []  # (i, j, is a swap)
    for i, j in _odd_even_merge_sort(width):
        a, b = state[i], state[j]
        if a == "low" or b == "high":
            continue  # already in order
        if a == "high" or b == "low":
            state[i], state[j] = b, a
            live.append((i, j, True))
        else:
            live.append((i, j, False))
    target = low + (count - 1) // 2
    needed, steps = {target}, []
    for i, j, swap in reversed(live):
        keep_min, keep_max = i in needed, j in needed
        if swap:
            needed -= {i, j}
            needed |= {j} if keep_min else set()
            needed |= {i} if keep_max else set()
            steps.append((i, j, False, False))
        elif keep_min or keep_max:
            needed |= {i, j}
            steps.append((i, j, keep_min, keep_max))
    return tuple(reversed(steps)), target, low


def _odd_even_merge_sort(width: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j (min to i), of Batcher's odd-even merge sort of `width` (a power of 2) wires."""
    out = []
    p = 1
    while p < width:
        k = p
        while k >= 1:
            for j in range(k % p, width - k, 2 * k):
                for i in range(min(k, width - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return out


def final_map(maps: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """AM_final: Eq. 11, then the 5x5 mean filter, then the 5x5 median filter (the order the text names them)."""
    return median_filter(mean_filter(fuse_maps(maps, size)))
