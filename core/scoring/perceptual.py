"""Spatial perceptual distance (TrustMAE Eq. 8): PD(x, x^) = sum_l g(gamma_l . (phi_l(x) - phi_l(x^))^2).

Two networks can play phi:
- LPIPS (alex / vgg / squeeze trunks, `lpips` package, its own learned gamma_l) when the torchvision ImageNet
  trunk weights are on this machine: the torch hub cache (`<hub>/checkpoints/<torchvision file name>`) or a
  file imported with `defectlab weights import FILE`. The SHA-256 prefix that torchvision puts in the file
  name is checked (`core.weightfiles`). Nothing is downloaded.
- Otherwise the bundled ImageNet EfficientNet-Lite0 (`core.features.efficientnet`): features unit-normalized over
  channels (as LPIPS does), squared differences averaged over channels (gamma_l = 1/C_l), bilinearly
  upsampled to H x W and summed over layers.

`available_backbone()` says which one `auto` resolves to, so the CLI and model metadata can report it.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.scoring.maps import l2_map
from core.weightfiles import find_local, hub_checkpoints, install

# torchvision's file names; the part after the last '-' is the first hex digits of the file's SHA-256.
TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth",
               "squeeze": "squeezenet1_1-b8a52dc0.pth"}
LPIPS_NETS = tuple(TRUNK_FILES)
BUNDLED = "efficientnet-lite0 (bundled)"
BACKBONES = ("auto", "efficientnet", *(f"lpips-{n}" for n in LPIPS_NETS))
EFFICIENTNET_STAGES = (1, 2, 3, 4)  # strides 2..16: fine texture up to defect-sized context


@lru_cache(maxsize=None)
def find_trunk_weights(net: str) -> Path | None:
    """The verified local torchvision weights for an LPIPS trunk ('alex', 'vgg', 'squeeze'), or None."""
    if net not in TRUNK_FILES:
        raise ValueError(f"unknown LPIPS trunk {net!r}; choose one of {', '.join(LPIPS_NETS)}")
    return find_local(TRUNK_FILES[net])


def import_trunk_weights(source: str | Path, net: str) -> Path:
    """Copy a user-supplied torchvision trunk file into DefectLab's weights folder after checking its hash."""
    if net not in TRUNK_FILES:
        raise ValueError(f"unknown LPIPS trunk {net!r}; choose one of {', '.join(LPIPS_NETS)}")
    target = install(source, TRUNK_FILES[net])
    find_trunk_weights.cache_clear()
    return target


def resolve_backbone(backbone: str = "auto") -> str:
    """'auto' -> 'lpips-alex' when its weights are local, else 'efficientnet'; explicit names are checked."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown perceptual backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if backbone == "auto":
        return "lpips-alex" if find_trunk_weights("alex") else "efficientnet"
    if backbone.startswith("lpips-") and find_trunk_weights(backbone[6:]) is None:
        net = backbone[6:]
        raise FileNotFoundError(
            f"no local torchvision weights for {backbone}: put {TRUNK_FILES[net]} in {hub_checkpoints()} or "
            "import it (defectlab weights import FILE, or Tools > Import weights file… in the workbench); "
            "or use the bundled backbone 'efficientnet'")
    return backbone


def available_backbone(backbone: str = "auto") -> str:
    """Human-readable name of the network `perceptual_map(..., backbone)` will use."""
    resolved = resolve_backbone(backbone)
    return BUNDLED if resolved == "efficientnet" else f"{resolved} (local weights)"


def _load_trunk(model: nn.Module, path: Path) -> None:
    """Fill LPIPS's trunk slices (children named by their index in torchvision's `features`) from `path`."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for slice_ in model.net.children():
        for index, layer in slice_.named_children():
            own = layer.state_dict()
            if own:
                layer.load_state_dict({k: state[f"features.{index}.{k}"] for k in own})


def build_lpips(net: str = "alex", random_trunk: bool = False) -> nn.Module:
    """Spatial LPIPS with the package's learned linear weights. The trunk is random when `random_trunk`
    (tests), else loaded from the verified local file."""
    from core.vision import import_torchvision  # noqa: PLC0415

    import_torchvision()  # must precede `import lpips` (see core/vision.py)
    import lpips  # noqa: PLC0415

    with warnings.catch_warnings():  # torchvision's 'pretrained is deprecated' notices, raised inside lpips
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, spatial=True, pnet_rand=True, verbose=False)
    if not random_trunk:
        path = find_trunk_weights(net)
        if path is None:
            raise FileNotFoundError(f"no local torchvision weights for lpips-{net}")
        _load_trunk(model, path)
    model.requires_grad_(False)
    return model.eval()


class EfficientNetDistance(nn.Module):
    """PD with the bundled EfficientNet-Lite0. (N,C,H,W) x2 in [0,1] -> (N,1,H,W)."""

    def __init__(self, stages: tuple[int, ...] = EFFICIENTNET_STAGES) -> None:
        super().__init__()
        from core.features.efficientnet import EfficientNetFeatures  # noqa: PLC0415

        self.features = EfficientNetFeatures(stages)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        feats = self.features(torch.cat([x, y]))  # one pass for both: half the Python overhead
        out = x.new_zeros(n, 1, *x.shape[-2:])
        for f in feats:
            f = F.normalize(f, dim=1, eps=1e-10)
            d = ((f[:n] - f[n:]) ** 2).mean(dim=1, keepdim=True)
            out = out + F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


class LpipsDistance(nn.Module):
    """PD with LPIPS. (N,C,H,W) x2 in [0,1] -> (N,1,H,W); grayscale is replicated to RGB."""

    def __init__(self, net: str = "alex", random_trunk: bool = False) -> None:
        super().__init__()
        self.lpips = build_lpips(net, random_trunk)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        return self.lpips(x, y, normalize=True)  # normalize: [0,1] -> [-1,1] as LPIPS expects


_NETWORKS: dict[str, nn.Module] = {}


def perceptual_network(backbone: str = "auto") -> nn.Module:
    """One shared, frozen distance network per resolved backbone."""
    resolved = resolve_backbone(backbone)
    if resolved not in _NETWORKS:
        _NETWORKS[resolved] = EfficientNetDistance() if resolved == "efficientnet" else LpipsDistance(resolved[6:])
    return _NETWORKS[resolved]


def built_networks() -> list[nn.Module]:
    """The distance networks built so far (an exported graph holds the ones its maps used)."""
    return list(_NETWORKS.values())


def perceptual_map(x: torch.Tensor, y: torch.Tensor, backbone: str = "auto") -> torch.Tensor:
    """Spatial perceptual distance, (N,C,H,W) x2 in [0,1] -> (N,1,H,W), higher = more different."""
    if x.shape != y.shape:
        raise ValueError(f"perceptual_map needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    net = perceptual_network(resolve_backbone(backbone))
    if next(net.parameters()).device != x.device:  # moved only when needed: an ONNX trace cannot move it
        net.to(x.device)
    return net(x, y)


def perceptual_mse_map(x: torch.Tensor, y: torch.Tensor, backbone: str = "auto",
                       perceptual: torch.Tensor | None = None) -> torch.Tensor:
    """TrustMAE's reconstruction error (Sec. 2.3): perceptual distance x per-pixel MSE, (N,C,H,W) x2 in [0,1]
    -> (N,1,H,W). The product highlights defects and suppresses normal regions.

    `perceptual`: the (N,1,H,W) `perceptual_map(x, y, backbone)` when the caller already has it (one network
    pass instead of two); `backbone` is then unused.
    """
    if perceptual is None:
        perceptual = perceptual_map(x, y, backbone)
    return perceptual * l2_map(x, y)
