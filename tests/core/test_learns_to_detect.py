"""Every method learns to detect: after a short training on generated brushed metal (the demo's product), its
default map must find held-out synthetic defects (pixel AUROC over all test pixels) well above what needs no
learning.

Two floors, both computed here on the same held-out images:
- the blur floor: the image "reconstructed" by a Gaussian blur of itself (sigma 1, 2 and 4 px), its residual
  scored by the plain L2 and 1 - SSIM maps and by the method's own map where that map scores a
  reconstruction (TrustMAE's perceptual x L2, CMA-AE's MSFR); the best of all of these;
- the same network at its initial weights, scored by its default map. This one is needed: on these textures
  an untrained autoencoder already beats the blur floor (its flat output makes every intensity outlier
  stand out), so the blur floor alone would pass a model that learnt nothing.
A run passes when it beats both floors by the case's `margin` and reaches its `minimum`. A model trained on
the wrong images must fail the same assertion (tested). Margins come from runs with seeds 0-3; the test
itself runs seed 0. The test images come from other random streams than the training images: both the
pieces of metal and the defects are unseen. Methods that cannot pass yet in this budget are marked
`xfail(strict=True)`, so the suite says when they start to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import torch

from core.data.demo import DEFECT_TYPES
from core.data.preprocess import ResizePolicy
from core.metrics.curves import auroc
from core.models import build_model
from core.models.base import AnomalyModel
from core.scoring.maps import l2_map, ssim_residual_map
from core.scoring.msfr import msfr_map
from core.synth.defects import DEFECTS
from core.synth.textures import TEXTURES
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit

SEED = 0
TEXTURE = "metal"  # the demo's default product
# Measured at seed 0 as (pixel AUROC, blur floor, untrained network); seeds 1-2 in the same direction.
NOT_YET = "does not beat the blur floor and its untrained network in this budget yet: "
N_TRAIN = 32
N_TEST_DEFECT = 12  # three of each defect type
N_TEST_GOOD = 4  # their pixels are all normal
BLUR_SIGMAS = (1.0, 2.0, 4.0)
TRAIN_STREAM, GOOD_STREAM, DEFECT_STREAM = 0, 1, 2

Scorer = Callable[[AnomalyModel, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One method's short training and what it must reach."""

    method: str
    size: int  # image side, also the model's input_size
    overrides: dict[str, Any] = field(default_factory=dict)  # on top of the fast preset
    margin: float = 0.1  # pixel AUROC above the blur floor and above the untrained network
    minimum: float = 0.65  # absolute pixel AUROC
    xfail: str = ""  # why the method cannot pass yet (strict: the suite says when it starts to)
    slow: bool = False  # well over 20 s even when it passes


CASES = [
    Case("patchcore", 128, margin=0.08, minimum=0.93),
    Case("ae-l2", 128, dict(epochs=4, batch_size=4), 0.05, 0.85, xfail=NOT_YET + "32 steps, 0.65 / 0.85 / 0.57"),
    Case("ae-ssim", 128, dict(epochs=4, batch_size=4), 0.05, 0.85, xfail=NOT_YET + "32 steps, 0.86 / 0.85 / 0.86"),
    Case("memae", 64, dict(downsamplings=3, epochs=16, batch_size=8), 0.05, 0.85,
         xfail=NOT_YET + "64 steps, 0.80 / 0.83 / 0.76"),
    Case("trustmae", 64, dict(downsamplings=3, epochs=8, batch_size=8), 0.05, 0.85,
         xfail=NOT_YET + "32 steps, 0.79 / 0.83 / 0.65"),
    Case("cmaae", 64, dict(patch_size=32, epochs=8, batch_size=8), 0.05, 0.85,
         xfail=NOT_YET + "32 steps, 0.64 / 0.97 (MSFR) / 0.72"),
    # 96 steps with a quarter in phase 1: MSDSM 0.94 / 0.87 / 0.78 / 0.70 at seeds 0-3 (blur floors 0.83 / 0.88
    # / 0.82 / 0.93), while the same models score 0.97-0.98 on Eq. 1 anomalies of held-out normals: the heads
    # learn the Perlin replacements they train on and do not carry over to thin scratches, cracks and small
    # spots. Blended replacements (opacity_max 0.8), the "self" source, clean_share 0.2 or focal gamma 0 do
    # not pass at all four seeds either.
    Case("ndpnet", 64, dict(epochs=12, batch_size=8), 0.05, 0.85, xfail=NOT_YET + "48 steps, 0.61 / 0.83 / 0.72"),
    # 48 steps of the fast preset (cnum 24, Adam 1e-3 / 4e-3), u tuned on 8 training images, 10 iterations
    # with the early stop: 0.92 / 0.84 / 0.70 at seed 0, in about 2 minutes on a loaded machine; seed 1 does
    # not pass (0.82 / 0.88 / 0.78).
    Case("i3ad", 64, dict(epochs=12, batch_size=8, tune_images=8), 0.05, 0.85, slow=True),
]


@lru_cache(maxsize=None)
def product_set(size: int, stream: int, count: int, defects: bool, seed: int = SEED
               ) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale TEXTURE images (N,1,S,S) float32 in [0,1], quantised to 8 bits as if read from PNG files,
    and their defect masks (N,S,S) bool; with `defects`, one per image, the demo's types in turn."""
    images, masks = [], []
    for i in range(count):
        rng = np.random.default_rng([seed, stream, i])
        image = TEXTURES[TEXTURE]((size, size), rng, channels=1)[None]
        mask = np.zeros((size, size), dtype=bool)
        if defects:
            image, mask = DEFECTS[DEFECT_TYPES[i % len(DEFECT_TYPES)]](image, rng)
        images.append(np.round(image * 255.0) / 255.0)
        masks.append(mask)
    return np.stack(images).astype(np.float32), np.stack(masks)


def test_set(size: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Held-out images: defective ones first, then good ones, with their masks."""
    bad, bad_masks = product_set(size, DEFECT_STREAM, N_TEST_DEFECT, True, seed)
    good, good_masks = product_set(size, GOOD_STREAM, N_TEST_GOOD, False, seed)
    return np.concatenate([bad, good]), np.concatenate([bad_masks, good_masks])


test_set.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def train(case: Case, seed: int = SEED, trained: bool = True) -> AnomalyModel:
    """The case's model trained on fresh normal images (`trained=False`: its initial random weights)."""
    torch.manual_seed(seed)
    model = build_model(case.method, "fast", input_size=case.size, **case.overrides)
    normals, _ = product_set(case.size, TRAIN_STREAM, N_TRAIN, False, seed)
    if not trained:
        if model.uses_reference:  # e.g. NDP-Net: its attention needs a normal reference image
            model.set_reference(torch.from_numpy(normals[0]))
        return model.eval()
    images = [np.round(im * 255.0).astype(np.uint8) for im in normals]
    training = TrainingImages(images, ResizePolicy("resize", case.size), model.config.augment,
                              model.config.rotate90)
    for _ in fit(model, training, TrainOptions(seed=seed, device="cpu")):
        pass
    return model.eval()


def pixel_auroc(masks: np.ndarray, maps: torch.Tensor) -> float:
    return auroc(masks.ravel(), maps.float().numpy().ravel())


def method_auroc(model: AnomalyModel, images: np.ndarray, masks: np.ndarray) -> float:
    """Pixel AUROC of the model's default map over all held-out images."""
    maps = [model.predict(torch.from_numpy(images[i:i + 8]))[0][model.default_map]
            for i in range(0, len(images), 8)]
    return pixel_auroc(masks, torch.cat(maps))


def _own_scorer(model: AnomalyModel) -> Scorer | None:
    """The method's default map computed from a given reconstruction; None for methods that do not
    reconstruct (PatchCore) or whose map is a plain residual (covered by the generic scorers)."""
    if model.method == "trustmae":  # its own calibrated perceptual distance, on the blurred "reconstruction"
        return lambda m, x, r: m.perceptual_distance(x, r) * l2_map(x, r)
    if model.method == "cmaae":
        return msfr_map
    return None


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of every channel of (N,C,S,S) images."""
    return np.stack([np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in image]) for image in images])


@torch.no_grad()
def blur_floor(model: AnomalyModel, images: np.ndarray, masks: np.ndarray) -> float:
    """Best pixel AUROC of a blurred image taken as its own reconstruction, over sigmas and scorers."""
    scorers: list[Scorer] = [lambda m, x, r: l2_map(x, r), lambda m, x, r: ssim_residual_map(x, r)]
    own = _own_scorer(model)
    if own is not None:
        scorers.append(own)
    x = torch.from_numpy(images)
    best = 0.0
    for sigma in BLUR_SIGMAS:
        recon = torch.from_numpy(blur(images, sigma))
        for score in scorers:
            best = max(best, pixel_auroc(masks, score(model, x, recon)))
    return best


def learned(case: Case, value: float, floor: float, untrained: float | None) -> bool:
    """Above the blur floor by the case's margin, above the same network at its initial weights (None for
    methods without any) by the same margin, and at least the case's minimum."""
    above_untrained = untrained is None or value >= untrained + case.margin
    return value >= floor + case.margin and above_untrained and value >= case.minimum


def untrained_auroc(case: Case, images: np.ndarray, masks: np.ndarray, seed: int = SEED) -> float | None:
    """The same network with its initial weights (PatchCore has none: it learns by collecting)."""
    if case.method == "patchcore":
        return None
    return method_auroc(train(case, seed, trained=False), images, masks)


def measure(case: Case, seed: int = SEED) -> tuple[float, float, float | None]:
    """(trained pixel AUROC, blur floor, untrained pixel AUROC) on the held-out images of `seed`."""
    images, masks = test_set(case.size, seed)
    model = train(case, seed)
    return method_auroc(model, images, masks), blur_floor(model, images, masks), untrained_auroc(
        case, images, masks, seed)


def _params(cases: list[Case]) -> list[Any]:
    """Cases that cannot pass yet are strict xfails, and slow (10-20 s each on 2 quiet cores), as are cases
    that take much longer."""
    return [pytest.param(c, id=c.method, marks=[pytest.mark.xfail(strict=True, reason=c.xfail), pytest.mark.slow]
                         if c.xfail else [pytest.mark.slow] if c.slow else []) for c in cases]


@pytest.mark.parametrize("case", _params(CASES))
def test_method_learns_to_detect_held_out_defects(case: Case) -> None:
    value, floor, untrained = measure(case)
    assert learned(case, value, floor, untrained), (
        f"{case.method}: pixel AUROC {value:.3f}, blur floor {floor:.3f}, untrained {untrained}; needs "
        f"{case.margin} above both and at least {case.minimum}")


def test_patchcore_on_the_wrong_images_does_not_pass() -> None:
    """The same assertion rejects a memory bank collected from uniform noise instead of the product: the
    test can fail, and what it measures is learning the product."""
    case = next(c for c in CASES if c.method == "patchcore")
    images, masks = test_set(case.size)
    model = build_model(case.method, "fast", input_size=case.size)
    rng = np.random.default_rng(SEED)
    noise = [rng.integers(0, 256, (1, case.size, case.size), dtype=np.uint8) for _ in range(N_TRAIN)]
    for _ in fit(model, TrainingImages(noise, ResizePolicy("resize", case.size), augment=False),
                 TrainOptions(seed=SEED, device="cpu")):
        pass
    value, floor = method_auroc(model.eval(), images, masks), blur_floor(model, images, masks)
    assert not learned(case, value, floor, None), f"patchcore on noise: {value:.3f} vs blur floor {floor:.3f}"
