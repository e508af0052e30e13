"""TrustMAE (core.models.trustmae, discriminator, feature_loss): shapes, losses, a 2-step training, model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.preprocess import ResizePolicy
from core.models import build_model
from core.models.blocks import level_widths
from core.models.discriminator import (PatchDiscriminator, discriminator_depth, feature_matching_loss,
                                       hinge_discriminator_loss, hinge_generator_loss)
from core.features.loss import VGG19_FILE, find_vgg19_weights, resolve_feature_network
from core.models.trustmae import TrustMAE, TrustMAEConfig
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit

pytest.importorskip("efficientnet_lite_pytorch")  # the bundled perceptual network (loss and maps)

TINY = dict(input_size=64, base_channels=8, latent_dim=16, residual_blocks=1, memory_slots=8,
            discriminator_width=0.25, feature_network="efficientnet", perceptual_backbone="efficientnet",
            batch_size=2, epochs=1)


def _tiny(**overrides: object) -> TrustMAE:
    return build_model("trustmae", "fast", **{**TINY, **overrides})


def test_presets_follow_the_paper_and_fit_two_cores() -> None:
    paper = TrustMAEConfig.paper()
    assert (paper.input_size, paper.memory_slots, paper.latent_dim, paper.top_k) == (256, 64, 512, 3)
    assert (paper.trust_threshold, paper.batch_size, paper.lr, paper.discriminator_lr) == (20.0, 16, 1e-4, 4e-4)
    assert (paper.weight_rec, paper.weight_ssim, paper.weight_feature, paper.weight_gan) == (10, 10, 10, 1)
    assert (paper.weight_gan_feature, paper.weight_margin, paper.weight_trust) == (10, 0.1, 1)
    assert paper.use_gan and paper.downsamplings == 5
    fast = TrustMAEConfig.fast()
    assert not fast.use_gan and fast.input_size == 128


def test_level_widths_match_table_1() -> None:
    assert level_widths(32, 512, 5) == [32, 64, 128, 256, 512, 512]
    assert level_widths(32, 512, 3) == [32, 64, 128, 512]  # fine-detail products: 3 down-samplings


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("downsamplings", [3, 5])
def test_shapes(channels: int, downsamplings: int) -> None:
    model = _tiny(in_channels=channels, downsamplings=downsamplings).eval()
    x = torch.rand(2, channels, 64, 64)
    recon, readout = model(x)
    side = 64 // 2**downsamplings
    assert recon.shape == x.shape and recon.abs().max() <= 1.0  # tanh output in [-1,1]
    assert readout.features.shape == (2, 16, side, side)
    assert readout.weights.shape == (2 * side * side, 8)
    maps, recon01 = model.predict(x)
    assert set(maps) == {"trustmae", "perceptual", "l2", "ssim"} and model.default_map == "trustmae"
    for value in maps.values():
        assert value.shape == (2, 1, 64, 64) and torch.isfinite(value).all()
    assert torch.allclose(maps["trustmae"], maps["perceptual"] * maps["l2"])
    assert recon01.shape == x.shape and 0.0 <= recon01.min() and recon01.max() <= 1.0


def test_input_size_must_divide_by_downsampling() -> None:
    with pytest.raises(ValueError, match="divisible"):
        _tiny(input_size=72, downsamplings=5)


def test_discriminator_depth_and_output() -> None:
    assert discriminator_depth(256) == 6  # Table 2 in full: 256 -> 4x4
    assert discriminator_depth(64) == 4
    logits, features = PatchDiscriminator(3, 256, width_scale=0.125)(torch.rand(1, 3, 256, 256))
    assert logits.shape == (1, 1, 4, 4) and len(features) == 6


def test_hinge_and_feature_matching_losses_by_hand() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # Eq. 13: mean(relu(1 - real)) = mean(0, 0.5) = 0.25; mean(relu(1 + fake)) = mean(0, 1.5) = 0.75 -> 1.0
    assert hinge_discriminator_loss(real, fake) == pytest.approx(1.0)
    # Eq. 14: -mean(fake) = -(-2 + 0.5) / 2 = 0.75
    assert hinge_generator_loss(fake) == pytest.approx(0.75)
    # Eq. 15: layer 1 |(1,2) - (1,4)| mean = 1; layer 2 |3 - 0| = 3 -> 4
    reals = [torch.tensor([1.0, 2.0]), torch.tensor([3.0])]
    fakes = [torch.tensor([1.0, 4.0]), torch.tensor([0.0])]
    assert feature_matching_loss(reals, fakes) == pytest.approx(4.0)


def test_training_losses_keys_and_weighted_sum() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    no_gan = _tiny(use_gan=False).train()
    losses = no_gan.training_losses(x, "train")
    c = no_gan.config
    expected = (c.weight_rec * losses["l1"] + c.weight_ssim * losses["ssim"] + c.weight_feature * losses["feature"]
                + c.weight_margin * losses["margin"] + c.weight_trust * losses["trust"])
    assert losses["total"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert [o.loss for o in no_gan.phases()[0].optimizers] == ["total"]
    with_gan = _tiny(use_gan=True).train()
    losses = with_gan.training_losses(x, "train")
    assert {"generator", "discriminator", "gan", "gan_feature"} <= set(losses)
    assert [o.loss for o in with_gan.phases()[0].optimizers] == ["generator", "discriminator"]


def _images(channels: int, size: int = 64, count: int = 4) -> TrainingImages:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (channels, size, size), dtype=np.uint8) for _ in range(count)]
    return TrainingImages(images, ResizePolicy("resize", size), augment=True)


def test_two_step_training_with_gan_changes_parameters(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _tiny(use_gan=True, downsamplings=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    progress = list(fit(model, _images(1, count=4), TrainOptions(device="cpu")))  # 4 images / batch 2 = 2 steps
    steps = [p for p in progress if p.losses]
    assert len(steps) == 2 and progress[-1].phase == "done"
    for p in steps:
        assert all(np.isfinite(v) for v in p.losses.values())
    after = model.state_dict()
    for name in ("encoder.layers.0.0.weight", "memory.items", "decoder.layers.0.body.0.weight",
                 "discriminator.head.weight"):
        assert not torch.equal(before[name], after[name]), name
    stats = model.training_stats()
    assert len(stats["memory_usage"]) == 8 and sum(stats["memory_usage"]) == pytest.approx(1.0)
    assert "efficientnet" in stats["feature_loss_network"]
    # The frozen ImageNet network is not part of the model (nor of its files); its per-layer, per-position
    # statistics on the training images are (measured once training has ended).
    assert {k.split(".")[0] for k in after} == {"encoder", "memory", "decoder", "discriminator", "perceptual_stats"}
    assert after["perceptual_stats"].shape == (4, 2, 64, 64) and progress[-2].phase == "perceptual_stats"


def test_model_file_round_trip(tmp_path: Path) -> None:
    from core.modelfile import ModelMeta, load_model, save_model

    torch.manual_seed(0)
    model = _tiny(in_channels=3, downsamplings=3).eval()
    with torch.no_grad():
        model.memory.usage.copy_(torch.arange(8.0))
    meta = ModelMeta(method="trustmae", preset="fast", config=model.config.to_dict(), in_channels=3,
                     input_size=64, default_map=model.default_map, map_names=list(model.map_names))
    path = save_model(tmp_path / "trustmae.safetensors", model, meta)
    loaded, loaded_meta = load_model(path)
    assert isinstance(loaded, TrustMAE) and loaded_meta.method == "trustmae"
    assert loaded.config == model.config
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], model(x)[0])
    assert loaded.memory.memory_usage() == model.memory.memory_usage()


def test_feature_network_choice_and_vgg_file_check(tmp_path: Path) -> None:
    assert resolve_feature_network("efficientnet")[0] == "efficientnet"
    if find_vgg19_weights() is None:  # the usual case on these machines: fall back and say why
        used, why = resolve_feature_network("vgg19")
        assert used == "efficientnet" and VGG19_FILE in why
    with pytest.raises(ValueError, match="feature loss network"):
        resolve_feature_network("alexnet")
    # A file with the right name but the wrong content fails the SHA-256 prefix check.
    (tmp_path / VGG19_FILE).write_bytes(b"not the real weights")
    assert find_vgg19_weights(str(tmp_path)) is None
