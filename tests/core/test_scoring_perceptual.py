"""Perceptual distance (TrustMAE Eq. 8) with the bundled backbone and a random-trunk LPIPS."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from core.features.efficientnet import EfficientNetFeatures
from core.scoring import perceptual
from core.scoring.perceptual import (EfficientNetDistance, LpipsDistance, available_backbone, import_trunk_weights,
                                     perceptual_map, perceptual_mse_map, resolve_backbone)


def _images(channels: int = 1, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, channels, size, size, generator=g) * 0.5 + 0.25
    y = x.clone()
    y[:, :, 16:32, 16:32] = 0.9  # a bright square defect
    return x, y


def test_backbone_stages_shapes_and_frozen() -> None:
    net = EfficientNetFeatures((1, 2, 3, 4))
    feats = net(torch.rand(1, 1, 64, 64))
    assert [f.shape[1] for f in feats] == net.out_channels == [16, 24, 40, 112]
    assert [64 // f.shape[-1] for f in feats] == net.strides == [2, 4, 8, 16]
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    with pytest.raises(ValueError, match="stages"):
        EfficientNetFeatures((3, 2))


def test_backbone_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EfficientNetFeatures((1,), weights=tmp_path / "missing.pth")


@pytest.mark.parametrize("channels", [1, 3])
def test_efficientnet_distance_zero_for_identical_and_high_on_defect(channels: int) -> None:
    x, y = _images(channels)
    net = EfficientNetDistance(stages=(1, 2))
    assert net(x, x).abs().max() < 1e-6
    d = net(x, y)
    assert d.shape == (2, 1, 64, 64)
    assert d[0, 0, 20:28, 20:28].mean() > 5 * d[0, 0, 48:, 48:].mean()


@pytest.mark.parametrize("channels", [1, 3])
def test_lpips_random_trunk_spatial_map(channels: int) -> None:
    x, y = _images(channels)
    net = LpipsDistance("alex", random_trunk=True)
    assert net(x, x).abs().max() < 1e-6
    d = net(x, y)
    assert d.shape == (2, 1, 64, 64)
    assert d[0, 0, 20:28, 20:28].mean() > d[0, 0, 56:, 56:].mean()


def test_auto_falls_back_to_bundled_backbone_without_trunk_files(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    perceptual.find_trunk_weights.cache_clear()
    assert resolve_backbone("auto") == "efficientnet"
    assert available_backbone() == "efficientnet-lite0 (bundled)"
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        resolve_backbone("lpips-alex")
    x, y = _images()
    assert perceptual_map(x, x).abs().max() < 1e-6
    combined = perceptual_mse_map(x, y)
    assert combined.shape == (2, 1, 64, 64)
    assert torch.allclose(combined, perceptual_map(x, y) * ((x - y) ** 2).mean(1, keepdim=True))
    perceptual.find_trunk_weights.cache_clear()


def test_trunk_file_hash_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "alexnet.pth"
    fake.write_bytes(b"not the real weights")
    with pytest.raises(ValueError, match="SHA-256"):
        import_trunk_weights(fake, "alex")
    # A file whose hash does match the prefix is accepted and found afterwards.
    monkeypatch.setitem(perceptual.TRUNK_FILES, "alex",
                        "alexnet-owt-" + hashlib.sha256(fake.read_bytes()).hexdigest()[:8] + ".pth")
    target = import_trunk_weights(fake, "alex")
    assert perceptual.find_trunk_weights("alex") == target
    assert available_backbone("auto") == "lpips-alex (local weights)"
    perceptual.find_trunk_weights.cache_clear()
