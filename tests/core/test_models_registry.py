"""The method registry and config presets."""

from __future__ import annotations

import pytest
import torch

from core.models import MethodSpec, build_model, get_method, list_methods, register
from core.models.ae import AEConfig, AutoencoderL2


def test_builtin_methods_have_summaries_and_both_presets():
    names = [spec.name for spec in list_methods()]
    assert {"ae-l2", "ae-ssim"} <= set(names) and names == sorted(names)
    for spec in list_methods():
        assert spec.summary
        assert spec.config("fast").to_dict() and spec.config("paper").to_dict()


def test_duplicate_and_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register(MethodSpec("ae-l2", "again", AEConfig, AutoencoderL2))
    with pytest.raises(ValueError, match="unknown method 'nope'; known methods: .*ae-l2"):
        get_method("nope")


def test_overrides_validate_names_and_presets():
    with pytest.raises(ValueError, match="has no setting colour"):
        build_model("ae-l2", "fast", colour=1)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        build_model("ae-l2", "huge")
    config = get_method("ae-ssim").config("paper")
    assert (config.input_size, config.batch_size, config.latent_dim, config.lr) == (128, 128, 100, 2e-4)


@pytest.mark.parametrize("size, channels", [(128, 1), (128, 3), (256, 1)])
def test_autoencoder_shapes_and_maps(size: int, channels: int):
    model = build_model("ae-ssim", "fast", input_size=size, in_channels=channels)
    x = torch.rand(2, channels, size, size)
    maps, recon = model.predict(x)
    assert recon.shape == x.shape and 0 <= float(recon.min()) and float(recon.max()) <= 1
    assert set(maps) == {"l1", "l2", "ssim"} and all(m.shape == (2, 1, size, size) for m in maps.values())


def test_autoencoder_rejects_unsupported_size():
    with pytest.raises(ValueError, match="input_size 128, 256"):
        build_model("ae-l2", "fast", input_size=100)
