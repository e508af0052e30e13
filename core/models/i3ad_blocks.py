"""I3AD's inpainting generator: the DeepFill v2 coarse-to-fine layout of gated convolutions (Yu et al. 2019),
with a SAGAN self-attention block (Zhang et al. 2018) where DeepFill has its contextual attention, as the
I3AD paper does. Widths are given by the base width `cnum` (48 in DeepFill v2): c/4, c/2, c and 2c.

Tensors: images (N,C,S,S) in [-1,1], hole masks (N,1,S,S) in {0,1} (1 = hidden, to be generated); S must be
divisible by 4 (two stride-2 stages).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DILATIONS = (2, 4, 8, 16)


class GatedConv2d(nn.Module):
    """Gated convolution: one conv gives features f and gates g, out = act(f) * sigmoid(g), (N,c_out,h,w).

    `activation` "elu" (DeepFill's default) or "relu"; None makes a plain output conv (no gate, no activation).
    Zero padding keeps the map size at stride 1 for every dilation.

    The feature half starts He-normal (ReLU gain), the gate half with PyTorch's default: with the default
    for both, a signal shrinks through 20-odd gated layers (each gate halves it at the start) until the
    output is flat and little gradient reaches the early layers (measured on a 32 x 32 stripe texture at
    lr 1e-3: the L1 of both stages stayed at 1.0 for 200 steps with the default start, and was 0.15 after
    100 steps with this one).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                 activation: str | None = "elu") -> None:
        super().__init__()
        if activation not in ("elu", "relu", None):
            raise ValueError(f"unknown gated-conv activation {activation!r}")
        self.activation = activation
        self.conv = nn.Conv2d(in_channels, out_channels * (2 if activation else 1), kernel, stride,
                              dilation * (kernel - 1) // 2, dilation)
        if activation is not None:
            with torch.no_grad():
                nn.init.kaiming_normal_(self.conv.weight[:out_channels], nonlinearity="relu")

    def features_and_gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(activated features, gates in (0,1)), each (N,c_out,h,w); only for gated layers."""
        features, gates = self.conv(x).chunk(2, dim=1)
        act = F.elu(features) if self.activation == "elu" else F.relu(features)
        return act, torch.sigmoid(gates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation is None:
            return self.conv(x)
        features, gates = self.features_and_gates(x)
        return features * gates


class GatedUp(nn.Module):
    """DeepFill's "deconv": nearest x2 upsampling, then a 3x3 gated conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SelfAttention(nn.Module):
    """SAGAN self-attention on a (N,C,h,w) map: out = x + gamma * V softmax(Q^T K)^T, gamma learned from 0.

    Q and K are 1x1 convs to C/8 channels, V a 1x1 conv to C; the softmax runs over the h*w key positions
    (an (h w) x (h w) matrix per image: 4096^2 at a 256 input). With `masked_keys`, hole positions (a hole
    mask (N,1,h,w) passed to forward) are no keys, so a hole is filled from what is visible, as contextual
    attention does; an image whose map is all hole keeps every key.
    """

    def __init__(self, channels: int, masked_keys: bool = False) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))
        self.masked_keys = masked_keys

    def forward(self, x: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (N, C/8, hw)
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)  # (N, C, hw)
        logits = torch.bmm(q.transpose(1, 2), k)  # (N, hw queries, hw keys)
        if self.masked_keys and hole is not None:
            hidden = F.adaptive_max_pool2d(hole, (h, w)).flatten(1) > 0.5  # (N, hw)
            hidden &= ~hidden.all(dim=1, keepdim=True)
            logits = logits.masked_fill(hidden[:, None, :], float("-inf"))
        attention = torch.softmax(logits, dim=-1)
        out = torch.bmm(v, attention.transpose(1, 2)).view(n, c, h, w)
        return x + self.gamma * out


def _gated(specs: list[tuple[int, int, int, int]], in_channels: int) -> tuple[nn.Sequential, int]:
    """Gated convs from (out channels, kernel, stride, dilation) specs; (stack, its out channels)."""
    layers = []
    for out, kernel, stride, dilation in specs:
        layers.append(GatedConv2d(in_channels, out, kernel, stride, dilation))
        in_channels = out
    return nn.Sequential(*layers), in_channels


def _decoder(in_channels: int, c: int, out_channels: int) -> nn.Sequential:
    """The common tail of both stages: 2c x2 at 1/4, up -> c, c, up -> c/2, c/4, output conv and tanh."""
    body, channels = _gated([(2 * c, 3, 1, 1), (2 * c, 3, 1, 1)], in_channels)
    return nn.Sequential(body, GatedUp(channels, c), GatedConv2d(c, c), GatedUp(c, c // 2),
                         GatedConv2d(c // 2, max(c // 4, 1)), GatedConv2d(max(c // 4, 1), out_channels, 3,
                                                                         activation=None), nn.Tanh())


class CoarseNet(nn.Module):
    """Stage 1: input (N,C+2,S,S) = [image with holes, ones, hole] -> coarse image (N,C,S,S) in [-1,1]."""

    def __init__(self, in_channels: int, out_channels: int, c: int) -> None:
        super().__init__()
        spec = [(c // 2, 5, 1, 1), (c, 3, 2, 1), (c, 3, 1, 1), (2 * c, 3, 2, 1), (2 * c, 3, 1, 1),
                (2 * c, 3, 1, 1)] + [(2 * c, 3, 1, d) for d in DILATIONS]
        self.encoder, channels = _gated(spec, in_channels)
        self.decoder = _decoder(channels, c, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class FineNet(nn.Module):
    """Stage 2: the pasted coarse result [image, ones, hole] -> fine image (N,C,S,S) in [-1,1].

    Branch A (hallucination) ends in the dilated convs; branch B (attention) in self-attention at 1/4
    resolution and two more gated convs; their concatenation is decoded.
    """

    def __init__(self, in_channels: int, out_channels: int, c: int, masked_keys: bool = False) -> None:
        super().__init__()
        half = c // 2
        self.branch_a, a_out = _gated([(half, 5, 1, 1), (half, 3, 2, 1), (c, 3, 1, 1), (c, 3, 2, 1),
                                       (2 * c, 3, 1, 1), (2 * c, 3, 1, 1)] + [(2 * c, 3, 1, d) for d in DILATIONS],
                                      in_channels)
        self.branch_b_in, b_out = _gated([(half, 5, 1, 1), (half, 3, 2, 1), (c, 3, 1, 1), (2 * c, 3, 2, 1),
                                          (2 * c, 3, 1, 1)], in_channels)
        self.branch_b_relu = GatedConv2d(b_out, 2 * c, 3, activation="relu")
        self.attention = SelfAttention(2 * c, masked_keys)
        self.branch_b_out, b_out = _gated([(2 * c, 3, 1, 1), (2 * c, 3, 1, 1)], 2 * c)
        self.decoder = _decoder(a_out + b_out, c, out_channels)

    def forward(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        b = self.attention(self.branch_b_relu(self.branch_b_in(x)), hole)
        return self.decoder(torch.cat([self.branch_a(x), self.branch_b_out(b)], dim=1))


class InpaintGenerator(nn.Module):
    """Coarse-to-fine inpainting generator. forward(image (N,C,S,S) in [-1,1], hole (N,1,S,S)) ->
    (coarse x1, fine x2), both (N,C,S,S) in [-1,1]. Hidden pixels are zeroed before the network sees them,
    so what is under a hole never reaches the output."""

    def __init__(self, channels: int, cnum: int = 48, masked_keys: bool = False) -> None:
        super().__init__()
        if cnum < 4 or cnum % 4:
            raise ValueError(f"the generator's base width cnum must be a multiple of 4, got {cnum}")
        self.coarse = CoarseNet(channels + 2, channels, cnum)
        self.fine = FineNet(channels + 2, channels, cnum, masked_keys)

    @staticmethod
    def _input(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return torch.cat([image * (1.0 - hole), torch.ones_like(hole), hole], dim=1)

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coarse = self.coarse(self._input(image, hole))
        pasted = coarse * hole + image * (1.0 - hole)
        return coarse, self.fine(self._input(pasted, hole), hole)


def composite(image: torch.Tensor, generated: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Generated pixels inside the hole, the image's own pixels everywhere else (N,C,S,S)."""
    return generated * hole + image * (1.0 - hole)


def discount_weights(holes: np.ndarray, gamma: float) -> np.ndarray:
    """Spatially discounted loss weights (N,1,S,S) for bool holes (N,S,S): gamma^d inside a hole, d the
    Euclidean distance (pixels) to the nearest visible pixel, and 1 on visible pixels (DeepFill v1's
    discounting, for free-form holes). A mask that hides everything has no visible pixel: weight 1."""
    weights = np.ones(holes.shape, np.float32)
    for i, hole in enumerate(holes):
        if hole.any() and not hole.all():
            distance = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            weights[i] = np.where(hole, np.power(gamma, distance), 1.0)
    return weights[:, None]
