"""AE-L2 and AE-SSIM: the convolutional autoencoder of Bergmann et al. (VISAPP 2019), the baseline the
seed papers compare against. Same network, two training losses (per-pixel L2, or 1 - SSIM)."""

from __future__ import annotations

import math
from dataclasses import dataclass
import torch
import torch.nn.functional as F
from torch import nn

from core.models.base import AnomalyModel, FeatureScale, MethodConfig
from core.models.blocks import ConvSpec, conv_stack, conv_transpose2d, run_stages, stage_scales, transposed_stack
from core.models.registry import MethodSpec, register
from core.scoring.ssim import ssim_loss
from core.models.phases import OptimizerSpec, Phase

# Bergmann et al. Table 1 for 128x128 inputs: 128 -> 8x8 feature map -> 1x1 latent of size d.
_ENCODER_128 = [
    ConvSpec(32, 4, 2, 1), ConvSpec(32, 4, 2, 1), ConvSpec(32, 3, 1, 1), ConvSpec(64, 4, 2, 1),
    ConvSpec(64, 3, 1, 1), ConvSpec(128, 4, 2, 1), ConvSpec(64, 3, 1, 1), ConvSpec(32, 3, 1, 1),
]


@dataclass(frozen=True)
class AEConfig(MethodConfig):
    latent_dim: int = 100

    @classmethod
    def fast(cls) -> AEConfig:
        # Whole image at 128x128, small batches: a few minutes on 2 CPU cores.
        return cls(input_size=128, resize_mode="resize", epochs=25, batch_size=16, lr=2e-4, weight_decay=1e-5)

    @classmethod
    def paper(cls) -> AEConfig:
        # Bergmann et al.: 128x128 patches, d = 100, batch 128, Adam 2e-4 with weight decay 1e-5,
        # 200 epochs, rotation/flip augmentation (rotations taken as multiples of 90 degrees).
        return cls(input_size=128, resize_mode="tile", tile_overlap=0.5, epochs=200, batch_size=128, lr=2e-4,
                   weight_decay=1e-5, latent_dim=100, augment=True, rotate90=True)


class ConvAutoencoder(AnomalyModel):
    """Encoder (N,C,S,S) -> latent (N,d,1,1) -> decoder (N,C,S,S), sigmoid output in [0,1].

    Inputs larger than 128 get one extra stride-2 layer per doubling, as Bergmann et al. do for 256.
    """

    loss_name = "l2"
    map_names = ("l2", "ssim", "l1")

    def __init__(self, config: AEConfig) -> None:
        super().__init__(config)
        size = config.input_size
        extra = math.log2(size / 128)
        if size < 128 or extra != int(extra):
            raise ValueError(f"{self.method} needs input_size 128, 256, 512, ... (128 * 2^k), got {size}")
        down = [ConvSpec(32, 4, 2, 1)] * int(extra) + _ENCODER_128
        up = list(reversed(down))
        encoder_channels = [config.in_channels] + [s.channels for s in down]
        decoder_layers = [ConvSpec(encoder_channels[i], s.kernel, s.stride, s.padding)
                          for i, s in zip(range(len(down) - 1, 0, -1), up[:-1])]
        self._scales = stage_scales([s.channels for s in down], [(s.kernel, s.stride) for s in down], "conv")
        pm = config.padding_mode
        self.encoder = nn.Sequential(conv_stack(config.in_channels, down, padding_mode=pm),
                                     nn.Conv2d(down[-1].channels, config.latent_dim, 8, 1, 0))
        self.decoder = nn.Sequential(  # the first layer expands the 1x1 code: nothing to pad there
            nn.ConvTranspose2d(config.latent_dim, down[-1].channels, 8, 1, 0), nn.LeakyReLU(0.2, inplace=True),
            transposed_stack(down[-1].channels, decoder_layers, padding_mode=pm),
            conv_transpose2d(down[0].channels, config.in_channels, 4, 2, 1, pm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))

    @torch.no_grad()
    def reconstruction(self, batch: torch.Tensor) -> torch.Tensor:
        return self(batch)

    def feature_scales(self) -> tuple[FeatureScale, ...]:
        """Every Conv + LeakyReLU layer of the encoder (the 1x1 latent code is not a scale)."""
        return self._scales

    def encoder_features(self, images: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """(N,C,H,W) in [0,1] (the range the autoencoder is trained on) -> each conv layer after its
        LeakyReLU, [(N,C_i,H/stride_i,W/stride_i)]."""
        layers = list(self.encoder[0])
        stages = [nn.Sequential(conv, act) for conv, act in zip(layers[::2], layers[1::2])]
        return run_stages(stages, images, count)

    def phases(self) -> tuple[Phase, ...]:
        c = self.config
        return (Phase("train", c.epochs, (OptimizerSpec("total", (), c.lr, weight_decay=c.weight_decay),)),)

    def training_losses(self, batch: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        recon = self(batch)
        l2 = F.mse_loss(recon, batch)
        if self.loss_name == "ssim":
            structural = ssim_loss(recon, batch, border=self.config.score_border)
            return {"total": structural, "ssim": structural, "l2": l2.detach()}
        return {"total": l2, "l2": l2}

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        recon = self(batch)
        return {name: self.residual_map(name, batch, recon) for name in self.map_names}, recon


class AutoencoderL2(ConvAutoencoder):
    method = "ae-l2"
    loss_name = "l2"
    default_map = "l2"


class AutoencoderSSIM(ConvAutoencoder):
    method = "ae-ssim"
    loss_name = "ssim"
    default_map = "ssim"


def _spec(model_cls: type[ConvAutoencoder], summary: str) -> MethodSpec:
    return MethodSpec(model_cls.method, summary, AEConfig, model_cls)


register(_spec(AutoencoderL2, "Convolutional autoencoder trained with per-pixel L2; L2 residual map (baseline)"))
register(_spec(AutoencoderSSIM, "Convolutional autoencoder trained with SSIM loss; 1-SSIM map (Bergmann et al.)"))
