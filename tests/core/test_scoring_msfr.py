"""MSFR (CMA-AE Eq. 14) on hand-made features and through each method's declared encoder scales."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.models.base import AnomalyModel, MethodConfig
from core.models.registry import build_model
from core.scoring.msfr import msfr_from_features, msfr_map, receptive_fields, supports_msfr

SMALL = {
    "ae-l2": {}, "ae-ssim": {},
    "memae": dict(input_size=64, base_channels=4, latent_dim=16, residual_blocks=1, memory_slots=8),
    "trustmae": dict(input_size=64, base_channels=4, latent_dim=16, residual_blocks=1, memory_slots=8),
    "cmaae": dict(input_size=32, patch_size=16, base_channels=4, latent_dim=8, memory_slots=4),
}


def test_receptive_field_recursion() -> None:
    # 4x4/2 -> 4; 3x3/1 -> 4 + 2*2 = 8; 4x4/2 -> 8 + 3*2 = 14
    assert receptive_fields([(4, 2), (3, 1), (4, 2)]) == [4, 8, 14]


def test_msfr_is_rf_weighted_mean_of_channel_means() -> None:
    size = (4, 4)
    zeros = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 2, 2)]
    # Scale 1: squared residual 1 in one of 2 channels -> channel mean 0.5 everywhere.
    f1 = torch.zeros(1, 2, 4, 4)
    f1[:, 0] = 1.0
    # Scale 2 (coarser): residual 2 in all 3 channels -> 4 everywhere, after constant upsampling.
    f2 = torch.full((1, 3, 2, 2), 2.0)
    out = msfr_from_features([f1, f2], zeros, weights=[1.0, 3.0], size=size)
    assert out.shape == (1, 1, 4, 4)
    assert torch.allclose(out, torch.full((1, 1, 4, 4), (1 * 0.5 + 3 * 4.0) / 4))
    assert msfr_from_features(zeros, zeros, [1.0, 3.0], size).abs().max() == 0


def _by_hand(stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Conv (padded by its padding_mode) -> [BN with running statistics] -> activation, written out with
    functional ops."""
    conv, *rest = list(stage)
    if conv.padding_mode == "zeros":
        h = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)
    else:
        ph, pw = conv.padding
        h = F.conv2d(F.pad(x, (pw, pw, ph, ph), mode=conv.padding_mode), conv.weight, conv.bias, conv.stride)
    for layer in rest:
        if isinstance(layer, nn.BatchNorm2d):
            h = F.batch_norm(h, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0,
                             layer.eps)
        elif isinstance(layer, nn.ReLU):
            h = F.relu(h)
        else:
            h = F.leaky_relu(h, layer.negative_slope)
    return h


def _with_trained_batch_norm(model: nn.Module) -> nn.Module:
    """Give every BN layer running statistics and an affine map far from the identity, then eval()."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 3 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


@pytest.mark.parametrize("method,stages", [("trustmae", "encoder.layers"), ("memae", "encoder.layers"),
                                           ("cmaae", "encoder.blocks")])
def test_features_are_taken_after_bn_and_activation_on_normalised_input(method: str, stages: str) -> None:
    # Conv -> BN -> act encoders trained on [-1,1]: scale i is stage i after BN and activation, fed 2x - 1.
    model = _with_trained_batch_norm(build_model(method, **SMALL[method]))
    blocks = model.get_submodule(stages)
    x = torch.rand(2, 1, model.config.input_size, model.config.input_size)
    y = x.flip(-1)
    expected, h = [], x * 2.0 - 1.0
    for block in list(blocks)[:3]:
        h = _by_hand(block, h)
        expected.append(h)
    with torch.no_grad():
        got = model.encoder_features(x, 3)
    for e, g in zip(expected, got):
        assert torch.allclose(e, g, atol=1e-5)
    raw_conv = list(blocks)[1][0](expected[0])  # what a tap before BN would have seen
    assert not torch.allclose(raw_conv, got[1], atol=1e-2)
    if method != "cmaae":  # ReLU stages: nothing negative survives
        assert all(float(g.min()) >= 0 for g in got)
    manual_y = []
    h = y * 2.0 - 1.0
    for block in list(blocks)[:3]:
        h = _by_hand(block, h)
        manual_y.append(h)
    weights = [float(s.receptive_field ** 2) for s in model.feature_scales()[:3]]
    want = msfr_from_features(expected, manual_y, weights, (x.shape[-2], x.shape[-1]))
    assert torch.allclose(msfr_map(model, x, y), want, atol=1e-5)


@pytest.mark.parametrize("method", sorted(SMALL))
def test_declared_scales_match_the_features(method: str) -> None:
    model = build_model(method, **SMALL[method]).eval()
    scales = model.feature_scales()
    assert len(scales) >= 3 and supports_msfr(model)
    size = model.config.input_size
    feats = model.encoder_features(torch.rand(1, 1, size, size))
    assert len(feats) == len(scales)
    for scale, f in zip(scales, feats):
        assert f.shape == (1, scale.channels, size // scale.stride, size // scale.stride)
    assert len(model.encoder_features(torch.rand(1, 1, size, size), 2)) == 2
    sides = [s.receptive_field for s in scales]
    assert sides == sorted(sides) and sides[0] > 1


def test_trustmae_scales_are_stem_and_down_samplings() -> None:
    model = build_model("trustmae", **SMALL["trustmae"])
    # 7x7/1 stem, then 3x3/2: r = 7, 7 + 2 * 1 = 9, 9 + 2 * 2 = 13
    assert [(s.stride, s.receptive_field) for s in model.feature_scales()[:3]] == [(1, 7), (2, 9), (4, 13)]


def test_msfr_through_autoencoder_encoder() -> None:
    model = build_model("ae-l2", input_size=128).eval()
    assert supports_msfr(model)
    x = torch.rand(2, 1, 128, 128)
    assert msfr_map(model, x, x).abs().max() == 0
    y = x.clone()
    y[:, :, 40:70, 40:70] = 1.0
    m = msfr_map(model, x, y)
    assert m.shape == (2, 1, 128, 128)
    assert m[0, 0, 50:60, 50:60].mean() > m[0, 0, 100:, 100:].mean()


class _NoEncoder(AnomalyModel):
    method = "none"


def test_a_method_without_scales_has_no_msfr() -> None:
    model = _NoEncoder(MethodConfig())
    assert model.feature_scales() == () and not supports_msfr(model)
    assert not supports_msfr(build_model("patchcore"))
    with pytest.raises(ValueError, match="exposes 0 encoder scales"):
        msfr_map(model, torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
