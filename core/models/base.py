"""What every method provides: a frozen config with `paper` and `fast` presets, and an `nn.Module` that
knows its training phases, its losses and its anomaly maps. Training glue lives in core.training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from core.data.io import read_image
from core.data.preprocess import ResizePolicy, working_image
from core.models.phases import Phase
from core.scoring.maps import RECONSTRUCTION_MAPS
from core.scoring.perceptual import LayerStats, layer_scale, perceptual_layers, perceptual_map
from core.scoring.scorers import extra_maps
from core.scoring.ssim import ssim_map


@dataclass(frozen=True)
class MethodConfig:
    """Settings shared by all methods. Subclasses add their own fields and override `paper`/`fast`."""

    in_channels: int = 1
    input_size: int = 128
    resize_mode: str = "resize"  # "resize": whole image to input_size; "tile": tiles of input_size
    tile_scale: float = 1.0  # tile mode: the image is scaled by this before tiling
    tile_overlap: float = 0.25
    epochs: int = 40
    batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 0.0
    augment: bool = True  # random horizontal and vertical flips of the training crops
    # Random 90-degree rotations on top (only with `augment`). Off by default: a rotation turns the striation
    # or grain of an orientation-fixed texture by 90 degrees, which the product never shows; the paper
    # presets switch it on where the paper rotates.
    rotate90: bool = False
    # Padding of the convolutions in the method's networks (core.models.blocks.PADDING_MODES). "reflect"
    # (default): a border pixel sees a mirrored neighbourhood, statistically like an interior one; "zeros" is
    # what the papers' networks use, which makes every border reconstruct worse than the interior.
    padding_mode: str = "reflect"
    # Normalisation of the perceptual distance's layers (core.scoring.perceptual.CALIBRATIONS), measured on
    # the training images once training has ended and stored in the model file. "position" (default): each
    # layer's distance divided by its standard deviation on normal images at that position; "layer": by its
    # standard deviation over the image; "none": the uncalibrated sum (TrustMAE Eq. 8 as printed).
    perceptual_calibration: str = "position"
    # Border rule of the scoring (core.scoring.perceptual.BORDERS): "neutral" (default) gives border pixels
    # the statistics of interior ones in the SSIM map (full windows only, core.scoring.ssim) and in the
    # perceptual distance (reflect margin before the network); "padded": the earlier padded windows.
    score_border: str = "neutral"
    pooling: str = "max_smoothed"  # how an anomaly map becomes an image score
    scorers: tuple[str, ...] = ()  # post-hoc maps from the scorer registry added to the method's own

    @classmethod
    def fast(cls) -> MethodConfig:
        return cls()

    @classmethod
    def paper(cls) -> MethodConfig:
        return cls()

    @property
    def policy(self) -> ResizePolicy:
        return ResizePolicy(mode=self.resize_mode, size=self.input_size, scale=self.tile_scale,
                            overlap=self.tile_overlap)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def legacy_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """What a setting that did not exist yet meant in a stored config without it (older model files and
        checkpoints): the behaviour those files were trained with, not today's default. Subclasses add their
        own and call this one."""
        return {"rotate90": bool(values.get("augment", True)),  # `augment` used to rotate as well
                "padding_mode": "zeros", "perceptual_calibration": "none", "score_border": "padded"}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MethodConfig:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{cls.__name__} has no setting {', '.join(unknown)}")
        legacy = {k: v for k, v in cls.legacy_values(values).items() if k in names and k not in values}
        if "score_border" in legacy and values.get("pooling") == "max_smoothed":
            legacy["pooling"] = "max_smoothed_padded"  # what "max_smoothed" meant before border-neutral pooling
        # JSON turns tuples into lists; frozen configs keep tuples so they stay hashable.
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in {**values, **legacy}.items()}
        return cls(**fixed)


@dataclass(frozen=True)
class FeatureScale:
    """One encoder scale a method exposes. For an input (N,C,H,W) its features are (N,channels,H/stride,
    W/stride); `receptive_field` is the side, in input pixels, that one feature location sees."""

    name: str
    channels: int
    stride: int
    receptive_field: int


@dataclass
class Step:
    """One step of an iterative inference, for a batch of N images (N,C,S,S) in [0,1].

    `mask` (N,1,S,S) in {0,1} marks the pixels this step generated afresh, `reconstruction` (N,C,S,S) in
    [0,1] is the image after the step, `maps` holds the step's anomaly maps {name: (N,1,S,S)}. `index` counts
    from 0; `total` is the most steps the inference can take (it may stop earlier).
    """

    name: str
    index: int
    total: int
    mask: torch.Tensor
    reconstruction: torch.Tensor
    maps: dict[str, torch.Tensor]


class AnomalyModel(nn.Module):
    """Base of every method. Inputs are images (N,C,S,S) in [0,1] at `config.input_size`."""

    method: ClassVar[str] = ""
    map_names: ClassVar[tuple[str, ...]] = ()  # the anomaly maps `predict` returns
    default_map: ClassVar[str] = ""  # the map that gives the image score and verdict
    reconstructs: ClassVar[bool] = True  # predict returns a reconstruction (post-hoc scorers need one)
    # What the network does to its [0,1] input (recorded in exported files; inference always feeds [0,1]).
    input_normalisation: ClassVar[str] = "none: the network reads [0,1]"
    # Why inference is not one forward pass that ONNX can hold (e.g. an iterative loop); "" when it exports.
    export_blocker: ClassVar[str] = ""
    # The method compares every input with one defect-free reference image (`reference_image`,
    # `set_reference`); the workbench offers to replace it.
    uses_reference: ClassVar[bool] = False

    # Config settings that a training phase tunes, each with the scalar buffer that holds the value in use
    # (the config keeps the value it started from), e.g. I3AD's mask threshold u.
    tuned_buffers: ClassVar[dict[str, str]] = {}

    def __init__(self, config: MethodConfig) -> None:
        super().__init__()
        self.config = config
        self._observed: dict[str, float] = {}  # set by training_losses, see `observability`
        if self.reconstructs:
            # (L,2,S,S) per-layer, per-position (mean, std) of the perceptual distance on the training images,
            # measured by `calibrate_perceptual` after training and kept in the model file; empty until then.
            self.register_buffer("perceptual_stats", torch.zeros(0, 2, 1, 1))

    def phases(self) -> tuple[Phase, ...]:
        raise NotImplementedError

    def training_losses(self, batch: torch.Tensor, phase: str) -> dict[str, Any]:
        """Scalar losses for one batch (N,C,S,S). Keys named by the phase's optimizers are minimized;
        every other key is only logged.

        A minimized key may instead hold a callable without arguments that returns such a dict (holding at
        least that key): the engine calls it only when that optimizer's turn comes, after the earlier
        optimizers of the step have updated their weights, and logs every tensor it returns. An adversarial
        method uses it to step its discriminator first and then its generator against the updated one."""
        raise NotImplementedError

    def collect(self, batch: torch.Tensor, phase: str) -> None:
        """Non-gradient phases: take in one batch (e.g. add features to a memory bank)."""
        raise NotImplementedError(f"{type(self).__name__} has no non-gradient phase")

    def finalize(self, phase: str) -> None:
        """Non-gradient phases: called once after the last batch."""

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Anomaly maps {name: (N,1,S,S)} and the reconstruction (N,C,S,S) in [0,1], or None for
        methods that do not reconstruct."""
        raise NotImplementedError

    def steps(self, batch: torch.Tensor) -> Iterator[Step] | None:
        """The intermediate steps of `predict` for images (N,C,S,S) in [0,1], one `Step` at a time (so a
        caller can show progress and stop between steps), or None for methods whose inference is one pass."""
        return None

    @property
    def all_map_names(self) -> tuple[str, ...]:
        """The method's own maps, then the post-hoc scorers its config adds."""
        return self.map_names + tuple(n for n in self.config.scorers if n not in self.map_names)

    @torch.no_grad()
    def score(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """`predict` plus the maps of `config.scorers`: every map in `all_map_names`, (N,1,S,S) each."""
        maps, recon = self.predict(batch)
        if self.config.scorers:
            maps.update(extra_maps(self, self.config.scorers, batch, recon, maps))
        return maps, recon

    # --- reference image (methods with `uses_reference`) --------------------------------------------------

    def reference_image(self) -> torch.Tensor | None:
        """A copy of the reference image (C,S,S) in [0,1], S = `config.input_size`; None for methods without
        one, or while none is chosen yet."""
        return None

    def set_reference(self, image: torch.Tensor) -> None:
        """Use `image` (C,H,W) or (1,C,H,W) in [0,1] as the reference image; ValueError for methods without one."""
        raise self._no_reference()

    def _no_reference(self) -> ValueError:
        return ValueError(f"{self.method or type(self).__name__} uses no reference image, so none can be set; "
                          "only methods that compare inputs with a reference image take one")

    def set_reference_from_path(self, path: str | Path) -> None:
        """Make the image file at `path` the reference, prepared as training images are (resized, or in tile
        mode scaled and centre-cropped to one tile). The file is only read; an unreadable one is an
        ImageReadError naming it."""
        if not self.uses_reference:
            raise self._no_reference()  # before the file is read
        image = working_image(read_image(path), self.config.policy)
        size = self.config.input_size
        top, left = (image.shape[1] - size) // 2, (image.shape[2] - size) // 2
        self.set_reference(torch.from_numpy(np.ascontiguousarray(image[:, top:top + size, left:left + size])))

    def feature_scales(self) -> tuple[FeatureScale, ...]:
        """The encoder scales `encoder_features` returns, finest first; () for methods that expose none."""
        return ()

    def encoder_features(self, images: torch.Tensor, count: int | None = None) -> list[torch.Tensor]:
        """Multi-scale encoder features of images (N,C,H,W) in [0,1]: one (N,C_i,H_i,W_i) per scale of
        `feature_scales` (only the first `count` when given).

        Each method applies the input normalisation it was trained on and takes every stage after its
        normalisation and activation, so the features are the ones its decoder learned to read.
        """
        raise NotImplementedError(f"{self.method or type(self).__name__} exposes no encoder features")

    def observability(self) -> dict[str, float]:
        """What the last training batch says about the method beyond its losses, e.g. memory addressing
        sparsity (memory_slots_used, memory_top_weight), trust-region shares (trust_pulled / _pushed /
        _ignored) and the weighted loss terms (weighted_<loss>) that make up the minimized total. {} for
        methods with nothing to add."""
        return dict(self._observed)

    def training_stats(self) -> dict[str, Any]:
        """Extra live statistics for the GUI (e.g. memory-slot usage); JSON-friendly values."""
        return {}

    def tuned_settings(self) -> dict[str, float]:
        """The value in use of every setting in `tuned_buffers` ({} for methods that tune none)."""
        return {name: float(getattr(self, buffer)) for name, buffer in self.tuned_buffers.items()}

    def use_config_settings(self, names: Iterable[str]) -> None:
        """After loading a trained state: give each named setting of `tuned_buffers` its config value again,
        so a setting changed at test time wins over the value training tuned into the buffer."""
        for name in set(names) & set(self.tuned_buffers):
            getattr(self, self.tuned_buffers[name]).fill_(float(getattr(self.config, name)))

    def prepare_for_state(self, state: dict[str, torch.Tensor]) -> None:
        """Resize buffers whose size is only known after training (e.g. a memory bank) before loading.
        Subclasses that override it call this one."""
        if self.reconstructs:
            # Files written before the perceptual calibration existed have no stats: uncalibrated.
            state.setdefault("perceptual_stats", torch.zeros(0, 2, 1, 1))
            self.perceptual_stats = torch.zeros_like(state["perceptual_stats"])

    # --- scoring helpers shared by the methods ---------------------------------------------------------

    @torch.no_grad()
    def reconstruction(self, batch: torch.Tensor) -> torch.Tensor | None:
        """The reconstruction (N,C,S,S) in [0,1] of a batch, or None; methods override it when `predict`
        does more than reconstruct."""
        return self.predict(batch)[1]

    @property
    def perceptual_backbone(self) -> str:
        """The network of this model's perceptual maps: its `perceptual_backbone` setting, "auto" when it
        has none or switches its own perceptual map off (the post-hoc scorer still uses one)."""
        chosen = getattr(self.config, "perceptual_backbone", "auto")
        return "auto" if chosen == "none" else chosen

    def perceptual_distance(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """The perceptual map (N,1,H,W) of x and its reconstruction (N,C,H,W) in [0,1], with this model's
        border rule and per-layer calibration."""
        c = self.config
        scale = layer_scale(getattr(self, "perceptual_stats", None), c.perceptual_calibration, tuple(x.shape[-2:]))
        return perceptual_map(x, recon, self.perceptual_backbone, c.score_border, scale)

    def residual_map(self, name: str, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """A reconstruction residual map (N,1,H,W) of `RECONSTRUCTION_MAPS` ("l1", "l2", "ssim" = 1 - SSIM),
        the SSIM one with this model's border rule."""
        if name == "ssim":
            return 1.0 - ssim_map(x, recon, border=self.config.score_border)
        return RECONSTRUCTION_MAPS[name](x, recon)

    @property
    def calibrates_perceptual(self) -> bool:
        """Whether this model needs `calibrate_perceptual`: it reconstructs, its calibration is not "none" and
        one of its maps (own or added scorers) is a perceptual one. Training ends with it; the benchmark
        runs it after adding post-hoc scorers."""
        return (self.reconstructs and self.config.perceptual_calibration != "none"
                and any(name.startswith("perceptual") for name in self.all_map_names))

    @torch.no_grad()
    def calibrate_perceptual(self, batches: Iterable[torch.Tensor]) -> Iterator[int]:
        """Measure each perceptual layer's distance statistics between normal images (N,C,S,S) in [0,1] and
        their reconstructions; the stats replace `perceptual_stats`. Yields after each batch (for progress
        and cancel); the model is in eval mode afterwards."""
        self.eval()
        stats = LayerStats()
        for i, batch in enumerate(batches):
            recon = self.reconstruction(batch)
            if recon is None:
                return
            stats.update(perceptual_layers(batch, recon.clamp(0, 1), self.perceptual_backbone,
                                           self.config.score_border))
            yield i + 1
        self.perceptual_stats = stats.result().to(self.perceptual_stats.device)
