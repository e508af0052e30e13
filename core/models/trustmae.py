"""TrustMAE (Tan et al.): a memory-augmented autoencoder with sparse top-k addressing and trust-region
memory updates, scored by spatial perceptual distance x MSE.

Network (supplement Table 1): 7x7 stem, `downsamplings` stride-2 3x3 convs (5 in the paper, 3 for
fine-detail products), residual blocks, the memory on the bottleneck map, then a symmetric decoder of
residual blocks and 4x4 stride-2 transposed convs, a 7x7 conv and tanh (`core.models.blocks`, shared with
MemAE). Images enter in [0,1] and are mapped to [-1,1] inside, as the paper scales them.

Conditional batch norm ("CBN" in Table 1): the paper does not say what it conditions on. The only
condition it could carry here is the product, as in class-conditional BN (per-class scale and shift).
DefectLab trains one model per product, so there is exactly one condition, and class-conditional BN with
one class is BatchNorm with a learned scale and shift; we therefore use plain `nn.BatchNorm2d`.
(Conditioning on the augmentation would leak the transform into a model that must not depend on it, and
conditioning the encoder on the memory readout is impossible: the encoder runs first.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from core.models.base import MethodConfig
from core.models.blocks import MemoryAutoencoder
from core.models.discriminator import (PatchDiscriminator, feature_matching_loss, hinge_discriminator_loss,
                                       hinge_generator_loss)
from core.features.loss import FeatureLoss
from core.models.memory import (TrustMemory, addressing_stats, margin_loss, trust_region_fractions, trust_region_loss,
                                trust_threshold_for)
from core.models.registry import MethodSpec, register
from core.scoring.perceptual import available_backbone, perceptual_mse_map
from core.scoring.ssim import ssim_loss
from core.models.phases import OptimizerSpec, Phase


@dataclass(frozen=True)
class TrustMAEConfig(MethodConfig):
    downsamplings: int = 5  # 5 in the paper; 3 for grid, screw, pill, capsule (fine detail)
    base_channels: int = 32  # stem width; each stride-2 layer doubles it, the last one gives latent_dim
    latent_dim: int = 512  # Z: memory item size = bottleneck channels
    residual_blocks: int = 3  # on each side of the memory
    memory_slots: int = 64  # M
    top_k: int = 3  # k of the sparse addressing
    margin: float = 1.0  # Eq. 4
    trust_threshold: float = 20.0  # delta2 of Eq. 5 with trust_threshold_rule "fixed"
    # "quantile": delta2 = the trust_quantile quantile of the batch's distances to the closest item (see
    # core.models.memory); "fixed": trust_threshold as printed. 0.95 ignores the farthest 5 % of locations,
    # more than the patch-level share of defects in a training set with 40 % defective images (the paper's
    # highest noise level) whose defects cover up to a tenth of the image (4 %).
    trust_threshold_rule: str = "quantile"
    trust_quantile: float = 0.95
    use_gan: bool = True  # hinge GAN + feature matching with the Table 2 discriminator
    discriminator_width: float = 1.0  # scale of Table 2's channel counts
    discriminator_lr: float = 4e-4
    feature_network: str = "auto"  # perceptual loss: "auto"/"vgg19" (VGG-19 if its file is local), "efficientnet"
    perceptual_backbone: str = "auto"  # scoring map, see core.scoring.perceptual
    weight_rec: float = 10.0
    weight_ssim: float = 10.0
    weight_feature: float = 10.0  # 0 switches the perceptual loss off
    weight_gan: float = 1.0
    weight_gan_feature: float = 10.0
    weight_margin: float = 0.1
    weight_trust: float = 1.0

    @classmethod
    def legacy_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**super().legacy_values(values), "trust_threshold_rule": "fixed"}

    @classmethod
    def paper(cls) -> TrustMAEConfig:
        # Section 3.1 and supplement: 256x256, batch 16, 100 epochs, Adam 1e-4 (G) / 4e-4 (D), M = 64,
        # Z = 512, k = 3, delta2 = 20 (fixed), VGG-19 feature loss, Eq. 8's uncalibrated perceptual
        # distance; max pooling scored best. Appendix A: "horizontal
        # flips, vertical flips, and random rotations", except for fixed-orientation products (the angles
        # are not given; here multiples of 90 degrees).
        return cls(input_size=256, epochs=100, batch_size=16, lr=1e-4, pooling="max", augment=True,
                   rotate90=True, trust_threshold_rule="fixed", perceptual_calibration="none")

    @classmethod
    def fast(cls) -> TrustMAEConfig:
        # 2 CPU cores: 128x128 with 4 down-samplings keeps the paper's 8x8 memory grid (each location still
        # sees 1/8 of the image side); widths / 2, Z = 128. delta2 scales with sqrt(Z) because distances
        # between Z-dim features grow like sqrt(Z): 20 * sqrt(128 / 512) = 10 (used with
        # trust_threshold_rule "fixed"; the default takes delta2 from the distances). No GAN (it doubles the
        # cost and mostly sharpens), EfficientNet-Lite0 instead of VGG-19 for the feature loss.
        return cls(input_size=128, downsamplings=4, base_channels=16, latent_dim=128, residual_blocks=2,
                   trust_threshold=10.0, use_gan=False, feature_network="efficientnet", epochs=25,
                   batch_size=8, lr=2e-4, pooling="max", augment=True)


class TrustMAE(MemoryAutoencoder):
    """Encoder -> TrustMemory (top-k) -> decoder. Maps: perceptual x MSE ("trustmae"), perceptual, l2, ssim."""

    method = "trustmae"
    map_names = ("trustmae", "perceptual", "l2", "ssim")
    default_map = "trustmae"

    def __init__(self, config: TrustMAEConfig) -> None:
        super().__init__(config)
        self.discriminator = (PatchDiscriminator(config.in_channels, config.input_size, config.discriminator_width)
                              if config.use_gan else None)
        self._feature_loss: FeatureLoss | None = None  # built on first use: loads a frozen ImageNet network

    def build_memory(self) -> TrustMemory:
        c = self.config
        return TrustMemory(c.memory_slots, c.latent_dim, c.top_k)

    @property
    def feature_loss(self) -> FeatureLoss:
        if self._feature_loss is None:
            # The loss network's border follows the model's: reflect margin unless padding_mode is "zeros".
            self._feature_loss = FeatureLoss(self.config.feature_network, self.config.padding_mode != "zeros")
        return self._feature_loss

    def phases(self) -> tuple[Phase, ...]:
        c = self.config
        if not c.use_gan:
            return (Phase("train", c.epochs, (OptimizerSpec("total", (), c.lr, weight_decay=c.weight_decay),)),)
        # Generator first, then the discriminator, each with its own Adam (TTUR: 1e-4 / 4e-4).
        return (Phase("train", c.epochs, (
            OptimizerSpec("generator", ("encoder", "memory", "decoder"), c.lr, (0.5, 0.999), c.weight_decay),
            OptimizerSpec("discriminator", ("discriminator",), c.discriminator_lr, (0.5, 0.999)),
        )),)

    def training_losses(self, batch: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        """Eq. 9: weighted L1 + SSIM + feature + GAN + GAN feature + margin + trust. Minimized keys: "total"
        (no GAN) or "generator" and "discriminator"; the others are logged."""
        c = self.config
        target = batch * 2.0 - 1.0
        recon, readout = self(batch)
        recon01 = (recon + 1.0) / 2.0
        delta2 = trust_threshold_for(readout.distances, c.trust_threshold_rule, c.trust_threshold, c.trust_quantile)
        parts = {
            "l1": F.l1_loss(recon, target),  # Eq. 10, on the [-1,1] images the network sees
            "ssim": ssim_loss(recon01, batch, border=c.score_border),  # Eq. 11 as 1 - SSIM, 11x11 window
            "margin": margin_loss(readout.distances, c.margin),  # Eq. 4
            "trust": trust_region_loss(readout.distances, delta2),  # Eq. 6
        }
        if c.weight_feature > 0:
            parts["feature"] = self.feature_loss(batch, recon01)  # Eq. 12
        weights = {"l1": c.weight_rec, "ssim": c.weight_ssim, "margin": c.weight_margin, "trust": c.weight_trust,
                   "feature": c.weight_feature, "gan": c.weight_gan, "gan_feature": c.weight_gan_feature}
        losses: dict[str, torch.Tensor] = {}
        if self.discriminator is not None:
            real_logits, real_features = self.discriminator(target)
            fake_logits, fake_features = self.discriminator(recon)
            parts["gan"] = hinge_generator_loss(fake_logits)  # Eq. 14
            parts["gan_feature"] = feature_matching_loss(real_features, fake_features)  # Eq. 15
            # The discriminator sees a detached reconstruction: its step must not reach the generator,
            # whose weights the engine has already updated in place by then.
            losses["discriminator"] = hinge_discriminator_loss(real_logits, self.discriminator(recon.detach())[0])
        total = sum(weights[name] * value for name, value in parts.items())
        weighted = {f"weighted_{name}": weights[name] * float(value.detach()) for name, value in parts.items()}
        self._observed = {**addressing_stats(readout.weights),
                          **trust_region_fractions(readout.distances, delta2), **weighted}
        losses["generator" if self.discriminator is not None else "total"] = total
        return {**losses, **{name: value.detach() for name, value in parts.items()}}

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        recon = self.reconstruction(batch)
        perceptual = self.perceptual_distance(batch, recon)
        maps = {"trustmae": perceptual_mse_map(batch, recon, perceptual=perceptual), "perceptual": perceptual,
                "l2": self.residual_map("l2", batch, recon), "ssim": self.residual_map("ssim", batch, recon)}
        return maps, recon

    def training_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {**super().training_stats(),
                                 "perceptual_backbone": available_backbone(self.config.perceptual_backbone)}
        if self._feature_loss is not None:
            stats["feature_loss_network"] = self._feature_loss.description
        return stats


register(MethodSpec(TrustMAE.method, "Memory AE with sparse top-k addressing and trust-region memory updates; "
                                     "perceptual x MSE map (Tan et al.)", TrustMAEConfig, TrustMAE))
