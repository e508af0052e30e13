"""MemAE baseline (core.models.memae): shared backbone, loss, a 2-step training, model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.preprocess import ResizePolicy
from core.models import build_model
from core.models.memae import MemAE, MemAEConfig
from core.models.memory import ShrinkageMemory, entropy_loss
from core.models.blocks import ResidualDecoder, ResidualEncoder
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit

TINY = dict(input_size=64, base_channels=8, latent_dim=16, residual_blocks=1, memory_slots=8,
            shrink_threshold=1 / 8, batch_size=2, epochs=1)


def _tiny(**overrides: object) -> MemAE:
    return build_model("memae", "fast", **{**TINY, **overrides})


def test_paper_preset_follows_trustmae_appendix_b() -> None:
    paper = MemAEConfig.paper()
    assert (paper.input_size, paper.memory_slots, paper.latent_dim, paper.lr) == (256, 128, 256, 1e-4)
    assert paper.entropy_weight == 0.0002 and 1 / 128 <= paper.shrink_threshold <= 3 / 128


def test_shares_trustmae_backbone() -> None:
    model = _tiny()
    assert type(model.encoder) is ResidualEncoder and type(model.decoder) is ResidualDecoder
    assert isinstance(model.memory, ShrinkageMemory)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("downsamplings", [3, 5])
def test_shapes(channels: int, downsamplings: int) -> None:
    model = _tiny(in_channels=channels, downsamplings=downsamplings).eval()
    x = torch.rand(2, channels, 64, 64)
    recon, readout = model(x)
    side = 64 // 2**downsamplings
    assert recon.shape == x.shape
    assert readout.features.shape == (2, 16, side, side) and readout.weights.shape == (2 * side * side, 8)
    maps, recon01 = model.predict(x)
    assert set(maps) == {"l2", "ssim", "l1"} and model.default_map == "l2"
    for value in maps.values():
        assert value.shape == (2, 1, 64, 64)
    assert 0.0 <= recon01.min() and recon01.max() <= 1.0


def test_loss_is_mse_plus_weighted_entropy() -> None:
    torch.manual_seed(0)
    model = _tiny().eval()  # eval: BatchNorm uses running stats, so two forwards agree
    x = torch.rand(2, 1, 64, 64)
    losses = model.training_losses(x, "train")
    recon, readout = model(x)
    mse = ((recon - (2 * x - 1)) ** 2).mean()
    assert losses["l2"].item() == pytest.approx(mse.item(), rel=1e-5)
    assert losses["entropy"].item() == pytest.approx(entropy_loss(readout.weights).item(), rel=1e-5)
    assert losses["total"].item() == pytest.approx(mse.item() + 0.0002 * losses["entropy"].item(), rel=1e-5)


def test_two_step_training_changes_parameters() -> None:
    torch.manual_seed(0)
    model = _tiny(downsamplings=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    images = TrainingImages([rng.integers(0, 256, (1, 64, 64), dtype=np.uint8) for _ in range(4)],
                            ResizePolicy("resize", 64), augment=True)
    progress = list(fit(model, images, TrainOptions(device="cpu")))
    steps = [p for p in progress if p.losses]
    assert len(steps) == 2 and all(np.isfinite(v) for p in steps for v in p.losses.values())
    after = model.state_dict()
    for name in ("encoder.layers.0.0.weight", "memory.items", "decoder.layers.0.body.0.weight"):
        assert not torch.equal(before[name], after[name]), name
    usage = model.training_stats()["memory_usage"]
    assert len(usage) == 8 and sum(usage) == pytest.approx(1.0)


def test_model_file_round_trip(tmp_path: Path) -> None:
    from core.modelfile import ModelMeta, load_model, save_model

    torch.manual_seed(0)
    model = _tiny(in_channels=3).eval()
    meta = ModelMeta(method="memae", preset="fast", config=model.config.to_dict(), in_channels=3, input_size=64,
                     default_map=model.default_map, map_names=list(model.map_names))
    loaded, _ = load_model(save_model(tmp_path / "memae.safetensors", model, meta))
    assert isinstance(loaded, MemAE) and loaded.config == model.config
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], model(x)[0])
