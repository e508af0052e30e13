"""Perceptual distance (TrustMAE Eq. 8) with the bundled backbone and a random-trunk LPIPS."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from core.features.efficientnet import EfficientNetFeatures
from core.scoring import perceptual
from core.scoring.perceptual import (EfficientNetDistance, LayerStats, LpipsDistance, available_backbone,
                                     import_trunk_weights, layer_scale, perceptual_layers, perceptual_map,
                                     perceptual_mse_map, resolve_backbone)


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


def test_layer_stats_and_scales_by_hand() -> None:
    # Two maps of one layer at two positions: (1, 3) and (3, 5). Per position: means (2, 4), stds (1, 1).
    # Over all positions: mean 3, variance (4 + 0 + 0 + 4) / 4 = 2 -> std sqrt(2).
    stats = LayerStats()
    stats.update(torch.tensor([[[[1.0, 3.0]]]]))
    stats.update(torch.tensor([[[[3.0, 5.0]]]]))
    result = stats.result()
    assert result.shape == (1, 2, 1, 2)
    assert result[0, 0].tolist() == [[2.0, 4.0]] and result[0, 1].tolist() == [[1.0, 1.0]]
    assert layer_scale(result, "position").tolist() == [[[1.0, 1.0]]]
    assert layer_scale(result, "layer").flatten().tolist() == pytest.approx([2 ** 0.5])
    assert layer_scale(result, "mean").flatten().tolist() == [3.0]
    assert layer_scale(result, "none") is None and layer_scale(LayerStats().result(), "layer") is None
    # Another map size than measured: the per-layer spread.
    assert layer_scale(result, "position", (4, 4)).shape == (1, 1, 1)
    # A position that never differed takes its layer's spread instead of ~0.
    flat = torch.tensor([[[[2.0, 4.0]], [[0.0, 2.0]]]])  # mean (2, 4), std (0, 2)
    assert layer_scale(flat, "position")[0, 0, 0] == pytest.approx(float(layer_scale(flat, "layer")))
    with pytest.raises(ValueError, match="calibration"):
        layer_scale(result, "lpips")


def test_calibrated_map_divides_each_layer_by_its_scale() -> None:
    x, y = _images()
    layers = perceptual_layers(x, y, "efficientnet")
    assert layers.shape == (2, 4, 64, 64)
    assert torch.allclose(perceptual_map(x, y, "efficientnet"), layers.sum(1, keepdim=True))
    scale = torch.tensor([1.0, 2.0, 4.0, 8.0])[:, None, None]
    expected = (layers / scale[None]).sum(1, keepdim=True)
    assert torch.allclose(perceptual_map(x, y, "efficientnet", scale=scale), expected)
    with pytest.raises(ValueError, match="another network"):
        perceptual_map(x, y, "efficientnet", scale=torch.ones(5, 1, 1))


def _stationary(n: int, seed: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Stationary texture in [0,1] (N,1,S,S) and the same plus independent noise: nothing differs at the border."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.nn.functional.avg_pool2d(torch.rand(n, 1, size + 2, size + 2, generator=g), 3, stride=1) * 2 - 0.5)
    return x.clamp(0, 1), (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _ring(size: int, width: int) -> torch.Tensor:
    ring = torch.ones(size, size, dtype=torch.bool)
    ring[width:-width, width:-width] = False
    return ring


def test_reflect_margin_gives_the_border_the_interior_mean() -> None:
    """On stationary texture the zero-padded network's distance is lower near the border (its features
    there describe the dark frame as much as the image); with the reflect margin it is the interior's."""
    x, y = _stationary(8, 0)
    ring = _ring(64, 8)
    ratios = {}
    for border in ("neutral", "padded"):
        m = perceptual_map(x, y, "efficientnet", border)
        ratios[border] = float(m[..., ring].mean() / m[..., ~ring].mean())
    assert abs(ratios["neutral"] - 1) < 0.05 and ratios["padded"] < 0.95


def test_per_position_calibration_leaves_the_border_no_excess() -> None:
    """Fewer distinct pixels feed a border feature, so its distance varies more and the map's maximum of
    normal images falls near the border more often than its share of the area. Dividing by the per-position
    spread measured on other normal images removes that."""
    stats = LayerStats()
    stats.update(perceptual_layers(*_stationary(32, 1), "efficientnet"))
    x, y = _stationary(24, 2)
    layers = perceptual_layers(x, y, "efficientnet")
    ring = _ring(64, 6)
    area = float(ring.float().mean())

    def border_share(maps: torch.Tensor) -> float:
        return sum(bool(m[0][ring].max() > m[0][~ring].max()) for m in maps) / len(maps)

    assert border_share(layers.sum(1, keepdim=True)) > area + 0.1
    calibrated = (layers / layer_scale(stats.result(), "position", (64, 64))[None]).sum(1, keepdim=True)
    assert border_share(calibrated) <= area + 0.05


def test_model_calibration_is_measured_stored_and_used(tmp_path: Path) -> None:
    from core.modelfile import ModelMeta, load_model, save_model
    from core.models import build_model

    torch.manual_seed(0)
    assert not build_model("ae-l2", "fast", input_size=128).calibrates_perceptual  # no perceptual map
    model = build_model("ae-l2", "fast", input_size=128, scorers=("perceptual",)).eval()
    x = torch.rand(2, 1, 128, 128)
    uncalibrated = model.perceptual_distance(x, model.reconstruction(x))
    assert model.calibrates_perceptual and model.perceptual_stats.numel() == 0
    steps = list(model.calibrate_perceptual(torch.rand(2, 1, 128, 128) for _ in range(2)))
    assert steps == [1, 2] and model.perceptual_stats.shape == (4, 2, 128, 128)
    calibrated = model.perceptual_distance(x, model.reconstruction(x))
    assert not torch.allclose(calibrated, uncalibrated)
    meta = ModelMeta(method="ae-l2", preset="fast", config=model.config.to_dict(), in_channels=1, input_size=128,
                     default_map=model.default_map, map_names=list(model.map_names))
    loaded, _ = load_model(save_model(tmp_path / "ae.safetensors", model, meta))
    assert torch.equal(loaded.perceptual_stats, model.perceptual_stats)
    assert torch.allclose(loaded.perceptual_distance(x, loaded.reconstruction(x)), calibrated, atol=1e-5)
    # "none" ignores the stored statistics: the uncalibrated distance.
    model.config = dataclasses.replace(model.config, perceptual_calibration="none")
    assert torch.allclose(model.perceptual_distance(x, model.reconstruction(x)), uncalibrated)


def test_model_file_without_perceptual_stats_loads_uncalibrated(tmp_path: Path) -> None:
    """A file written before the calibration existed has neither the setting nor the buffer."""
    from safetensors.torch import save_file

    from core.modelfile import ModelMeta, load_model, save_model
    from core.models import build_model

    model = build_model("ae-l2", "fast", input_size=128)
    old = {k: v for k, v in model.config.to_dict().items()
           if k not in ("rotate90", "padding_mode", "perceptual_calibration", "score_border")}
    old_model = build_model("ae-l2", "fast", input_size=128, padding_mode="zeros")
    meta = ModelMeta(method="ae-l2", preset="fast", config=old, in_channels=1, input_size=128,
                     default_map="l2", map_names=["l2", "ssim", "l1"])
    path = save_model(tmp_path / "old.safetensors", old_model, meta)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if k != "perceptual_stats"}
    save_file(tensors, str(path), metadata=header)
    loaded, _ = load_model(path)
    assert loaded.config.perceptual_calibration == "none" and loaded.config.padding_mode == "zeros"
    assert loaded.perceptual_stats.numel() == 0
