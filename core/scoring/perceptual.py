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

Border (`border`, a method's `score_border`). Both networks pad every convolution with zeros, so near the
image border their features describe a dark frame as much as the image, and the distance between an input
and its reconstruction there follows other statistics than in the interior (on stationary texture plus
noise it is about 8 % lower on average). "neutral" (default): the two images are reflect-padded by two cells
of the deepest layer (2 x 16 = 32 pixels, whole cells, at most the image side - 1;
`core.features.loss.reflect_margin`) before the network and the map is cropped back, so the zero frame lies
outside the image and a border pixel sees mirrored texture like an interior one; "padded": the plain
networks. A border pixel still has fewer distinct neighbours, so its distance varies more: the per-position
calibration below is what evens that out.

Calibration (`calibration`, a method's `perceptual_calibration`). The layers' distances live on different
scales: LPIPS learns weights gamma_l for that on human judgements, which normal-only training cannot do.
What it can do is normalise: `LayerStats` measures each layer's distance between the training images and
their reconstructions at every position once training has ended (`AnomalyModel.calibrate_perceptual`),
and the map divides each layer before summing by
- "position" (default): its standard deviation at that position,
- "layer": its standard deviation over all positions,
- "mean": its mean over all positions;
"none" sums the raw layers (LPIPS's own weights, or 1/C_l for the bundled backbone): the uncalibrated
distance. Dividing by the standard deviation gives every layer the same spread on normal images, so the
sum adds evidence in units of normal variation instead of letting the noisiest layer decide; per position
it does the same for every place of the image, the border included, where the reconstruction is worse and
fewer distinct pixels feed each feature, so normal variation there no longer sets the image's maximum.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.features.loss import reflect_margin
from core.scoring.maps import l2_map
from core.weightfiles import find_local, hub_checkpoints, install

# torchvision's file names; the part after the last '-' is the first hex digits of the file's SHA-256.
TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth",
               "squeeze": "squeezenet1_1-b8a52dc0.pth"}
LPIPS_NETS = tuple(TRUNK_FILES)
BUNDLED = "efficientnet-lite0 (bundled)"
BACKBONES = ("auto", "efficientnet", *(f"lpips-{n}" for n in LPIPS_NETS))
EFFICIENTNET_STAGES = (1, 2, 3, 4)  # strides 2..16: fine texture up to defect-sized context
BORDERS = ("neutral", "padded")
CALIBRATIONS = ("position", "layer", "mean", "none")


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


class _LayeredDistance(nn.Module):
    """A PD network: `layers` gives each layer's distance upsampled to the input size, forward their sum."""

    deepest_stride = 16

    def layers(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,C,H,W) x2 in [0,1] -> (N,L,H,W), one channel per layer."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,C,H,W) x2 in [0,1] -> (N,1,H,W), the uncalibrated PD without border handling."""
        return self.layers(x, y).sum(dim=1, keepdim=True)


class EfficientNetDistance(_LayeredDistance):
    """PD with the bundled EfficientNet-Lite0. (N,C,H,W) x2 in [0,1] -> (N,1,H,W)."""

    def __init__(self, stages: tuple[int, ...] = EFFICIENTNET_STAGES) -> None:
        super().__init__()
        from core.features.efficientnet import EfficientNetFeatures  # noqa: PLC0415

        self.features = EfficientNetFeatures(stages)
        self.deepest_stride = max(self.features.strides)

    def layers(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        feats = self.features(torch.cat([x, y]))  # one pass for both: half the Python overhead
        out = []
        for f in feats:
            f = F.normalize(f, dim=1, eps=1e-10)
            d = ((f[:n] - f[n:]) ** 2).mean(dim=1, keepdim=True)
            out.append(F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return torch.cat(out, dim=1)


class LpipsDistance(_LayeredDistance):
    """PD with LPIPS. (N,C,H,W) x2 in [0,1] -> (N,1,H,W); grayscale is replicated to RGB."""

    def __init__(self, net: str = "alex", random_trunk: bool = False) -> None:
        super().__init__()
        self.lpips = build_lpips(net, random_trunk)

    def layers(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        # normalize: [0,1] -> [-1,1] as LPIPS expects; each layer already carries LPIPS's learned weights
        _, per_layer = self.lpips(x, y, retPerLayer=True, normalize=True)
        return torch.cat(per_layer, dim=1)


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


def perceptual_layers(x: torch.Tensor, y: torch.Tensor, backbone: str = "auto", border: str = "neutral"
                      ) -> torch.Tensor:
    """Each layer's perceptual distance, (N,C,H,W) x2 in [0,1] -> (N,L,H,W), with the border rule."""
    if x.shape != y.shape:
        raise ValueError(f"perceptual_map needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    if border not in BORDERS:
        raise ValueError(f"unknown perceptual border {border!r}; choose one of {', '.join(BORDERS)}")
    net = perceptual_network(resolve_backbone(backbone))
    if next(net.parameters()).device != x.device:  # moved only when needed: an ONNX trace cannot move it
        net.to(x.device)
    m = reflect_margin(tuple(x.shape[-2:]), net.deepest_stride) if border == "neutral" else 0
    if m == 0:
        return net.layers(x, y)
    h, w = x.shape[-2:]
    padded = net.layers(F.pad(x, (m, m, m, m), mode="reflect"), F.pad(y, (m, m, m, m), mode="reflect"))
    return padded[..., m:m + h, m:m + w]


def layer_scale(stats: torch.Tensor | None, calibration: str, size: tuple[int, int] | None = None
                ) -> torch.Tensor | None:
    """The divisor of each layer for `calibration`, from `LayerStats.result()` (L,2,H,W) = (mean, std) per
    layer and position: "position" -> (L,H,W) per-position standard deviations (for maps of the measured
    size; per-layer for any other `size`), "layer" -> (L,1,1) standard deviations over all positions,
    "mean" -> (L,1,1) means; None for "none" or when nothing was measured."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"unknown perceptual calibration {calibration!r}; choose one of {', '.join(CALIBRATIONS)}")
    if calibration == "none" or stats is None or stats.numel() == 0:
        return None
    mean, std = stats[:, 0], stats[:, 1]  # (L,H,W) each
    layer_mean = mean.mean(dim=(1, 2))
    layer_std = ((std * std + mean * mean).mean(dim=(1, 2)) - layer_mean * layer_mean).clamp_min(0).sqrt()
    if calibration == "mean":
        scale = layer_mean[:, None, None]
    elif calibration == "position" and (size is None or tuple(size) == tuple(std.shape[-2:])):
        # A position that never differed on the training images takes its layer's spread: dividing by
        # ~0 would let it swamp the map on the first pixel that differs at all.
        scale = torch.where(std > 0, std, layer_std[:, None, None])
    else:
        scale = layer_std[:, None, None]
    # The same for a layer that never differed anywhere: the smallest positive scale, or 1 when none is.
    # Written without a data-dependent branch so the map exports as one graph.
    smallest = torch.where(scale > 0, scale, torch.full_like(scale, float("inf"))).flatten().amin(dim=0)
    smallest = torch.where(torch.isfinite(smallest), smallest, torch.ones_like(smallest))
    return torch.where(scale > 0, scale, smallest)


def perceptual_map(x: torch.Tensor, y: torch.Tensor, backbone: str = "auto", border: str = "neutral",
                   scale: torch.Tensor | None = None) -> torch.Tensor:
    """Spatial perceptual distance, (N,C,H,W) x2 in [0,1] -> (N,1,H,W), higher = more different.

    `scale`: divisors of the layers, (L,1,1) or (L,H,W) (`layer_scale`); None for the uncalibrated sum."""
    layers = perceptual_layers(x, y, backbone, border)
    if scale is not None:
        if scale.shape[0] != layers.shape[1]:
            raise ValueError(f"the perceptual calibration has {scale.shape[0]} layers, the network "
                             f"{resolve_backbone(backbone)} gives {layers.shape[1]}: it was measured with "
                             "another network; retrain, or set perceptual_calibration to none")
        layers = layers / scale.to(layers)[None]
    return layers.sum(dim=1, keepdim=True)


class LayerStats:
    """Running mean and standard deviation of every layer at every position over (N,L,H,W) distance maps
    of one size."""

    def __init__(self) -> None:
        self.count = 0
        self.total: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None

    def update(self, layers: torch.Tensor) -> None:
        values = layers.detach().double()
        if self.total is not None and self.total.shape != values.shape[1:]:
            raise ValueError(f"LayerStats takes maps of one size: {tuple(self.total.shape)} then "
                             f"{tuple(values.shape[1:])}")
        total, squares = values.sum(0), (values * values).sum(0)
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += values.shape[0]

    def result(self) -> torch.Tensor:
        """(L,2,H,W) float32: mean and std of each layer at each position; (0,2,1,1) when nothing was seen."""
        if self.total is None or self.squares is None or self.count == 0:
            return torch.zeros(0, 2, 1, 1)
        mean = self.total / self.count
        std = (self.squares / self.count - mean * mean).clamp_min(0.0).sqrt()
        return torch.stack([mean, std], dim=1).float()


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
