"""CMA-AE: clear memory-augmented auto-encoder (Luo, Niu, Tang et al., "Clear Memory-Augmented Auto-Encoder
for Surface Defect Detection").

The model input is an image (N,C,S,S) at `input_size`; the model itself cuts it into patch_size x
patch_size patches (non-overlapping by default; with `patch_stride` < patch_size overlapping patches are
averaged when stitched back). Every patch goes through the Table I encoder to a 1x1xD code z, the memory
(MAM, MemAE-style, `core.models.memory`) gives a defect-free code z^, the feature repair module (FRM,
`core.models.feature_repair`) merges the two, and the symmetric decoder turns the result back into a patch.

Training (Algorithm 1) is two phases of the shared engine:
- stage1, normal patches: encoder, memory and decoder, loss 50 L1 + 0.01 Ls (Eq. 11). The decoder reads
  the memory code z^ directly (the FRM is bypassed): if the FRM were in the path on normal data it would
  learn to pass z through, and the memory would learn nothing (that failure is the paper's "no two-stage"
  ablation, Table IV column E).
- stage2, GAAGA anomalies (Eq. 1, `core.synth.anomalies.gaaga`): the memory is frozen; encoder, FRM and
  decoder learn to turn the anomalous input back into the clean image, loss 50 L1 + 0.01 Ls (Eq. 13). The
  target is the clean image: Eq. 12 prints |I_an - I'_an|, which would teach the model to reproduce the
  defect, contrary to "repair".
Losses are means (L1 per pixel, entropy per patch) where Eq. 5 and 10 print sums; the weights 50 and 0.01
are the paper's.

Maps: "msfr" (Eq. 14, default; the model's own encoder scales 1-3 on the whole image, weighted by their
receptive-field areas 4^2, 8^2, 14^2), "l1", and "perceptual" (`core.scoring.perceptual`; left out when
perceptual_backbone is "none", as in the fast preset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.models.base import AnomalyModel, FeatureScale, MethodConfig
from core.models.blocks import conv2d, conv_transpose2d, run_stages, stage_scales
from core.models.feature_repair import ConcatFusion, FeatureRepair
from core.models.memory import ShrinkageMemory, addressing_stats, entropy_loss
from core.models.registry import MethodSpec, register
from core.scoring.maps import l1_map
from core.scoring.msfr import msfr_map
from core.synth.anomalies import gaaga
from core.models.phases import OptimizerSpec, Phase

MEMORIES = ("cmam", "mam")
FUSIONS = ("gates", "concat")


@dataclass(frozen=True)
class CMAAEConfig(MethodConfig):
    patch_size: int = 64  # a multiple of 16: four stride-2 layers, then a (patch/16)^2 kernel to 1x1
    patch_stride: int = 0  # 0: patch_size (non-overlapping); smaller: overlapping patches, averaged
    base_channels: int = 32  # Table I widths: b, b, 2b, 4b, 8b
    latent_dim: int = 512  # D, the patch code and memory item size
    memory_slots: int = 2000  # N; shrinkage threshold is 1/N
    memory: str = "cmam"  # "cmam": MAM + FRM; "mam": MAM only (ablation B)
    fusion: str = "gates"  # "gates": FRM forget/input gates; "concat": one FC on [z, z^] (ablation C)
    gate_activation: str = "sigmoid"  # the paper's sigma, see core.models.feature_repair
    two_stage: bool = True  # False: one phase on normal images, everything trained (ablation E)
    stage1_share: float = 0.5  # share of `epochs` spent in stage 1; the rest is stage 2
    weight_rec: float = 50.0  # w1
    weight_sparsity: float = 0.01  # w2
    beta1: float = 0.5  # Adam beta1 (Table I)
    perceptual_backbone: str = "auto"  # for the "perceptual" map (core.scoring.perceptual); "none": no such map
    addressing: str = "cosine"  # the MAM's (MemAE's) cosine softmax, or "dot" (core.models.memory)
    address_temperature: float = 0.0  # softmax temperature; 0: the rule 1 / ln(N - 1); 1: the literal softmax

    @classmethod
    def legacy_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**super().legacy_values(values), "addressing": "cosine", "address_temperature": 1.0}

    @classmethod
    def paper(cls) -> CMAAEConfig:
        # Table I: 64x64 patches, D = 512, batch of 512 patches = 8 images of 512x512 (the paper resizes
        # every image to 512x512), Adam 2e-4 with beta1 0.5. The paper gives neither N nor T1/T2: N = 2000
        # (MemAE's size for its largest data), 200 epochs split evenly between the stages.
        # The paper names no augmentation (GAAGA's artificial anomalies aside): no flips, no rotations.
        return cls(input_size=512, patch_size=64, base_channels=32, latent_dim=512, memory_slots=2000,
                   epochs=200, batch_size=8, lr=2e-4, beta1=0.5, pooling="max", augment=False,
                   address_temperature=1.0)

    @classmethod
    def fast(cls) -> CMAAEConfig:
        # 2 CPU cores: 256x256 images (16 patches of 64), half the widths, N = 100. 12 epochs of the ~680
        # magnetic_tile training images take about 1.5 minutes (BENCHMARKS.md). No perceptual map: the
        # bundled network alone costs ~3x the rest of `predict`.
        return cls(input_size=256, patch_size=64, base_channels=16, latent_dim=256, memory_slots=100,
                   epochs=12, batch_size=8, lr=2e-4, beta1=0.5, pooling="max_smoothed",
                   perceptual_backbone="none")

    @property
    def stride(self) -> int:
        return self.patch_stride or self.patch_size

    def stage_epochs(self) -> tuple[int, int]:
        """(stage 1, stage 2) epochs out of `epochs`; each stage gets at least one when epochs >= 2."""
        first = min(max(round(self.epochs * self.stage1_share), 1), max(self.epochs - 1, 1))
        return first, self.epochs - first


# --- patches ----------------------------------------------------------------------------------------------

def split_patches(images: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """(N,C,S,S) -> (N*K,C,P,P), K patches per image in row-major order (image 0's patches first)."""
    n, c = images.shape[:2]
    columns = F.unfold(images, patch, stride=stride)  # (N, C*P*P, K), channel-major like (C,P,P)
    k = columns.shape[-1]
    return columns.transpose(1, 2).reshape(n * k, c, patch, patch)


def stitch_patches(patches: torch.Tensor, images: int, size: int, stride: int) -> torch.Tensor:
    """(N*K,C,P,P) -> (N,C,S,S), the inverse of `split_patches`; overlapping pixels get the mean of the
    patches that cover them."""
    c, patch = patches.shape[1], patches.shape[-1]
    columns = patches.reshape(images, -1, c * patch * patch).transpose(1, 2)
    summed = F.fold(columns, size, patch, stride=stride)
    if stride >= patch:
        return summed  # every pixel covered once
    count = F.fold(torch.ones_like(columns[:1]), size, patch, stride=stride)
    return summed / count


# --- encoder / decoder (Table I) ----------------------------------------------------------------------------

def _down(cin: int, cout: int, kernel: int, stride: int, padding_mode: str) -> nn.Sequential:
    return nn.Sequential(conv2d(cin, cout, kernel, stride, 1, padding_mode, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True))


def _up(cin: int, cout: int, kernel: int, stride: int, padding: int, padding_mode: str) -> nn.Sequential:
    return nn.Sequential(conv_transpose2d(cin, cout, kernel, stride, padding, padding_mode, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PatchEncoder(nn.Module):
    """Table I encoder: (B,C,P,P) in [-1,1] -> (B,D,1,1). Six conv blocks; blocks 1-3 are MSFR's scales.

    Table I leaves the first layer without BN and activation; it gets a LeakyReLU here (no BN, as in DCGAN),
    otherwise layers 1 and 2 would collapse into one linear map.
    """

    def __init__(self, in_channels: int, base: int, latent: int, patch: int, padding_mode: str = "zeros"
                 ) -> None:
        super().__init__()
        b, pm = base, padding_mode
        self.blocks = nn.ModuleList([
            nn.Sequential(conv2d(in_channels, b, 4, 2, 1, pm), nn.LeakyReLU(0.2, inplace=True)),  # P/2
            _down(b, b, 3, 1, pm),  # P/2
            _down(b, 2 * b, 4, 2, pm),  # P/4
            _down(2 * b, 4 * b, 4, 2, pm),  # P/8
            _down(4 * b, 8 * b, 4, 2, pm),  # P/16
            nn.Conv2d(8 * b, latent, patch // 16, 1, 0),  # 1x1, no activation: the code z
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def scales(self) -> tuple[FeatureScale, ...]:
        """The five conv blocks before the code (Conv -> [BN] -> LeakyReLU), finest first."""
        convs = [block[0] for block in self.blocks[:-1]]
        return stage_scales([c.out_channels for c in convs], [(c.kernel_size[0], c.stride[0]) for c in convs],
                            "block")

    def features(self, x: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """(B,C,H,W) in [-1,1] -> outputs of the first `count` conv blocks (all five when None) after their
        activation, [(B,C_i,H_i,W_i)]; any input size."""
        blocks = len(self.blocks) - 1
        return run_stages(self.blocks, x, blocks if count is None else min(count, blocks))


class PatchDecoder(nn.Module):
    """Table I decoder, the encoder's mirror: (B,D,1,1) -> (B,C,P,P) in [-1,1] (tanh).

    The first transposed conv gets BN + ReLU like the others (Table I leaves it blank).
    """

    def __init__(self, out_channels: int, base: int, latent: int, patch: int, padding_mode: str = "zeros"
                 ) -> None:
        super().__init__()
        b, pm = base, padding_mode
        self.layers = nn.Sequential(
            _up(latent, 8 * b, patch // 16, 1, 0, "zeros"),  # P/16, from the 1x1 code: nothing to pad
            _up(8 * b, 4 * b, 4, 2, 1, pm),  # P/8
            _up(4 * b, 2 * b, 4, 2, 1, pm),  # P/4
            _up(2 * b, b, 4, 2, 1, pm),  # P/2
            _up(b, b, 3, 1, 1, pm),  # P/2
            conv_transpose2d(b, out_channels, 4, 2, 1, pm),  # P
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


# --- the model ----------------------------------------------------------------------------------------------

class CMAAE(AnomalyModel):
    """Patch-wise encoder -> memory (MAM) -> FRM -> decoder; inputs (N,C,S,S) in [0,1].

    Sub-modules (the names the phases use): encoder, memory, repair (None for memory="mam"), decoder.
    """

    method = "cmaae"
    map_names = ("msfr", "l1", "perceptual")
    default_map = "msfr"
    input_normalisation = "x * 2 - 1 inside the network ([0,1] -> [-1,1])"

    def __init__(self, config: CMAAEConfig) -> None:
        super().__init__(config)
        _check(config)
        c = config
        self.encoder = PatchEncoder(c.in_channels, c.base_channels, c.latent_dim, c.patch_size, c.padding_mode)
        self.memory = ShrinkageMemory(c.memory_slots, c.latent_dim, 1.0 / c.memory_slots, c.addressing,
                                      c.address_temperature)
        self.repair: nn.Module | None = None
        if c.memory == "cmam":
            self.repair = (FeatureRepair(c.latent_dim, c.gate_activation) if c.fusion == "gates"
                           else ConcatFusion(c.latent_dim))
        self.decoder = PatchDecoder(c.in_channels, c.base_channels, c.latent_dim, c.patch_size, c.padding_mode)
        if c.perceptual_backbone == "none":
            self.map_names = ("msfr", "l1")  # per model: the metadata records what this one returns

    def forward(self, x: torch.Tensor, repair: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,C,S,S) in [0,1] -> (reconstruction (N,C,S,S) in [-1,1], addressing weights (N*K, slots)).

        `repair=False` decodes the memory code z^ directly (stage 1).
        """
        c = self.config
        patches = split_patches(x * 2.0 - 1.0, c.patch_size, c.stride)
        z = self.encoder(patches)  # (N*K, D, 1, 1)
        readout = self.memory(z)
        code = readout.features
        if repair and self.repair is not None:
            code = self.repair(z.flatten(1), code.flatten(1))[:, :, None, None]
        out = self.decoder(code)
        return stitch_patches(out, x.shape[0], c.input_size, c.stride), readout.weights

    @torch.no_grad()
    def reconstruction(self, batch: torch.Tensor) -> torch.Tensor:
        return (self(batch)[0] + 1.0) / 2.0

    def phases(self) -> tuple[Phase, ...]:
        c = self.config

        def adam(modules: tuple[str, ...]) -> OptimizerSpec:
            return OptimizerSpec("total", modules, c.lr, betas=(c.beta1, 0.999), weight_decay=c.weight_decay)

        if not c.two_stage:
            return (Phase("train", c.epochs, (adam(()),)),)
        first, second = c.stage_epochs()
        repairing = ("encoder", "repair", "decoder") if self.repair is not None else ("encoder", "decoder")
        return (Phase("stage1", first, (adam(("encoder", "memory", "decoder")),)),
                Phase("stage2", second, (adam(repairing),), frozen=("memory",)))

    def training_losses(self, batch: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        if phase not in ("train", "stage1", "stage2"):
            raise ValueError(f"cmaae has no phase {phase!r}")
        source = with_gaaga(batch) if phase == "stage2" else batch
        recon, weights = self(source, repair=phase != "stage1")
        rec = (recon - (batch * 2.0 - 1.0)).abs().mean()  # in the tanh range [-1,1]
        sparsity = entropy_loss(weights)
        total = self.config.weight_rec * rec + self.config.weight_sparsity * sparsity
        self._observed = {**addressing_stats(weights), "memory_temperature": self.memory.temperature,
                          "weighted_l1": self.config.weight_rec * float(rec.detach()),
                          "weighted_entropy": self.config.weight_sparsity * float(sparsity.detach())}
        return {"total": total, "l1": rec.detach(), "entropy": sparsity.detach()}

    def feature_scales(self) -> tuple[FeatureScale, ...]:
        return self.encoder.scales()

    def encoder_features(self, images: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """Encoder blocks of an image (N,C,H,W) in [0,1], mapped to [-1,1] as in training.

        The conv blocks run on the whole image rather than patch by patch: the same weights, no seams at
        patch borders, and one pass instead of K.
        """
        return self.encoder.features(images * 2.0 - 1.0, count)

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        recon = (self(batch)[0] + 1.0) / 2.0
        maps = {"msfr": msfr_map(self, batch, recon), "l1": l1_map(batch, recon)}
        if "perceptual" in self.map_names:
            maps["perceptual"] = self.perceptual_distance(batch, recon)
        return maps, recon

    def training_stats(self) -> dict[str, Any]:
        return {"memory_usage": self.memory.memory_usage()}


def with_gaaga(batch: torch.Tensor) -> torch.Tensor:
    """GAAGA (Eq. 1) on every image of a batch (N,C,S,S) in [0,1] -> (N,C,S,S).

    The blurred crop comes from any image of the batch. Seeded from torch's RNG, which the engine reseeds
    before every step, so training stays deterministic.
    """
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
    images = [im for im in batch.detach().cpu().numpy()]
    out = np.stack([gaaga(im, rng, normals=images)[0] for im in images])
    return torch.from_numpy(out).to(batch.device, batch.dtype)


def _check(c: CMAAEConfig) -> None:
    if c.memory not in MEMORIES:
        raise ValueError(f"unknown memory {c.memory!r}; choose one of {', '.join(MEMORIES)}")
    if c.fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {c.fusion!r}; choose one of {', '.join(FUSIONS)}")
    if c.patch_size < 16 or c.patch_size % 16:
        raise ValueError(f"cmaae needs patch_size a multiple of 16 (paper: 64), got {c.patch_size}")
    if not 0 < c.stride <= c.patch_size:
        raise ValueError(f"patch_stride must be 0 (= patch_size) or in 1..{c.patch_size}, got {c.patch_stride}")
    if c.input_size < c.patch_size or (c.input_size - c.patch_size) % c.stride:
        raise ValueError(f"input_size {c.input_size} is not covered by patches of {c.patch_size} every "
                         f"{c.stride} pixels; use input_size = patch_size + k * stride")
    if not 0.0 < c.stage1_share < 1.0:
        raise ValueError(f"stage1_share must be between 0 and 1, got {c.stage1_share}")


register(MethodSpec(CMAAE.method, "Patch-wise memory AE with forget/input gates, two-stage training on "
                                  "artificial anomalies; multi-scale feature residual map (CMA-AE)",
                    CMAAEConfig, CMAAE))
