"""Every method trains a few steps and infers on CUDA (skipped when no CUDA device is present)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from core.data.preprocess import ResizePolicy
from core.inference import infer_images
from core.models import build_model
from core.models.registry import list_methods
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# Small networks, batches of 2 on 4 images: two steps per epoch, one epoch per phase.
TINY: dict[str, dict[str, Any]] = {
    "ae-l2": dict(input_size=128, latent_dim=16),
    "ae-ssim": dict(input_size=128, latent_dim=16),
    "memae": dict(input_size=64, downsamplings=3, base_channels=8, latent_dim=16, residual_blocks=1,
                  memory_slots=8),
    "trustmae": dict(input_size=64, downsamplings=3, base_channels=8, latent_dim=16, residual_blocks=1,
                     memory_slots=8, discriminator_width=0.25, feature_network="efficientnet",
                     perceptual_backbone="efficientnet"),
    "trustmae-gan": dict(input_size=64, downsamplings=3, base_channels=8, latent_dim=16, residual_blocks=1,
                         memory_slots=8, discriminator_width=0.25, feature_network="efficientnet",
                         perceptual_backbone="efficientnet", use_gan=True),
    "cmaae": dict(input_size=64, patch_size=32, base_channels=4, latent_dim=8, memory_slots=4, epochs=2),
    "patchcore": dict(input_size=64),
    "ndpnet": dict(input_size=64, widths=(4, 4, 8, 8, 8), ffm_channels=4, epochs=2,
                   feature_network="efficientnet"),
    "i3ad": dict(input_size=64, cnum=8, discriminator_width=0.125, test_iterations=3, tune_images=2,
                 tune_iterations=2),
}


def _method(case: str) -> str:
    return case.removesuffix("-gan")


def test_every_registered_method_has_a_case() -> None:
    assert {spec.name for spec in list_methods()} <= {_method(case) for case in TINY}


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("case", sorted(TINY))
def test_train_and_infer_on_cuda(case: str) -> None:
    settings = {"batch_size": 2, "epochs": 1, **TINY[case]}
    model = build_model(_method(case), "fast", **settings)
    size = model.config.input_size
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (1, size, size), dtype=np.uint8) for _ in range(4)]
    training = TrainingImages(images, ResizePolicy("resize", size), augment=True)

    progress = list(fit(model, training, TrainOptions(device="cuda")))
    assert progress[-1].phase == "done"
    for p in progress:
        assert all(np.isfinite(v) for v in p.losses.values()), p.losses
    assert all(t.device.type == "cuda" for t in model.state_dict().values())

    maps, recon = model.predict(torch.rand(2, 1, size, size, device="cuda"))
    assert set(maps) == set(model.map_names)
    for value in maps.values():
        assert value.device.type == "cuda" and value.shape == (2, 1, size, size)
        assert torch.isfinite(value).all()
    if recon is not None:
        assert recon.shape == (2, 1, size, size)

    # Full-resolution inference on an image of another size, as `predict` runs it.
    full = infer_images(model, [rng.random((1, size + 16, size), dtype=np.float32)], model.config.policy,
                        torch.device("cuda"))
    (full_maps, _), = full
    assert all(m.shape == (size + 16, size) and np.isfinite(m).all() for m in full_maps.values())
