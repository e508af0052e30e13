"""PatchCore-style embedding baseline (Roth et al. 2022), with the bundled ImageNet EfficientNet-Lite0.

No training by gradient: one pass over the normal images collects locally aggregated mid-level patch
features, a greedy coreset keeps a small memory bank that still covers them, and a test patch's anomaly
score is its distance to the nearest bank entry.
"""

from __future__ import annotations

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
    neighbourhood: int = 3  # local average pooling of each feature map (PatchCore's patch aggregation)
    patches_per_image: int = 128  # random patches kept per image while collecting (0 = all)
    coreset_ratio: float = 0.05  # of the collected patches
    max_bank: int = 4096
    projection_dim: int = 64  # random projection used only to choose the coreset (faster, JL lemma)
    blur_sigma: float = 4.0  # Gaussian smoothing of the upsampled map, in input pixels

    @classmethod
    def fast(cls) -> PatchCoreConfig:
        # 256 x 256 whole images, one pass; 128 random patches per image -> bank of at most 4096.
        return cls(input_size=256, resize_mode="resize", epochs=1, batch_size=8, augment=False, pooling="max")

    @classmethod
    def paper(cls) -> PatchCoreConfig:
        # PatchCore: every patch, 1 % coreset (Roth et al. 2022, Sec. 4). Backbone stays Lite0 (offline).
        return cls(input_size=256, resize_mode="resize", epochs=1, batch_size=8, augment=False, pooling="max",
                   patches_per_image=0, coreset_ratio=0.01, max_bank=100_000)


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
    """Images (N,C,S,S) in [0,1] -> map "nn" (N,1,S,S): distance of each patch to its nearest normal patch."""

    method = "patchcore"
    map_names = ("nn",)
    default_map = "nn"
    reconstructs = False
    input_normalisation = "(x - 127/255) / (128/255) inside the network (EfficientNet-Lite0, ImageNet)"

    def __init__(self, config: PatchCoreConfig) -> None:
        super().__init__(config)
        self.backbone = EfficientNetFeatures(tuple(config.stages))
        dim = sum(self.backbone.out_channels)
        self.register_buffer("memory_bank", torch.zeros(0, dim))
        self._collected: list[torch.Tensor] = []

    def phases(self) -> tuple[Phase, ...]:
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
        emb = self.embed(batch)
        n, d = emb.shape[:2]
        patches = emb.permute(0, 2, 3, 1).reshape(n, -1, d)
        keep = self.config.patches_per_image
        if keep and keep < patches.shape[1]:
            # torch's RNG is reseeded per step by the engine, so this choice is reproducible.
            idx = torch.stack([torch.randperm(patches.shape[1])[:keep] for _ in range(n)]).to(emb.device)
            patches = torch.gather(patches, 1, idx[..., None].expand(-1, -1, d))
        self._collected.append(patches.reshape(-1, d).cpu())

    def finalize(self, phase: str) -> None:
        if not self._collected:
            raise ValueError("PatchCore collected no features; are there training images?")
        features = torch.cat(self._collected)
        self._collected = []
        size = min(self.config.max_bank, max(1, round(self.config.coreset_ratio * len(features))))
        chosen = greedy_coreset(features, size, self.config.projection_dim)
        self.memory_bank = features[chosen].to(self.memory_bank.device)

    def prepare_for_state(self, state: dict[str, torch.Tensor]) -> None:
        bank = state.get("memory_bank")
        if bank is not None:
            self.memory_bank = torch.zeros_like(bank).to(self.memory_bank.device)

    def _nearest_distance(self, patches: torch.Tensor) -> torch.Tensor:
        """(P,D) -> (P,) Euclidean distance to the nearest memory-bank entry."""
        bank = self.memory_bank
        # An exported graph takes any batch size, so it cannot fix the number of chunks: one block there; and
        # cdist's default picks its kernel by the (batch-dependent) number of patches, so the export names one.
        if torch.compiler.is_exporting():
            return torch.cdist(patches, bank, compute_mode="use_mm_for_euclid_dist").amin(dim=1)
        return torch.cat([torch.cdist(chunk, bank).amin(dim=1) for chunk in patches.split(_QUERY_CHUNK)])

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        if len(self.memory_bank) == 0:
            raise ValueError("PatchCore has an empty memory bank: train it first")
        emb = self.embed(batch)
        n, d, h, w = emb.shape
        dist = self._nearest_distance(emb.permute(0, 2, 3, 1).reshape(-1, d)).reshape(n, 1, h, w)
        score = F.interpolate(dist, size=batch.shape[-2:], mode="bilinear", align_corners=False)
        return {"nn": _gaussian_blur(score, self.config.blur_sigma)}, None


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
