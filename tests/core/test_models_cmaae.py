"""CMA-AE (core.models.cmaae, core.models.feature_repair): memory addressing, shrinkage, entropy, FRM gates, MSFR
weighting on hand-made tensors; patches; two-stage training with a frozen memory; model files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.preprocess import ResizePolicy
from core.models import build_model
from core.models.cmaae import (CMAAE, CMAAEConfig, split_patches, stitch_patches,
                               with_gaaga)
from core.models.feature_repair import ConcatFusion, FeatureRepair
from core.models.memory import ShrinkageMemory, entropy_loss, hard_shrinkage
from core.scoring.msfr import msfr_from_features, msfr_map, receptive_fields
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit

# 32x32 images, 16x16 patches (4 per image), tiny widths: a step takes milliseconds.
TINY = dict(input_size=32, patch_size=16, base_channels=4, latent_dim=8, memory_slots=4, batch_size=2,
            epochs=2)


def _tiny(**overrides: object) -> CMAAE:
    return build_model("cmaae", "fast", **{**TINY, **overrides})


def _images(count: int = 2, channels: int = 1, size: int = 32) -> TrainingImages:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (channels, size, size), dtype=np.uint8) for _ in range(count)]
    return TrainingImages(images, ResizePolicy("resize", size), augment=False)


# --- MAM: Eq. 2-5 -----------------------------------------------------------------------------------------

def test_cosine_addressing_eq2() -> None:
    memory = ShrinkageMemory(3, 2, shrink_threshold=0.0)  # threshold 0: plain Eq. 2
    with torch.no_grad():
        memory.items.copy_(torch.tensor([[1.0, 0.0], [0.0, 5.0], [-2.0, 0.0]]))
    # z = (3, 0): cosines with the items are 1, 0, -1 (lengths do not matter).
    # softmax: e^1, e^0, e^-1 over 2.71828 + 1 + 0.36788 = 4.08616 -> 0.66524, 0.24473, 0.09003
    readout = memory.eval()(torch.tensor([[3.0, 0.0]])[:, :, None, None])
    assert readout.weights[0].tolist() == pytest.approx([0.66524, 0.24473, 0.09003], abs=1e-5)
    # Eq. 4: z^ = w M = 0.66524 (1,0) + 0.24473 (0,5) + 0.09003 (-2,0) = (0.48518, 1.22365)
    assert readout.features.flatten().tolist() == pytest.approx([0.48518, 1.22365], abs=1e-4)


def test_hard_shrinkage_at_one_over_n_eq3() -> None:
    # N = 4, lambda = 1/4. Weights above lambda survive unchanged (w (w - l) / |w - l| = w), the others
    # become 0: (0.5, 0.3, 0, 0), renormalized by their sum 0.8 -> (0.625, 0.375, 0, 0).
    w = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    assert hard_shrinkage(w, 1 / 4)[0].tolist() == pytest.approx([0.625, 0.375, 0.0, 0.0], abs=1e-6)
    model = _tiny(memory_slots=4)
    assert isinstance(model.memory, ShrinkageMemory) and model.memory.shrink_threshold == 1 / 4


def test_entropy_loss_eq5() -> None:
    # Row 1: -(0.5 ln 0.5 + 0.5 ln 0.5) = ln 2 = 0.693147; row 2 (one-hot): 0. Mean over patches: 0.346574.
    w = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    assert entropy_loss(w).item() == pytest.approx(math.log(2) / 2, abs=1e-6)


# --- FRM: Eq. 6-10 ----------------------------------------------------------------------------------------

def _hand_made_repair(activation: str) -> FeatureRepair:
    """D = 2, all gate weights zero so the gates are set by their biases; the candidate reads z^ only."""
    frm = FeatureRepair(2, activation)
    with torch.no_grad():
        for layer in (frm.forget, frm.input, frm.candidate):
            layer.weight.zero_()
            layer.bias.zero_()
        frm.forget.bias.copy_(torch.tensor([0.0, math.log(3)]))  # sigmoid: (0.5, 0.75)
        frm.input.bias.copy_(torch.tensor([-math.log(3), 0.0]))  # sigmoid: (0.25, 0.5)
        frm.candidate.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))  # C = tanh(z^)
    return frm


def test_feature_repair_gates_eq6_to_10() -> None:
    frm = _hand_made_repair("sigmoid")
    z = torch.tensor([[2.0, -4.0]])
    z_memory = torch.tensor([[math.atanh(0.5), 0.0]])  # C = tanh(z^) = (0.5, 0)
    f, i, candidate = frm.gates(z, z_memory)
    assert f[0].tolist() == pytest.approx([0.5, 0.75], abs=1e-6)
    assert i[0].tolist() == pytest.approx([0.25, 0.5], abs=1e-6)
    assert candidate[0].tolist() == pytest.approx([0.5, 0.0], abs=1e-6)
    # z'' = f z + i C = (0.5 * 2 + 0.25 * 0.5, 0.75 * -4 + 0.5 * 0) = (1.125, -3.0)
    assert frm(z, z_memory)[0].tolist() == pytest.approx([1.125, -3.0], abs=1e-6)


def test_softmax_gates_are_the_literal_reading() -> None:
    frm = _hand_made_repair("softmax")
    f, i, _ = frm.gates(torch.zeros(1, 2), torch.zeros(1, 2))
    # softmax(0, ln 3) = (1, 3) / 4; softmax(-ln 3, 0) = (1/3, 1) / (4/3) = (0.25, 0.75)
    assert f[0].tolist() == pytest.approx([0.25, 0.75], abs=1e-6)
    assert i[0].tolist() == pytest.approx([0.25, 0.75], abs=1e-6)
    with pytest.raises(ValueError, match="gate activation"):
        FeatureRepair(2, "relu")


def test_fusion_switches() -> None:
    assert isinstance(_tiny().repair, FeatureRepair)
    assert isinstance(_tiny(fusion="concat").repair, ConcatFusion)
    assert _tiny(memory="mam").repair is None
    assert ConcatFusion(8)(torch.rand(3, 8), torch.rand(3, 8)).shape == (3, 8)
    with pytest.raises(ValueError, match="unknown memory"):
        _tiny(memory="lstm")


# --- MSFR: Eq. 14 -----------------------------------------------------------------------------------------

def test_msfr_weights_are_receptive_field_areas() -> None:
    # (kernel, stride) = (4,2), (3,1), (4,2): r1 = 1 + 3 = 4; jump 2, r2 = 4 + 2 * 2 = 8; r3 = 8 + 3 * 2 = 14
    assert receptive_fields([(4, 2), (3, 1), (4, 2)]) == [4, 8, 14]
    model = _tiny().eval()
    scales = model.feature_scales()
    assert [s.receptive_field for s in scales[:3]] == [4, 8, 14] and [s.stride for s in scales] == [2, 2, 4, 8, 16]
    feats = model.encoder_features(torch.rand(2, 1, 32, 32), 3)
    assert [tuple(f.shape) for f in feats] == [(2, 4, 16, 16), (2, 4, 16, 16), (2, 8, 8, 8)]
    assert [f.shape[1] for f in model.encoder_features(torch.rand(1, 1, 32, 32))] == [s.channels for s in scales]


def test_msfr_weighted_average_by_hand() -> None:
    # Constant residuals survive bilinear up-sampling unchanged.
    # scale 1: 2 channels, differences 1 and sqrt(3): squares 1 and 3, channel mean 2
    # scale 2: difference 2: square 4;  scale 3: no difference: 0
    # MSFR = (16 * 2 + 64 * 4 + 196 * 0) / (16 + 64 + 196) = 288 / 276 = 1.0434783
    fx = [torch.stack([torch.ones(4, 4), torch.full((4, 4), math.sqrt(3))])[None],
          torch.full((1, 1, 2, 2), 2.0), torch.ones(1, 3, 1, 1)]
    fy = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 2, 2), torch.ones(1, 3, 1, 1)]
    out = msfr_from_features(fx, fy, [16.0, 64.0, 196.0], (8, 8))
    assert out.shape == (1, 1, 8, 8)
    assert torch.allclose(out, torch.full_like(out, 288 / 276), atol=1e-6)


def test_msfr_of_an_image_with_itself_is_zero() -> None:
    model = _tiny().eval()
    x = torch.rand(2, 1, 32, 32)
    assert msfr_map(model, x, x).abs().max().item() == 0.0


# --- patches and shapes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [16, 8])
def test_patch_split_stitch_round_trip(stride: int) -> None:
    x = torch.rand(2, 3, 32, 32)
    patches = split_patches(x, 16, stride)
    per_image = ((32 - 16) // stride + 1) ** 2  # 4 without overlap, 9 with stride 8
    assert patches.shape == (2 * per_image, 3, 16, 16)
    # Row-major order, image 0 first: patch 1 of image 1 is image 1's second patch of its first row.
    assert torch.equal(patches[per_image + 1], x[1, :, 0:16, stride:stride + 16])
    # Overlapping pixels are averaged over copies of the same value: the image comes back.
    assert torch.allclose(stitch_patches(patches, 2, 32, stride), x, atol=1e-6)


def test_overlap_is_averaged() -> None:
    # 3x3 patches of 16x16, every 8 pixels on 32x32, patch k filled with the value k. Pixel (15, 15) lies
    # in patches 0, 1, 3, 4 -> mean (0 + 1 + 3 + 4) / 4 = 2; the corners lie in one patch each.
    patches = torch.arange(9.0).reshape(9, 1, 1, 1).expand(9, 1, 16, 16)
    image = stitch_patches(patches, 1, 32, 8)
    assert image[0, 0, 15, 15].item() == pytest.approx(2.0)
    assert image[0, 0, 0, 0].item() == 0.0 and image[0, 0, 31, 31].item() == 8.0


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_maps(channels: int) -> None:
    model = _tiny(in_channels=channels, input_size=64, perceptual_backbone="auto").eval()
    x = torch.rand(2, channels, 64, 64)
    recon, weights = model(x)
    assert recon.shape == x.shape and weights.shape == (2 * 16, 4)  # 16 patches of 16x16 per image
    z = model.encoder(split_patches(x, 16, 16))
    assert z.shape == (32, 8, 1, 1)
    maps, recon01 = model.predict(x)
    assert set(maps) == {"msfr", "l1", "perceptual"} and model.default_map == "msfr"
    for value in maps.values():
        assert value.shape == (2, 1, 64, 64) and torch.isfinite(value).all()
    assert 0.0 <= recon01.min() and recon01.max() <= 1.0


def test_stage1_decodes_the_memory_code_without_the_frm() -> None:
    model = _tiny().eval()
    x = torch.rand(2, 1, 32, 32)
    before = model(x, repair=False)[0]
    with torch.no_grad():
        for p in model.repair.parameters():
            p.add_(1.0)
    assert torch.equal(model(x, repair=False)[0], before)
    assert not torch.equal(model(x)[0], before)


def test_presets() -> None:
    paper = CMAAEConfig.paper()
    assert (paper.patch_size, paper.latent_dim, paper.input_size, paper.lr, paper.beta1) == (64, 512, 512, 2e-4, 0.5)
    assert paper.batch_size * (paper.input_size // paper.patch_size) ** 2 == 512  # Table I: 512 patches
    assert (paper.weight_rec, paper.weight_sparsity) == (50.0, 0.01)
    assert CMAAEConfig.fast().stage_epochs() == (6, 6) and paper.stage_epochs() == (100, 100)
    assert _tiny(epochs=1).phases()[1].epochs == 0 and _tiny(epochs=5, stage1_share=0.9).config.stage_epochs() == (4, 1)
    assert _tiny().map_names == ("msfr", "l1")  # the fast preset has no perceptual map
    assert paper.perceptual_backbone == "auto" and CMAAE.map_names == ("msfr", "l1", "perceptual")
    with pytest.raises(ValueError, match="patch_size"):
        _tiny(patch_size=24)
    with pytest.raises(ValueError, match="not covered"):
        _tiny(input_size=40)


def test_gaaga_batch_keeps_shape_and_range() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    out = with_gaaga(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert 0.0 <= out.min() and out.max() <= 1.0 and not torch.equal(out, x)


# --- training ---------------------------------------------------------------------------------------------

def test_phases_are_data() -> None:
    stage1, stage2 = _tiny().phases()
    assert (stage1.name, stage1.epochs, stage1.optimizers[0].modules) == ("stage1", 1, ("encoder", "memory", "decoder"))
    assert (stage2.name, stage2.frozen, stage2.optimizers[0].modules) == ("stage2", ("memory",),
                                                                          ("encoder", "repair", "decoder"))
    assert stage1.optimizers[0].betas == (0.5, 0.999)
    assert _tiny(memory="mam").phases()[1].optimizers[0].modules == ("encoder", "decoder")
    (single,) = _tiny(two_stage=False).phases()
    assert (single.name, single.epochs, single.optimizers[0].modules, single.frozen) == ("train", 2, (), ())


def test_two_stage_fit_freezes_the_memory_in_stage2() -> None:
    torch.manual_seed(0)
    model = _tiny()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    after_stage1: dict[str, torch.Tensor] = {}
    seen = []
    for progress in fit(model, _images(), TrainOptions(device="cpu")):
        seen.append(progress.phase)
        if progress.losses:
            assert all(np.isfinite(v) for v in progress.losses.values())
            assert set(progress.losses) == {"total", "l1", "entropy"}
        if progress.phase == "stage1":
            after_stage1 = {k: v.clone() for k, v in model.state_dict().items()}
    assert seen == ["stage1", "stage2", "done"]  # no perceptual map (fast preset): no calibration pass
    end = model.state_dict()
    # Stage 1 trained the memory and left the (bypassed) FRM alone.
    assert not torch.equal(start["memory.items"], after_stage1["memory.items"])
    assert torch.equal(start["repair.forget.weight"], after_stage1["repair.forget.weight"])
    # Stage 2: memory bit-identical (items and usage counts), encoder, FRM and decoder updated.
    assert torch.equal(after_stage1["memory.items"], end["memory.items"])
    assert torch.equal(after_stage1["memory.usage"], end["memory.usage"])
    for name in ("encoder.blocks.0.0.weight", "repair.forget.weight", "decoder.layers.0.0.weight"):
        assert not torch.equal(after_stage1[name], end[name]), name
    usage = model.training_stats()["memory_usage"]
    assert len(usage) == 4 and sum(usage) == pytest.approx(1.0)


@pytest.mark.parametrize("overrides", [dict(memory="mam"), dict(fusion="concat"), dict(two_stage=False)])
def test_ablations_train(overrides: dict) -> None:
    torch.manual_seed(0)
    model = _tiny(in_channels=3, **overrides)
    steps = [p for p in fit(model, _images(channels=3), TrainOptions(device="cpu")) if p.losses]
    assert len(steps) == 2 and all(np.isfinite(p.losses["total"]) for p in steps)


def test_model_file_round_trip(tmp_path: Path) -> None:
    from core.modelfile import ModelMeta, load_model, save_model

    torch.manual_seed(0)
    model = _tiny(in_channels=3, fusion="concat").eval()
    meta = ModelMeta(method="cmaae", preset="fast", config=model.config.to_dict(), in_channels=3,
                     input_size=32, default_map=model.default_map, map_names=list(model.map_names))
    loaded, read = load_model(save_model(tmp_path / "cmaae.safetensors", model, meta))
    assert isinstance(loaded, CMAAE) and loaded.config == model.config and read.default_map == "msfr"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], model(x)[0])
