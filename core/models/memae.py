"""MemAE (Gong et al., ICCV 2019) in 2-D, the baseline TrustMAE builds on.

As in TrustMAE's supplement (Appendix B), Gong's network is adapted to 2-D images; here it is literally
TrustMAE's encoder and decoder (`core.models.blocks`), so the two differ only in the memory and losses:
softmax addressing over cosine similarity, hard shrinkage at lambda (Gong: 1/M .. 3/M) with
renormalization, and the loss MSE + 0.0002 * addressing entropy. Scored by the per-pixel L2 residual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from core.models.base import MethodConfig
from core.models.blocks import MemoryAutoencoder
from core.models.memory import ShrinkageMemory, addressing_stats, entropy_loss
from core.models.registry import MethodSpec, register
from core.models.phases import OptimizerSpec, Phase


@dataclass(frozen=True)
class MemAEConfig(MethodConfig):
    downsamplings: int = 5
    base_channels: int = 32
    latent_dim: int = 256  # Z
    residual_blocks: int = 3
    memory_slots: int = 128  # M
    shrink_threshold: float = 1.0 / 128  # lambda; Gong et al. use 1/M .. 3/M
    entropy_weight: float = 0.0002
    addressing: str = "cosine"  # Gong's cosine softmax, or "dot" (core.models.memory.ADDRESSINGS)
    address_temperature: float = 0.0  # softmax temperature; 0: the rule 1 / ln(M - 1); 1: Gong's literal softmax

    @classmethod
    def legacy_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**super().legacy_values(values), "addressing": "cosine", "address_temperature": 1.0}

    @classmethod
    def paper(cls) -> MemAEConfig:
        # TrustMAE supplement, Appendix B: 256x256, 200 epochs, Adam 1e-4, M = 128, Z = 256. It names no
        # augmentation for this baseline; it gets TrustMAE's (flips and rotations, Appendix A), as compared.
        return cls(input_size=256, epochs=200, batch_size=16, lr=1e-4, pooling="max", augment=True,
                   rotate90=True, address_temperature=1.0)

    @classmethod
    def fast(cls) -> MemAEConfig:
        # Same sizing as TrustMAE's fast preset (128x128, 4 down-samplings -> 8x8 memory grid, widths / 2).
        return cls(input_size=128, downsamplings=4, base_channels=16, latent_dim=128, residual_blocks=2,
                   memory_slots=128, shrink_threshold=1.0 / 128, epochs=25, batch_size=8, lr=2e-4,
                   pooling="max", augment=True)


class MemAE(MemoryAutoencoder):
    """Encoder -> ShrinkageMemory -> decoder, inputs (N,C,S,S) in [0,1]. Maps: l2 (default), ssim, l1."""

    method = "memae"
    map_names = ("l2", "ssim", "l1")
    default_map = "l2"

    def build_memory(self) -> ShrinkageMemory:
        c = self.config
        return ShrinkageMemory(c.memory_slots, c.latent_dim, c.shrink_threshold, c.addressing, c.address_temperature)

    def phases(self) -> tuple[Phase, ...]:
        c = self.config
        return (Phase("train", c.epochs, (OptimizerSpec("total", (), c.lr, weight_decay=c.weight_decay),)),)

    def training_losses(self, batch: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        recon, readout = self(batch)
        mse = F.mse_loss(recon, batch * 2.0 - 1.0)
        entropy = entropy_loss(readout.weights)
        total = mse + self.config.entropy_weight * entropy
        self._observed = {**addressing_stats(readout.weights), "memory_temperature": self.memory.temperature,
                          "weighted_l2": float(mse.detach()),
                          "weighted_entropy": self.config.entropy_weight * float(entropy.detach())}
        return {"total": total, "l2": mse.detach(), "entropy": entropy.detach()}

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        recon = self.reconstruction(batch)
        return {name: self.residual_map(name, batch, recon) for name in self.map_names}, recon


register(MethodSpec(MemAE.method, "Memory AE with cosine addressing and hard shrinkage; L2 map "
                                  "(Gong et al., baseline)", MemAEConfig, MemAE))
