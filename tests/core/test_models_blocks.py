"""Shared network blocks: padding modes (a flat image gets no border excess), and how stored configs that
predate a setting keep the behaviour they were trained with."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.models import build_model, get_method
from core.models.blocks import PaddedConvTranspose2d, ResidualEncoder, conv2d, conv_transpose2d, level_widths


def _ones(layer: nn.Module) -> nn.Module:
    with torch.no_grad():
        layer.weight.fill_(1.0)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def test_conv_padding_modes_on_a_flat_image() -> None:
    # A 3x3 all-ones kernel on a constant 1 image: 9 everywhere with a reflected border; zero padding
    # leaves 6 on the edges and 4 in the corners.
    flat = torch.ones(1, 1, 5, 5)
    assert torch.equal(_ones(conv2d(1, 1, 3, 1, 1, "reflect"))(flat), torch.full((1, 1, 5, 5), 9.0))
    zeros = _ones(conv2d(1, 1, 3, 1, 1, "zeros"))(flat)[0, 0]
    assert (zeros[2, 2], zeros[0, 2], zeros[0, 0]) == (9.0, 6.0, 4.0)
    with pytest.raises(ValueError, match="padding_mode"):
        conv2d(1, 1, 3, 1, 1, "circle")


def test_padded_transposed_conv_gives_every_output_pixel_all_its_contributors() -> None:
    # 4x4 kernel, stride 2, padding 1 (every decoder up-sampling here): each output pixel of a constant map
    # receives 2 x 2 input pixels times a kernel weight of 1 -> 4, but the plain layer's border rows and
    # columns receive only 2 (1 in the corners): the dark frame of a transposed conv.
    flat = torch.ones(1, 1, 4, 4)
    padded = _ones(conv_transpose2d(1, 1, 4, 2, 1, "reflect"))
    plain = _ones(conv_transpose2d(1, 1, 4, 2, 1, "zeros"))
    assert isinstance(padded, PaddedConvTranspose2d) and type(plain) is nn.ConvTranspose2d
    assert padded.margin == 1
    assert torch.equal(padded(flat), torch.full((1, 1, 8, 8), 4.0))
    out = plain(flat)[0, 0]
    assert (out[3, 3], out[0, 3], out[0, 0]) == (4.0, 2.0, 1.0)
    # Same parameters, same interior: only the frame differs, and model files of both modes hold the same keys.
    x = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    plain.load_state_dict(padded.state_dict())
    assert torch.allclose(padded(x)[..., 2:-2, 2:-2], plain(x)[..., 2:-2, 2:-2], atol=1e-6)
    assert set(padded.state_dict()) == set(plain.state_dict())


@pytest.mark.parametrize("mode, neutral", [("reflect", True), ("zeros", False)])
def test_residual_encoder_keeps_a_flat_image_flat(mode: str, neutral: bool) -> None:
    """With reflect padding (and eval-mode norms) a constant input gives constant features at every level:
    no position, the border included, differs from the others. Zero padding makes the border differ."""
    torch.manual_seed(0)
    encoder = ResidualEncoder(1, level_widths(8, 16, 2), 1, mode).eval()
    with torch.no_grad():
        levels = encoder.features(torch.full((1, 1, 16, 16), 0.3)) + [encoder(torch.full((1, 1, 16, 16), 0.3))]
    spreads = [float((f - f.mean(dim=(2, 3), keepdim=True)).abs().max()) for f in levels]
    assert all(s < 1e-5 for s in spreads) == neutral


def test_methods_build_with_every_padding_mode() -> None:
    x = torch.rand(1, 1, 64, 64)
    for method, extra in [("ae-ssim", {"input_size": 128}), ("memae", {"downsamplings": 3}),
                          ("trustmae", {"downsamplings": 3}), ("cmaae", {"patch_size": 32}), ("ndpnet", {})]:
        size = extra.get("input_size", 64)
        for mode in ("reflect", "zeros"):
            model = build_model(method, "fast", **{"input_size": 64, **extra, "padding_mode": mode}).eval()
            if method == "ndpnet":
                model.set_reference(x[0])
            recon = model.reconstruction(x if size == 64 else torch.rand(1, 1, size, size))
            assert recon.shape[-1] == size, (method, mode)


def test_stored_configs_without_the_new_settings_keep_their_old_behaviour() -> None:
    """A model file written before these settings existed loads with what it was trained with."""
    old = {k: v for k, v in get_method("trustmae").config("fast").to_dict().items()
           if k not in ("rotate90", "padding_mode", "perceptual_calibration", "score_border", "trust_threshold_rule",
                        "trust_quantile")}
    old["pooling"] = "max_smoothed"
    config = get_method("trustmae").config_cls.from_dict(old)
    assert (config.rotate90, config.padding_mode, config.perceptual_calibration, config.score_border) == (
        True, "zeros", "none", "padded")  # `augment` used to rotate too
    assert config.trust_threshold_rule == "fixed" and config.pooling == "max_smoothed_padded"
    old["augment"] = False
    assert get_method("trustmae").config_cls.from_dict(old).rotate90 is False
    memae = {k: v for k, v in get_method("memae").config("fast").to_dict().items()
             if k not in ("addressing", "address_temperature")}
    assert get_method("memae").config_cls.from_dict(memae).address_temperature == 1.0
    # A current file keeps its values, and the fast presets use the new defaults.
    current = get_method("trustmae").config("fast")
    assert get_method("trustmae").config_cls.from_dict(current.to_dict()) == current
    assert (current.rotate90, current.padding_mode, current.perceptual_calibration, current.score_border,
            current.trust_threshold_rule) == (False, "reflect", "position", "neutral", "quantile")


def test_paper_presets_follow_what_each_paper_states() -> None:
    trust, memae, cmaae = (get_method(m).config("paper") for m in ("trustmae", "memae", "cmaae"))
    ndp, ae = get_method("ndpnet").config("paper"), get_method("ae-ssim").config("paper")
    assert trust.augment and trust.rotate90  # TrustMAE App. A: flips and random rotations
    assert (trust.trust_threshold_rule, trust.trust_threshold, trust.perceptual_calibration) == ("fixed", 20.0, "none")
    assert ae.augment and ae.rotate90  # Bergmann et al.: rotations and flips
    assert not cmaae.augment and not ndp.augment  # neither paper names any augmentation
    assert memae.address_temperature == cmaae.address_temperature == 1.0  # Gong's softmax has no temperature
    for method in ("ae-ssim", "memae", "trustmae", "cmaae", "ndpnet"):
        assert not get_method(method).config("fast").rotate90, method
