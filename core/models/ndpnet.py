"""NDP-Net: normal reference attention and defective feature perception network (Luo, Yao, Yu, arXiv
2211.10060 / IEEE TIM 2023).

Network (`core.models.ndpnet_blocks`, `core.models.reference_attention`): a 5-level encoder trained from
scratch; on levels 3-5 the reference-based attention module (RBAM: RBFRM at K = 2 and 4 against the
features of one fixed defect-free reference image, fused with the input by the FFM gate); a decoder fed
by level 5 with skips from levels 3-4; the MSDSM, three heads on concat(Phi_i(I), Phi_i(I^)) of levels 1-3.

Training, three phases of the shared engine:
- phase1, encoder + decoder: 100 MSE + 1 perceptual + 1 L_def_per (Eqs. 12-14), on Eq. 1 anomalies (every
  sample defective: L_def_per needs a mask); the decoder reads the clean image's features.
- reference, no gradient: the encoder's global level-5 descriptor of every training image; the image
  nearest their mean (a feature-space medoid) becomes the reference, stored in the model (buffer
  `reference`). The paper does not say how it chose its reference; `set_reference` and
  `set_reference_from_path` (AnomalyModel) replace it.
- phase2, encoder frozen: RBAM + decoder + MSDSM, 100 MSE + 1 perceptual + 1 L_fea_rep + 1 L_seg (Eq. 17),
  a share `clean_share` of the samples left clean (mask 0) so the heads learn to stay silent.

Declared choices where the paper is silent or literal reading fails (README "NDP-Net"): softmax
temperature 10 in Eq. 4 (`temperature`); per-sample min-max for N(.) in Eq. 2; means, not sums, in every
norm (the weight 100 on the MSE only makes sense with means); L_fea_rep as the mean over levels 3-5 (Eq. 9's
1/(l2 - l1) = 1/2 over three terms is a constant the weight absorbs); focal loss gamma 2, no alpha; mean
then median filter. The anomaly source I_n (ImageNet in the paper, not available offline) is
`defect_source`: procedural textures, heavily augmented crops of other training images of the batch
("self"), or a user folder of photos ("folder"). Perceptual loss: VGG-16 relu1_1..relu3_1 when
torchvision's file is local, else the bundled EfficientNet-Lite0 feature loss (`core.features.loss`).

Maps: "msdsm" (Eq. 11 + 5x5 mean + median filter, default; image score = its max), "am1".."am3" (each
head, upsampled), "l2" and "perceptual" (reconstruction residuals; "perceptual" is left out when
perceptual_backbone is "none", as in the fast preset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.data.io import is_image_path, read_image
from core.data.preprocess import ResizePolicy, working_image
from core.features.loss import FeatureLoss
from core.models.base import AnomalyModel, FeatureScale, MethodConfig
from core.models.ndpnet_blocks import (LEVELS, Decoder, Encoder, SegmentationHeads, area_mask,
                                       defect_perception_loss, final_map, focal_loss)
from core.models.phases import OptimizerSpec, Phase
from core.models.reference_attention import ReferenceAttention, medoid_index
from core.models.registry import MethodSpec, register
from core.scoring.maps import l2_map
from core.synth.sources import perlin_replacement

DEFECT_SOURCES = ("procedural", "self", "folder")
FOLDER_IMAGES = 256  # at most this many photos of a defect folder are kept in memory


@dataclass(frozen=True)
class NDPNetConfig(MethodConfig):
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)  # channels of encoder levels 1-5
    temperature: float = 10.0  # softmax scale of Eq. 4; 1 is the literal equation (near-uniform weights)
    patch_sizes: tuple[int, ...] = (2, 4)  # K of the RBFRMs (paper: 2 and 4; one size: the K ablations)
    ffm_channels: int = 64  # the FFM's squeezed width (paper: 64)
    rbam: bool = True  # False: the decoder reads the unrepaired features (ablation "without RBAM")
    phase1_share: float = 2 / 3  # of `epochs` (paper: 400 of 400 + 200)
    clean_share: float = 0.5  # phase 2 samples left without a defect
    defect_source: str = "procedural"  # "procedural", "self" (other training images), "folder"
    defect_folder: str = ""  # images for defect_source "folder" (e.g. DTD or ImageNet photos)
    opacity_max: float = 0.0  # beta ~ U(0, opacity_max) of the blend; 0 = Eq. 1's full replacement
    feature_network: str = "vgg16"  # perceptual loss: VGG-16 when its file is local, else EfficientNet-Lite0
    perceptual_backbone: str = "auto"  # the "perceptual" map (core.scoring.perceptual); "none": no such map
    focal_gamma: float = 2.0
    weight_rec: float = 100.0
    weight_perceptual: float = 1.0  # 0 switches the perceptual loss off
    weight_def_per: float = 1.0  # 0: ablation "without L_def_per"
    weight_fea_rep: float = 1.0
    weight_seg: float = 1.0

    @classmethod
    def paper(cls) -> NDPNetConfig:
        # Sec. IV-A: 256 x 256, Adam 1e-4, weight decay 1e-5, 400 + 200 epochs. Batch 8 (not given; DRAEM's).
        # No augmentation besides the synthetic defects (the paper names none).
        return cls(input_size=256, epochs=600, phase1_share=2 / 3, batch_size=8, lr=1e-4, weight_decay=1e-5,
                   augment=False, pooling="max")

    @classmethod
    def fast(cls) -> NDPNetConfig:
        # 2 CPU cores: 128 x 128 (level 5 is 8 x 8, so K = 4 still has 4 reference patches), a quarter of the
        # widths, the bundled feature loss, no perceptual map. See README for the budget it needs.
        return cls(input_size=128, widths=(8, 16, 32, 64, 64), ffm_channels=16, epochs=30, phase1_share=2 / 3,
                   batch_size=8, lr=1e-3, weight_decay=1e-5, feature_network="efficientnet",
                   perceptual_backbone="none", augment=True, pooling="max")

    def phase_epochs(self) -> tuple[int, int]:
        """(phase 1, phase 2) epochs out of `epochs`; each gets at least one when epochs >= 2."""
        first = min(max(round(self.epochs * self.phase1_share), 1), max(self.epochs - 1, 1))
        return first, self.epochs - first


class NDPNet(AnomalyModel):
    """Encoder -> RBAM (levels 3-5) -> decoder -> encoder again -> MSDSM; inputs (N,C,S,S) in [0,1].

    Sub-modules (the names the phases use): encoder, rbam, decoder, msdsm.
    """

    method = "ndpnet"
    map_names = ("msdsm", "am1", "am2", "am3", "l2", "perceptual")
    default_map = "msdsm"
    uses_reference = True

    def __init__(self, config: NDPNetConfig) -> None:
        super().__init__(config)
        _check(config)
        c = config
        self.encoder = Encoder(c.in_channels, c.widths, c.padding_mode)
        self.rbam = nn.ModuleList(ReferenceAttention(w, c.temperature, tuple(c.patch_sizes), c.ffm_channels)
                                  for w in c.widths[2:])
        self.decoder = Decoder(c.in_channels, c.widths, c.padding_mode)
        self.msdsm = SegmentationHeads(c.widths, c.padding_mode)
        self.register_buffer("reference", torch.zeros(1, c.in_channels, c.input_size, c.input_size))
        self.register_buffer("reference_ready", torch.zeros((), dtype=torch.bool))
        self.feature_loss = (FeatureLoss(c.feature_network, c.padding_mode != "zeros") if c.weight_perceptual > 0
                             else None)
        self._candidates: list[tuple[torch.Tensor, torch.Tensor]] = []  # (descriptors, uint8 images)
        self._folder: list[np.ndarray] | None = None
        if c.perceptual_backbone == "none":
            self.map_names = self.map_names[:-1]  # per model: the metadata records what this one returns

    # --- network --------------------------------------------------------------------------------------------

    def encode(self, images: torch.Tensor, count: int = LEVELS) -> list[torch.Tensor]:
        """Images (N,C,H,W) in [0,1] -> the first `count` encoder levels (input mapped to [-1,1])."""
        return self.encoder(images * 2.0 - 1.0, count)

    def reference_features(self) -> list[torch.Tensor]:
        """Encoder levels 3-5 of the reference image, (1,C_l,H_l,W_l) each, without gradient."""
        # The check reads a buffer's value, which an exported graph cannot branch on; a model is exported
        # from its file, and a trained one always holds its reference.
        if not torch.compiler.is_exporting() and not bool(self.reference_ready):
            raise ValueError("ndpnet has no reference image yet: train it, or set one with set_reference")
        with torch.no_grad():
            return self.encode(self.reference)[2:]

    def reconstruct(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Five encoder levels of an image -> (reconstruction (N,C,S,S) in [0,1], F_out of levels 3-5)."""
        deep = features[2:]
        if self.config.rbam:
            deep = [module(f, r) for module, f, r in zip(self.rbam, deep, self.reference_features())]
        return self.decoder(deep[2], deep[1], deep[0]), deep

    def segment(self, image_features: list[torch.Tensor], recon: torch.Tensor) -> list[torch.Tensor]:
        """MSDSM logits [(N,1,H_i,W_i)], i = 1..3, from the image's encoder levels (at least 3; the ones its
        reconstruction was made from, so they are computed once) and its reconstruction (N,C,S,S)."""
        return self.msdsm(image_features[:3], self.encode(recon, 3))

    # --- reference image ------------------------------------------------------------------------------------

    def reference_image(self) -> torch.Tensor | None:
        """The reference (C,S,S) in [0,1], or None before training has chosen one."""
        return self.reference[0].detach().clone() if bool(self.reference_ready) else None

    @torch.no_grad()
    def set_reference(self, image: torch.Tensor) -> None:
        """Use `image` (C,H,W) or (1,C,H,W) in [0,1], any size and channel count, as the reference."""
        image = image.reshape(1, *image.shape[-3:]).to(self.reference)
        if image.shape[1] != self.reference.shape[1]:
            image = image.mean(dim=1, keepdim=True) if self.reference.shape[1] == 1 else image[:, :1].expand(-1, 3, -1, -1)
        if image.shape[-2:] != self.reference.shape[-2:]:
            image = F.interpolate(image, size=self.reference.shape[-2:], mode="bilinear", align_corners=False)
        self.reference.copy_(image.clamp(0.0, 1.0))
        self.reference_ready.fill_(True)

    def collect(self, batch: torch.Tensor, phase: str) -> None:
        descriptors = self.encode(batch)[-1].mean(dim=(2, 3))  # global average of level 5
        self._candidates.append((descriptors.cpu(), (batch * 255.0).round().to(torch.uint8).cpu()))

    def finalize(self, phase: str) -> None:
        if not self._candidates:
            raise ValueError("ndpnet saw no training images to choose a reference from")
        descriptors = torch.cat([d for d, _ in self._candidates])
        images = torch.cat([im for _, im in self._candidates])
        self._candidates = []
        self.set_reference(images[medoid_index(descriptors)].float() / 255.0)

    # --- training ------------------------------------------------------------------------------------------

    def phases(self) -> tuple[Phase, ...]:
        c = self.config
        first, second = c.phase_epochs()

        def adam(modules: tuple[str, ...]) -> OptimizerSpec:
            return OptimizerSpec("total", modules, c.lr, weight_decay=c.weight_decay)

        repairing = ("rbam", "decoder", "msdsm") if c.rbam else ("decoder", "msdsm")
        reference = (Phase("reference", 1, frozen=("encoder",)),) if c.rbam else ()
        return (Phase("phase1", first, (adam(("encoder", "decoder")),)), *reference,
                Phase("phase2", second, (adam(repairing),), frozen=("encoder",)))

    def training_losses(self, batch: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        if phase not in ("phase1", "phase2"):
            raise ValueError(f"ndpnet has no gradient phase {phase!r}")
        c = self.config
        defective, mask = self.synthesize(batch, 0.0 if phase == "phase1" else c.clean_share)
        if phase == "phase1":
            clean = self.encode(batch)
            recon = self.decoder(clean[4], clean[3], clean[2])
            terms = {"mse": F.mse_loss(recon, batch),
                     "def_per": defect_perception_loss(clean, self.encode(defective), mask)}
        else:
            with torch.no_grad():
                target = self.encode(batch)[2:]  # F_o of Eq. 9
            features = self.encode(defective)
            recon, repaired = self.reconstruct(features)
            logits = self.segment(features, recon)
            terms = {"mse": F.mse_loss(recon, batch),
                     "fea_rep": torch.stack([F.mse_loss(f, t) for f, t in zip(repaired, target)]).mean(),
                     "seg": torch.stack([focal_loss(l, area_mask(mask, tuple(l.shape[-2:])), c.focal_gamma)
                                         for l in logits]).mean()}
        if self.feature_loss is not None:
            terms["perceptual"] = self.feature_loss(batch, recon)
        weights = {"mse": c.weight_rec, "perceptual": c.weight_perceptual, "def_per": c.weight_def_per,
                   "fea_rep": c.weight_fea_rep, "seg": c.weight_seg}
        total = sum((weights[k] * v for k, v in terms.items()), start=batch.new_zeros(()))
        self._observed = {f"weighted_{k}": weights[k] * float(v.detach()) for k, v in terms.items()}
        if phase == "phase2" and c.rbam:
            for key in self.rbam[0].last:
                self._observed[key] = float(np.mean([m.last[key] for m in self.rbam]))
        return {"total": total, **{k: v.detach() for k, v in terms.items()}}

    def synthesize(self, batch: torch.Tensor, clean_share: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1 anomalies of a batch (N,C,S,S) in [0,1] -> (images (N,C,S,S), masks (N,1,S,S) in {0,1}).

        A share `clean_share` of the samples stays clean with an empty mask. Seeded from torch's RNG, which
        the engine reseeds before every step, so training stays deterministic.
        """
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        images = list(batch.detach().cpu().numpy())
        out, masks = [], []
        for i, image in enumerate(images):
            if rng.random() < clean_share:
                out.append(image)
                masks.append(np.zeros(image.shape[1:], bool))
                continue
            if self.config.defect_source == "procedural":
                anomalous, mask = perlin_replacement(image, rng, "procedural", opacity_max=self.config.opacity_max)
            else:
                pool = self._folder_images() if self.config.defect_source == "folder" else (
                    images[:i] + images[i + 1:] or [image])
                anomalous, mask = perlin_replacement(image, rng, "images", pool, opacity_max=self.config.opacity_max)
            out.append(anomalous)
            masks.append(mask)
        to_tensor = lambda a: torch.from_numpy(np.stack(a).astype(np.float32)).to(batch.device)  # noqa: E731
        return to_tensor(out), to_tensor(masks)[:, None]

    def _folder_images(self) -> list[np.ndarray]:
        """The photos of `defect_folder` (at most FOLDER_IMAGES), read once, resized to input_size."""
        if self._folder is None:
            folder = Path(self.config.defect_folder).expanduser()
            paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))[:FOLDER_IMAGES]
            if not paths:
                raise ValueError(f"defect_folder {folder} holds no images; give a folder of photos (e.g. DTD) "
                                 "or use defect_source procedural")
            size = self.config.input_size
            self._folder = [working_image(read_image(p), ResizePolicy("resize", size))
                            for p in paths]
        return self._folder

    def observability(self) -> dict[str, float]:
        """Weighted loss terms; in phase 2 also the RBFRM attention sharpness (mean top weight of a
        softmax row per K: 1/Q is uniform, 1 a hard match) and the mean FFM gate per branch."""
        return dict(self._observed)

    # --- scoring ------------------------------------------------------------------------------------------

    def feature_scales(self) -> tuple[FeatureScale, ...]:
        return self.encoder.scales()

    def encoder_features(self, images: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """Encoder levels of images (N,C,H,W) in [0,1], mapped to [-1,1] as in training, after BN + LeakyReLU."""
        return self.encode(images, LEVELS if count is None else min(count, LEVELS))

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        features = self.encode(batch)
        recon, _ = self.reconstruct(features)
        heads = [torch.sigmoid(l) for l in self.segment(features, recon)]
        size = tuple(batch.shape[-2:])
        maps = {"msdsm": final_map(heads, size)}
        for i, head in enumerate(heads):
            maps[f"am{i + 1}"] = F.interpolate(head, size=size, mode="bilinear", align_corners=False)
        maps["l2"] = l2_map(batch, recon)
        if "perceptual" in self.map_names:
            maps["perceptual"] = self.perceptual_distance(batch, recon)
        return maps, recon


def _check(c: NDPNetConfig) -> None:
    if len(c.widths) != LEVELS:
        raise ValueError(f"ndpnet needs {LEVELS} encoder widths, got {c.widths}")
    if len(c.patch_sizes) not in (1, 2) or len(set(c.patch_sizes)) != len(c.patch_sizes) or min(c.patch_sizes) < 1:
        raise ValueError(f"ndpnet needs one or two different RBFRM patch sizes (paper: 2, 4), got {c.patch_sizes}")
    side = 2 ** (LEVELS - 1) * max(c.patch_sizes)
    if c.input_size % side:
        raise ValueError(f"ndpnet needs input_size divisible by {side} (level 5 must split into "
                         f"{max(c.patch_sizes)} x {max(c.patch_sizes)} patches), got {c.input_size}")
    if c.defect_source not in DEFECT_SOURCES:
        raise ValueError(f"unknown defect_source {c.defect_source!r}; choose one of {', '.join(DEFECT_SOURCES)}")
    if c.defect_source == "folder" and not Path(c.defect_folder).expanduser().is_dir():
        raise ValueError(f"defect_source folder needs defect_folder to be a folder of images, got "
                         f"{c.defect_folder!r}")
    if not 0.0 < c.phase1_share < 1.0:
        raise ValueError(f"phase1_share must be between 0 and 1, got {c.phase1_share}")
    if not 0.0 <= c.clean_share < 1.0:
        raise ValueError(f"clean_share must be in [0, 1), got {c.clean_share}")


register(MethodSpec(NDPNet.method, "Encoder with pixel-level defect perception, reference-based attention on "
                                   "the deep levels, multi-scale segmentation heads; two-phase training (NDP-Net)",
                    NDPNetConfig, NDPNet))
