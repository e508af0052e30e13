"""Perceptual feature loss for training (TrustMAE Eq. 12): sum_l lambda_l * ||psi_l(x) - psi_l(G(x))||_1.

The paper uses VGG-19 (relu outputs of conv1_2, conv2_2, conv3_4, conv4_4, conv5_4; weights 1/32, 1/16,
1/8, 1/4, 1). Nothing is downloaded: VGG-19 is used only when torchvision's ImageNet file
`vgg19-dcbb9e9d.pth` is imported (`defectlab weights import FILE`) or in the torch hub cache
(`<hub>/checkpoints/`) and its SHA-256 starts with `dcbb9e9d`. Otherwise, and by choice, the bundled EfficientNet-Lite0 (`core.features.efficientnet`) plays psi:
stages 1-3 (strides 2, 4, 8), weighted 1/4, 1/2, 1 in the same deeper-weighs-more spirit.

NDP-Net's loss (Eq. 13) uses ImageNet VGG-16, "the first five feature maps from the ReLU activation
layers" (relu1_1, relu1_2, relu2_1, relu2_2, relu3_1), averaged: choice "vgg16", used only when torchvision's
`vgg16-397923af.pth` is local and verified in the same way; otherwise the same EfficientNet-Lite0 stand-in.

The networks are frozen and never part of a model's state dict: they are ImageNet constants, not weights
a model file should carry.

Border (`border`, on for methods whose `padding_mode` is not "zeros"): both images are reflect-padded by
`reflect_margin` pixels before the network and every feature map is cropped back to the image, so the
network's own zero padding lies outside the image and the loss treats border pixels like interior ones.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.weightfiles import find_local, hub_checkpoints

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_LAYERS = (3, 8, 17, 26, 35)  # indices in torchvision's vgg19().features of relu1_2 .. relu5_4
VGG19_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
VGG16_FILE = "vgg16-397923af.pth"
VGG16_LAYERS = (1, 3, 6, 8, 11)  # indices in torchvision's vgg16().features of relu1_1 .. relu3_1
VGG16_WEIGHTS = (0.2,) * 5  # Eq. 13 of NDP-Net: the mean over the five maps
# name -> (torchvision file, layer indices, layer weights)
VGG_NETWORKS = {"vgg19": (VGG19_FILE, VGG19_LAYERS, VGG19_WEIGHTS), "vgg16": (VGG16_FILE, VGG16_LAYERS, VGG16_WEIGHTS)}
LOSS_STAGES = (1, 2, 3)  # EfficientNet-Lite0 stages of the feature loss (perceptual maps use 1-4)
LOSS_STAGE_WEIGHTS = (1 / 4, 1 / 2, 1.0)
FEATURE_NETWORKS = ("auto", "vgg19", "vgg16", "efficientnet")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


BORDER_CELLS = 2  # reflect margin in cells of the deepest layer


def reflect_margin(size: tuple[int, int], deepest_stride: int, cells: int = BORDER_CELLS) -> int:
    """Reflect margin in pixels for an image of `size` (H, W): `cells` cells of the deepest layer, a whole
    number of them and at most the shorter side - 1 (the most a reflection can give); 0 when not even one
    cell fits."""
    fits = (min(size) - 1) // deepest_stride
    return deepest_stride * max(0, min(cells, fits))


def padded_features(net: nn.Module, x: torch.Tensor, strides: list[int]) -> list[torch.Tensor]:
    """`net`'s feature maps of images (N,C,H,W), computed on the images reflect-padded by `reflect_margin`
    and cropped back: feature map i (stride strides[i]) covers exactly the image."""
    m = reflect_margin(tuple(x.shape[-2:]), max(strides))
    if m == 0:
        return net(x)
    h, w = x.shape[-2:]
    out = []
    for f, s in zip(net(F.pad(x, (m, m, m, m), mode="reflect")), strides):
        out.append(f[..., m // s:m // s + -(-h // s), m // s:m // s + -(-w // s)])
    return out


@lru_cache(maxsize=None)
def find_vgg19_weights(folder: str | None = None) -> Path | None:
    """The verified local torchvision VGG-19 file, or None. `folder` defaults to DefectLab's weights folder
    (`defectlab weights import`), then `<torch hub>/checkpoints`."""
    return find_local(VGG19_FILE, (Path(folder),) if folder else None)


@lru_cache(maxsize=None)
def find_vgg16_weights(folder: str | None = None) -> Path | None:
    """The same for torchvision's VGG-16 file."""
    return find_local(VGG16_FILE, (Path(folder),) if folder else None)


def find_vgg_weights(name: str) -> Path | None:
    """The verified local file of VGG `name` ("vgg19" or "vgg16"), or None."""
    return find_vgg19_weights() if name == "vgg19" else find_vgg16_weights()


def resolve_feature_network(choice: str = "auto") -> tuple[str, str]:
    """(network actually used, why) for a config choice: 'vgg19' needs its local file, else EfficientNet."""
    if choice not in FEATURE_NETWORKS:
        raise ValueError(f"unknown feature loss network {choice!r}; choose one of {', '.join(FEATURE_NETWORKS)}")
    if choice == "efficientnet":
        return "efficientnet", "efficientnet-lite0 (bundled), as configured"
    vgg = "vgg19" if choice == "auto" else choice
    file_name = VGG_NETWORKS[vgg][0]
    if find_vgg_weights(vgg) is not None:
        return vgg, f"{vgg} (local {file_name})"
    return "efficientnet", (f"efficientnet-lite0 (bundled): {file_name} not found in "
                            f"{hub_checkpoints()} (import it with defectlab weights import FILE)")


class VGGFeatures(nn.Module):
    """Frozen VGG trunk (`arch` "vgg19" or "vgg16") up to its last tapped layer. (N,C,H,W) in [0,1] -> one
    feature map per index of `layers` (VGG-19: relu1_2 .. relu5_4)."""

    def __init__(self, weights: Path, arch: str = "vgg19", layers: tuple[int, ...] = VGG19_LAYERS) -> None:
        super().__init__()
        from core.vision import import_torchvision  # noqa: PLC0415 - torchvision only through the guard

        self.layers = layers
        trunk = getattr(import_torchvision().models, arch)(weights=None).features[: layers[-1] + 1]
        # Output stride of each tapped layer: every max-pool before it halves the resolution.
        pools = [i for i, layer in enumerate(trunk) if isinstance(layer, nn.MaxPool2d)]
        self.strides = [2 ** sum(p < index for p in pools) for index in layers]
        state = torch.load(weights, map_location="cpu", weights_only=True)
        trunk.load_state_dict({k[len("features."):]: v for k, v in state.items()
                               if k.startswith("features.") and int(k.split(".")[1]) <= layers[-1]})
        self.trunk = trunk
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.trunk):
            x = layer(x)
            if index in self.layers:
                out.append(x)
        return out


@lru_cache(maxsize=2)
def _network(name: str) -> tuple[nn.Module, tuple[float, ...]]:
    """One shared frozen network per name, with its layer weights."""
    if name in VGG_NETWORKS:
        file_name, layers, weights = VGG_NETWORKS[name]
        path = find_vgg_weights(name)
        if path is None:
            raise FileNotFoundError(f"{file_name} not found in {hub_checkpoints()}")
        return VGGFeatures(path, name, layers), weights
    from core.features.efficientnet import EfficientNetFeatures  # noqa: PLC0415 - heavy, only when used

    return EfficientNetFeatures(LOSS_STAGES), LOSS_STAGE_WEIGHTS


class FeatureLoss:
    """Callable perceptual loss; a plain object (not an nn.Module) so the frozen network stays out of the
    model's parameters, state dict and optimizers."""

    def __init__(self, choice: str = "auto", border: bool = False) -> None:
        self.network_name, self.description = resolve_feature_network(choice)
        self.border = border

    def __call__(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """Scalar loss for images (N,C,H,W) in [0,1]; gradients flow into `recon` only."""
        net, weights = _network(self.network_name)
        net = net.to(x.device)

        def features(images: torch.Tensor) -> list[torch.Tensor]:
            return padded_features(net, images, list(net.strides)) if self.border else net(images)

        with torch.no_grad():
            targets = features(x)
        produced = features(recon)
        return sum((w * F.l1_loss(p, t) for w, p, t in zip(weights, produced, targets)),
                   start=recon.new_zeros(()))
