"""NDP-Net (core.models.ndpnet, ndpnet_blocks, reference_attention; core.synth.sources): Eq. 2, RBFRM, FFM,
Eq. 11 and its filters on hand-made tensors; the three training phases with a frozen encoder in phase 2;
shapes; the reference image in model files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.preprocess import ResizePolicy
from core.models import build_model
from core.models.ndpnet import NDPNet
from core.models.ndpnet_blocks import (defect_perception_loss, final_map, focal_loss, fuse_maps, mean_filter,
                                       median_filter, select_median)
from core.models.reference_attention import FeatureFusion, medoid_index, reference_repair
from core.synth.sources import perlin_replacement, replace_region
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit

# 64x64 images (level 5 is 4x4: one K=4 patch), tiny widths, no perceptual loss: a step takes milliseconds.
TINY = dict(input_size=64, widths=(4, 4, 8, 8, 8), ffm_channels=4, batch_size=2, epochs=2,
            weight_perceptual=0.0)


def _tiny(**overrides: object) -> NDPNet:
    return build_model("ndpnet", "fast", **{**TINY, **overrides})


def _images(count: int = 4, channels: int = 1, size: int = 64) -> TrainingImages:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (channels, size, size), dtype=np.uint8) for _ in range(count)]
    return TrainingImages(images, ResizePolicy("resize", size), augment=False)


# --- Eq. 2 ------------------------------------------------------------------------------------------------

def test_defect_perception_loss_eq2_by_hand() -> None:
    # One level, one channel, 1x2 map. Squared differences (0, 4) -> min-max (0, 1); mask (0, 1): loss 0.
    clean = [torch.tensor([[[[1.0, 1.0]]]])]
    defective = [torch.tensor([[[[1.0, 3.0]]]])]
    assert defect_perception_loss(clean, defective, torch.tensor([[[[0.0, 1.0]]]])).item() == 0.0
    # Mask (1, 0): ((0 - 1)^2 + (1 - 0)^2) / 2 = 1.
    assert defect_perception_loss(clean, defective, torch.tensor([[[[1.0, 0.0]]]])).item() == pytest.approx(1.0)
    # Two channels, differences (1, 3) and (1, 1): channel means of squares (1, 5) -> (0, 1); mask (0.5, 0.5)
    # -> (0.25 + 0.25) / 2 = 0.25.
    clean2 = [torch.zeros(1, 2, 1, 2)]
    defective2 = [torch.tensor([[[[1.0, 3.0]], [[1.0, 1.0]]]])]
    mask = torch.full((1, 1, 1, 2), 0.5)
    assert defect_perception_loss(clean2, defective2, mask).item() == pytest.approx(0.25)


def test_defect_perception_loss_resizes_the_mask_by_area_and_skips_flat_maps() -> None:
    # Level at half resolution: a 2x4 mask with one quarter of the left cell set -> targets (0.25, 0).
    clean, defective = [torch.zeros(1, 1, 1, 2)], [torch.tensor([[[[1.0, 0.0]]]])]  # normalised (1, 0)
    mask = torch.zeros(1, 1, 2, 4)
    mask[0, 0, 0, 0] = 1.0
    assert defect_perception_loss(clean, defective, mask).item() == pytest.approx((0.75 ** 2) / 2)
    # A flat difference map has no shape to compare: the term is skipped (here the only one -> 0).
    assert defect_perception_loss([torch.ones(1, 1, 2, 2)], [torch.ones(1, 1, 2, 2)], mask).item() == 0.0


def test_focal_loss_by_hand() -> None:
    # Logit 0: p = 0.5. Target 1: -(0.5^2) ln 0.5 = 0.25 ln 2; target 0 the same.
    assert focal_loss(torch.zeros(1, 1, 1, 2), torch.tensor([[[[1.0, 0.0]]]])).item() == pytest.approx(
        0.25 * math.log(2), abs=1e-6)
    # A confident right answer costs almost nothing; gamma 0 is the plain BCE.
    assert focal_loss(torch.full((1, 1, 1, 1), 10.0), torch.ones(1, 1, 1, 1)).item() < 1e-8
    assert focal_loss(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1), gamma=0.0).item() == pytest.approx(math.log(2))


# --- RBFRM, FFM: Eqs. 3-8 -----------------------------------------------------------------------------------

def test_rbfrm_maps_a_reference_patch_back_to_itself_at_high_temperature() -> None:
    torch.manual_seed(0)
    reference = torch.randn(1, 3, 4, 4)  # K = 2: four 3x2x2 reference patches
    features = reference.flip(-1).clone()  # columns mirrored...
    features[..., :2, :2] = reference[..., 2:, 2:]  # ...and the top-left patch equal to the bottom-right one
    repaired, attention = reference_repair(features, reference, 2, temperature=1000.0)
    assert attention.shape == (1, 4, 4) and torch.allclose(attention.sum(-1), torch.ones(1, 4))
    assert torch.allclose(repaired[..., :2, :2], reference[..., 2:, 2:], atol=1e-5)
    assert attention[0, 0, 3].item() == pytest.approx(1.0, abs=1e-5)


def test_rbfrm_identity_and_constant_reference_and_literal_temperature() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 4, 4, 4)
    same, _ = reference_repair(x[:1], x[:1], 1, temperature=1e4)  # K = 1, input = reference
    assert torch.allclose(same, x[:1], atol=1e-4)
    constant, _ = reference_repair(x, torch.full((1, 4, 4, 4), 0.7), 2, temperature=10.0)
    assert torch.allclose(constant, torch.full_like(x, 0.7))
    # Eq. 4 as printed (temperature 1): cosines in [-1, 1] over 16 patches give near-uniform weights.
    _, literal = reference_repair(x[:1], torch.randn(1, 4, 4, 4), 1, temperature=1.0)
    assert literal.amax().item() < 3 / 16
    with pytest.raises(ValueError, match="divisible by K = 4"):
        reference_repair(torch.zeros(1, 1, 6, 6), torch.zeros(1, 1, 6, 6), 4, 10.0)


def test_ffm_gates_sum_to_one_and_mix_convexly() -> None:
    torch.manual_seed(2)
    ffm = FeatureFusion(3, squeeze=4).eval()
    ad, rep2, rep4 = (torch.randn(2, 3, 5, 5) for _ in range(3))
    out, gates = ffm(ad, rep2, rep4)
    assert gates.shape == (2, 3, 3, 5, 5) and torch.allclose(gates.sum(dim=1), torch.ones(2, 3, 5, 5))
    low = torch.minimum(torch.minimum(ad, rep2), rep4)
    high = torch.maximum(torch.maximum(ad, rep2), rep4)
    assert bool(((out >= low - 1e-6) & (out <= high + 1e-6)).all())
    # Logits zeroed: every gate is 1/3, so the output is the mean of the three inputs.
    with torch.no_grad():
        ffm.logits.weight.zero_()
        ffm.logits.bias.zero_()
    assert torch.allclose(ffm(ad, rep2, rep4)[0], (ad + rep2 + rep4) / 3, atol=1e-6)


def test_ffm_with_one_patch_size_gates_two_branches() -> None:
    # The K = 2 only / K = 4 only ablations: one rebuilt map and the input, two gates summing to one.
    torch.manual_seed(3)
    ffm = FeatureFusion(3, squeeze=4, branches=2).eval()
    ad, rep = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    out, gates = ffm(ad, rep)
    assert gates.shape == (2, 2, 3, 5, 5) and torch.allclose(gates.sum(dim=1), torch.ones(2, 3, 5, 5))
    with torch.no_grad():
        ffm.logits.weight.zero_()
        ffm.logits.bias.zero_()
    assert torch.allclose(ffm(ad, rep)[0], (ad + rep) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="2 branches got 3"):
        ffm(ad, rep, rep)
    for patches in ((2,), (4,)):
        model = _tiny(patch_sizes=patches).eval()
        model.set_reference(torch.rand(1, 64, 64))
        maps, _ = model.predict(torch.rand(2, 1, 64, 64))
        assert maps["msdsm"].shape == (2, 1, 64, 64)
        assert set(model.rbam[0].last) == {f"attention_top_k{patches[0]}", f"gate_k{patches[0]}", "gate_input"}
    with pytest.raises(ValueError, match="one or two different"):
        _tiny(patch_sizes=(2, 2))


def test_medoid_is_the_descriptor_nearest_the_mean() -> None:
    # Mean of (0,0), (10,0), (4,1), (2,-1) is (4, 0): nearest (4, 1).
    assert medoid_index(torch.tensor([[0.0, 0.0], [10.0, 0.0], [4.0, 1.0], [2.0, -1.0]])) == 2


# --- Eq. 11 and the filters --------------------------------------------------------------------------------

def test_fusion_weights_and_filters_by_hand() -> None:
    am1, am2, am3 = torch.full((1, 1, 8, 8), 1.0), torch.full((1, 1, 4, 4), 2.0), torch.full((1, 1, 2, 2), 3.0)
    # 0.2 * 1 + 0.2 * 2 + 0.6 * 3 = 2.4 everywhere; constant maps survive both filters unchanged.
    assert torch.allclose(fuse_maps([am1, am2, am3], (8, 8)), torch.full((1, 1, 8, 8), 2.4))
    assert torch.allclose(final_map([am1, am2, am3], (8, 8)), torch.full((1, 1, 8, 8), 2.4))
    spike = torch.zeros(1, 1, 7, 7)
    spike[0, 0, 3, 3] = 25.0
    assert mean_filter(spike)[0, 0, 3, 3].item() == pytest.approx(1.0)  # 25 / 25
    assert mean_filter(spike)[0, 0, 1, 1].item() == pytest.approx(1.0) and mean_filter(spike)[0, 0, 0, 0] == 0
    assert median_filter(spike).abs().max().item() == 0.0  # one hot pixel in 25 is no median
    block = torch.zeros(1, 1, 7, 7)
    block[0, 0, 1:6, 1:6] = 1.0
    assert median_filter(block)[0, 0, 3, 3].item() == 1.0 and median_filter(block)[0, 0, 0, 3].item() == 0.0


def test_median_network_equals_the_median_with_ties_and_at_every_count() -> None:
    # The selection network behind median_filter against torch.median (the lower median), values drawn from
    # four levels so ties are everywhere; and the filter against unfolded 5 x 5 windows.
    generator = torch.Generator().manual_seed(0)
    for count in range(1, 30):
        values = [torch.randint(0, 4, (200,), generator=generator).float() for _ in range(count)]
        assert torch.equal(select_median(values), torch.stack(values).median(dim=0).values), count
    maps = torch.rand(2, 1, 9, 11, generator=generator).round(decimals=1)
    windows = torch.nn.functional.unfold(torch.nn.functional.pad(maps, (2,) * 4, mode="replicate"), 5)
    assert torch.equal(median_filter(maps), windows.median(dim=1).values.reshape(2, 1, 9, 11))


# --- Eq. 1 ------------------------------------------------------------------------------------------------

def test_eq1_replacement_and_sources() -> None:
    image, source = np.zeros((1, 2, 2), np.float32), np.ones((1, 2, 2), np.float32)
    mask = np.array([[True, False], [False, False]])
    assert replace_region(image, source, mask).tolist() == [[[1.0, 0.0], [0.0, 0.0]]]
    assert replace_region(image, source, mask, beta=0.25)[0, 0, 0] == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    base = np.full((1, 32, 32), 0.5, np.float32)
    for kind, pool in (("procedural", None), ("images", [np.random.default_rng(1).random((3, 40, 40), np.float32)])):
        out, m = perlin_replacement(base, rng, kind, pool)
        assert out.shape == base.shape and m.any() and np.array_equal(out[:, ~m], base[:, ~m])


def test_phase_two_keeps_a_share_of_clean_samples() -> None:
    model = _tiny(defect_source="self")
    torch.manual_seed(0)
    batch = torch.rand(16, 1, 64, 64)
    images, masks = model.synthesize(batch, 0.5)
    clean = masks.flatten(1).amax(1) == 0
    assert 2 <= int(clean.sum()) <= 14
    assert torch.equal(images[clean], batch[clean]) and bool((masks.flatten(1).amax(1)[~clean] == 1).all())
    _, all_defective = model.synthesize(batch, 0.0)
    assert bool((all_defective.flatten(1).amax(1) == 1).all())


# --- phases, shapes, model files ----------------------------------------------------------------------------

def test_phases_are_data() -> None:
    phases = _tiny(epochs=600, phase1_share=2 / 3).phases()
    assert [(p.name, p.epochs, p.frozen) for p in phases] == [
        ("phase1", 400, ()), ("reference", 1, ("encoder",)), ("phase2", 200, ("encoder",))]
    assert phases[0].optimizers[0].modules == ("encoder", "decoder")
    assert phases[2].optimizers[0].modules == ("rbam", "decoder", "msdsm")
    assert [p.name for p in _tiny(rbam=False).phases()] == ["phase1", "phase2"]
    paper = build_model("ndpnet", "paper").config
    assert (paper.input_size, paper.lr, paper.weight_decay, paper.phase_epochs()) == (256, 1e-4, 1e-5, (400, 200))


def test_encoder_is_frozen_in_phase_two_and_a_reference_is_chosen() -> None:
    model = _tiny(epochs=3)
    snapshot: dict[str, torch.Tensor] = {}
    phases_seen = []
    for progress in fit(model, _images(), TrainOptions(seed=0, device="cpu")):
        phases_seen.append(progress.phase)
        if progress.phase == "reference" and not snapshot:
            # Phase 1 is over: the encoder as it must stay (weights and BN statistics), without gradients.
            snapshot = {k: v.clone() for k, v in model.encoder.state_dict().items()}
            for p in model.encoder.parameters():
                p.grad = None
    assert {"phase1", "reference", "phase2", "done"} <= set(phases_seen)
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None for p in model.msdsm.parameters())
    assert bool(model.reference_ready) and model.reference.abs().sum() > 0
    # The reference is one of the training images (no augmentation here).
    training = torch.from_numpy(np.stack(_images().images)).float() / 255.0
    assert any(torch.allclose(model.reference[0], im, atol=1e-6) for im in training)


@pytest.mark.parametrize("size, channels", [(64, 1), (128, 3)])
def test_shapes_and_maps(size: int, channels: int) -> None:
    model = _tiny(input_size=size, in_channels=channels).eval()
    model.set_reference(torch.rand(channels, size + 10, size))  # any size: resized
    x = torch.rand(2, channels, size, size)
    maps, recon = model.predict(x)
    assert recon.shape == x.shape and set(maps) == {"msdsm", "am1", "am2", "am3", "l2"}
    assert all(m.shape == (2, 1, size, size) and torch.isfinite(m).all() for m in maps.values())
    assert [s.stride for s in model.feature_scales()] == [1, 2, 4, 8, 16]
    assert [f.shape[-1] for f in model.encoder_features(x, 3)] == [size, size // 2, size // 4]
    with pytest.raises(ValueError, match="divisible by 64"):
        _tiny(input_size=96)


def test_predict_needs_a_reference() -> None:
    with pytest.raises(ValueError, match="no reference image"):
        _tiny().eval().predict(torch.rand(1, 1, 64, 64))


def test_model_file_keeps_the_reference(tmp_path: Path) -> None:
    from core.data.io import write_png_atomic
    from core.modelfile import ModelMeta, load_model, save_model

    model = _tiny().eval()
    picture = (np.arange(64 * 64).reshape(64, 64, 1) % 256).astype(np.uint8)
    write_png_atomic(tmp_path / "ref.png", picture)
    model.set_reference_from_path(tmp_path / "ref.png")
    assert torch.allclose(model.reference[0, 0], torch.from_numpy(picture[..., 0] / 255.0).float(), atol=1e-6)
    meta = ModelMeta(method="ndpnet", preset="fast", config=model.config.to_dict(), in_channels=1, input_size=64,
                     default_map="msdsm", map_names=list(model.map_names))
    loaded, _ = load_model(save_model(tmp_path / "ndp.safetensors", model, meta))
    assert torch.equal(loaded.reference, model.reference) and bool(loaded.reference_ready)
    x = torch.rand(1, 1, 64, 64)
    assert torch.allclose(loaded.predict(x)[0]["msdsm"], model.predict(x)[0]["msdsm"])


def test_reference_interface_of_a_method_with_and_without_one(tmp_path: Path) -> None:
    from core.data.io import ImageReadError, write_png_atomic

    model = _tiny()
    assert type(model).uses_reference and model.reference_image() is None  # not chosen before training
    picture = torch.rand(1, 64, 64)
    model.set_reference(picture)
    shown = model.reference_image()
    assert shown is not None and shown.shape == (1, 64, 64) and torch.allclose(shown, picture)
    shown.zero_()  # a copy: changing it leaves the model's reference alone
    assert torch.allclose(model.reference[0], picture)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    before = (tmp_path / "broken.png").read_bytes()
    with pytest.raises(ImageReadError, match="broken.png"):
        model.set_reference_from_path(tmp_path / "broken.png")
    assert (tmp_path / "broken.png").read_bytes() == before and torch.allclose(model.reference[0], picture)

    plain = build_model("ae-ssim", "fast")
    assert not type(plain).uses_reference and plain.reference_image() is None
    with pytest.raises(ValueError, match="ae-ssim uses no reference image"):
        plain.set_reference(picture)
    write_png_atomic(tmp_path / "good.png", np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="ae-ssim uses no reference image"):
        plain.set_reference_from_path(tmp_path / "good.png")
