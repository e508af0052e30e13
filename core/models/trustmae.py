"""TrustMAE (Tan et al.): a memory-augmented autoencoder with sparse top-k addressing and trust-region
memory updates, scored by spatial perceptual distance x MSE.

Network (supplement Table 1): 7x7 stem, `downsamplings` stride-2 3x3 convs (5 in the paper, 3 for
fine-detail products), residual blocks, the memory on the bottleneck map, then a symmetric decoder of
residual blocks and 4x4 stride-2 transposed convs, a 7x7 conv and tanh. Images enter in [0,1] and are
mapped to [-1,1] inside, as the paper scales them.

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
from torch import nn

from core.models.base import AnomalyModel, FeatureScale, MethodConfig
from core.models.blocks import run_stages, stage_scales
from core.models.discriminator import (PatchDiscriminator, feature_matching_loss, hinge_discriminator_loss,
                                       hinge_generator_loss)
from core.features.loss import FeatureLoss
from core.models.memory import (MemoryReadout, TrustMemory, addressing_stats, margin_loss, trust_region_fractions,
                                trust_region_loss)
from core.models.registry import MethodSpec, register
from core.scoring.maps import l2_map, ssim_residual_map
from core.scoring.perceptual import available_backbone, perceptual_map
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
    trust_threshold: float = 20.0  # delta2 of Eq. 5
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
    def paper(cls) -> TrustMAEConfig:
        # Section 3.1 and supplement: 256x256, batch 16, 100 epochs, Adam 1e-4 (G) / 4e-4 (D), M = 64,
        # Z = 512, k = 3, delta2 = 20, VGG-19 feature loss, flips + rotations; max pooling scored best.
        return cls(input_size=256, epochs=100, batch_size=16, lr=1e-4, pooling="max", augment=True)

    @classmethod
    def fast(cls) -> TrustMAEConfig:
        # 2 CPU cores: 128x128 with 4 down-samplings keeps the paper's 8x8 memory grid (each location still
        # sees 1/8 of the image side); widths / 2, Z = 128. delta2 scales with sqrt(Z) because distances
        # between Z-dim features grow like sqrt(Z): 20 * sqrt(128 / 512) = 10. No GAN (it doubles the cost
        # and mostly sharpens), EfficientNet-Lite0 instead of VGG-19 for the feature loss.
        return cls(input_size=128, downsamplings=4, base_channels=16, latent_dim=128, residual_blocks=2,
                   trust_threshold=10.0, use_gan=False, feature_network="efficientnet", epochs=25,
                   batch_size=8, lr=2e-4, pooling="max", augment=True)


def level_widths(base_channels: int, latent_dim: int, downsamplings: int) -> list[int]:
    """Channels at each resolution level, stem first: base * 2^i capped at Z, the last level exactly Z.

    Paper (base 32, Z 512, 5 down-samplings): [32, 64, 128, 256, 512, 512], as in Table 1.
    """
    widths = [min(base_channels * 2**i, latent_dim) for i in range(downsamplings + 1)]
    widths[-1] = latent_dim
    return widths


def _conv_norm_relu(conv: nn.Module, channels: int, norm: type[nn.Module] = nn.BatchNorm2d) -> nn.Sequential:
    return nn.Sequential(conv, norm(channels, affine=True), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Table 1's residual block: x + ReLU(BN(Conv3x3(x))), shape preserved (N,C,h,w)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = _conv_norm_relu(nn.Conv2d(channels, channels, 3, 1, 1), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualEncoder(nn.Module):
    """(N,C,S,S) in [-1,1] -> bottleneck (N,Z,S/2^d,S/2^d). Shared by TrustMAE and MemAE."""

    def __init__(self, in_channels: int, widths: list[int], residual_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_norm_relu(nn.Conv2d(in_channels, widths[0], 7, 1, 3), widths[0])]
        for previous, width in zip(widths[:-1], widths[1:]):
            layers.append(_conv_norm_relu(nn.Conv2d(previous, width, 3, 2, 1), width))
        self.levels = len(layers)  # stem + down-samplings: the feature scales
        layers += [ResidualBlock(widths[-1]) for _ in range(residual_blocks)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def scales(self) -> tuple[FeatureScale, ...]:
        """The stem and each stride-2 stage (Conv -> BN -> ReLU), finest first."""
        convs = [stage[0] for stage in self.layers[:self.levels]]
        return stage_scales([c.out_channels for c in convs], [(c.kernel_size[0], c.stride[0]) for c in convs])

    def features(self, x: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """(N,C,S,S) in [-1,1] -> the output of the stem and of each stride-2 stage after BN and ReLU."""
        levels = self.levels if count is None else min(count, self.levels)
        return run_stages(self.layers, x, levels)


class ResidualDecoder(nn.Module):
    """Mirror of `ResidualEncoder`: (N,Z,h,w) -> (N,C,h*2^d,w*2^d) in [-1,1] (tanh).

    The last up-sampling uses instance norm, as Table 1 does.
    """

    def __init__(self, out_channels: int, widths: list[int], residual_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResidualBlock(widths[-1]) for _ in range(residual_blocks)]
        ups = list(zip(widths[:0:-1], widths[-2::-1]))  # (from, to) per level, deepest first
        for i, (previous, width) in enumerate(ups):
            norm = nn.InstanceNorm2d if i == len(ups) - 1 else nn.BatchNorm2d
            layers.append(_conv_norm_relu(nn.ConvTranspose2d(previous, width, 4, 2, 1), width, norm))
        layers += [nn.Conv2d(widths[0], out_channels, 7, 1, 3), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


def check_input_size(method: str, input_size: int, downsamplings: int) -> None:
    if downsamplings < 1 or input_size % 2**downsamplings:
        raise ValueError(f"{method} needs input_size divisible by 2^downsamplings = {2**max(downsamplings, 0)} "
                         f"(downsamplings >= 1), got input_size {input_size}, downsamplings {downsamplings}")


class TrustMAE(AnomalyModel):
    """Encoder -> TrustMemory (top-k) -> decoder. Maps: perceptual x MSE ("trustmae"), perceptual, l2, ssim."""

    method = "trustmae"
    map_names = ("trustmae", "perceptual", "l2", "ssim")
    default_map = "trustmae"

    def __init__(self, config: TrustMAEConfig) -> None:
        super().__init__(config)
        check_input_size(self.method, config.input_size, config.downsamplings)
        widths = level_widths(config.base_channels, config.latent_dim, config.downsamplings)
        self.encoder = ResidualEncoder(config.in_channels, widths, config.residual_blocks)
        self.memory = TrustMemory(config.memory_slots, config.latent_dim, config.top_k)
        self.decoder = ResidualDecoder(config.in_channels, widths, config.residual_blocks)
        self.discriminator = (PatchDiscriminator(config.in_channels, config.input_size, config.discriminator_width)
                              if config.use_gan else None)
        self._feature_loss: FeatureLoss | None = None  # built on first use: loads a frozen ImageNet network

    @property
    def feature_loss(self) -> FeatureLoss:
        if self._feature_loss is None:
            self._feature_loss = FeatureLoss(self.config.feature_network)
        return self._feature_loss

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, MemoryReadout]:
        """(N,C,S,S) in [0,1] -> (reconstruction (N,C,S,S) in [-1,1], MemoryReadout)."""
        readout = self.memory(self.encoder(x * 2.0 - 1.0))
        return self.decoder(readout.features), readout

    def feature_scales(self) -> tuple[FeatureScale, ...]:
        return self.encoder.scales()

    def encoder_features(self, images: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """(N,C,H,W) in [0,1], mapped to [-1,1] as in training -> stem and stride-2 stages after BN + ReLU."""
        return self.encoder.features(images * 2.0 - 1.0, count)

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
        parts = {
            "l1": F.l1_loss(recon, target),  # Eq. 10, on the [-1,1] images the network sees
            "ssim": ssim_loss(recon01, batch),  # Eq. 11 as 1 - SSIM, 11x11 window
            "margin": margin_loss(readout.distances, c.margin),  # Eq. 4
            "trust": trust_region_loss(readout.distances, c.trust_threshold),  # Eq. 6
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
                          **trust_region_fractions(readout.distances, c.trust_threshold), **weighted}
        losses["generator" if self.discriminator is not None else "total"] = total
        return {**losses, **{name: value.detach() for name, value in parts.items()}}

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        recon = (self(batch)[0] + 1.0) / 2.0
        perceptual = perceptual_map(batch, recon, self.config.perceptual_backbone)
        l2 = l2_map(batch, recon)
        # Section 2.3: the multiplicative combination highlights defects and suppresses normal regions.
        maps = {"trustmae": perceptual * l2, "perceptual": perceptual, "l2": l2,
                "ssim": ssim_residual_map(batch, recon)}
        return maps, recon

    def training_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"memory_usage": self.memory.memory_usage(),
                                 "perceptual_backbone": available_backbone(self.config.perceptual_backbone)}
        if self._feature_loss is not None:
            stats["feature_loss_network"] = self._feature_loss.description
        return stats


register(MethodSpec(TrustMAE.method, "Memory AE with sparse top-k addressing and trust-region memory updates; "
                                     "perceptual x MSE map (Tan et al.)", TrustMAEConfig, TrustMAE))
