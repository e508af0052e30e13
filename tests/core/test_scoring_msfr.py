"""MSFR (CMA-AE Eq. 14) on hand-made features and through a model's encoder."""

from __future__ import annotations

import torch

from core.models.registry import build_model
from core.scoring.msfr import msfr_from_features, msfr_map, receptive_fields, supports_msfr


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
