"""PatchCore-style baseline: coreset, memory bank, nearest-neighbour maps, registry and model files."""

from __future__ import annotations

from pathlib import Path

import torch

from core.metrics.thresholds import Threshold
from core.modelfile import ModelMeta, load_model, save_model
from core.models.patchcore import PatchCore, _gaussian_blur, greedy_coreset
from core.models.registry import build_model, get_method


def test_greedy_coreset_covers_every_cluster() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(200, 2, generator=g) for c in centres])
    chosen = greedy_coreset(points, 4, projection_dim=0)
    assert sorted(int(i) // 200 for i in chosen) == [0, 1, 2, 3]
    assert len(greedy_coreset(points, 10_000)) == len(points)


def test_gaussian_blur_keeps_constants_and_mass_centre() -> None:
    flat = torch.full((1, 1, 20, 20), 3.0)
    assert torch.allclose(_gaussian_blur(flat, 2.0), flat, atol=1e-5)
    spike = torch.zeros(1, 1, 21, 21)
    spike[0, 0, 10, 10] = 1.0
    out = _gaussian_blur(spike, 1.5)
    assert out.argmax() == spike.argmax() and 0 < out.max() < 1


def _fitted(size: int = 64) -> PatchCore:
    model = build_model("patchcore", input_size=size, patches_per_image=0, max_bank=512)
    assert isinstance(model, PatchCore) and model.phases()[0].optimizers == ()
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, size, size, generator=g) * 0.1 + 0.45
    for _ in range(3):
        model.collect(base + 0.01 * torch.rand(4, 1, size, size, generator=g), "collect")
    model.finalize("collect")
    return model


def test_predict_scores_a_defect_above_normal_texture() -> None:
    model = _fitted()
    assert 0 < len(model.memory_bank) <= 512
    g = torch.Generator().manual_seed(1)
    normal = torch.rand(1, 1, 64, 64, generator=g) * 0.1 + 0.45
    defective = normal.clone()
    defective[..., 24:40, 24:40] = 1.0
    maps, recon = model.predict(torch.cat([normal, defective]))
    assert recon is None and maps["nn"].shape == (2, 1, 64, 64)
    assert maps["nn"][1].max() > 2 * maps["nn"][0].max()
    assert maps["nn"][1, 0, 32, 32] > maps["nn"][1, 0, 4, 4]


def test_registered_and_model_file_round_trip(tmp_path: Path) -> None:
    assert get_method("patchcore").config().input_size == 256
    assert get_method("patchcore").config("paper").coreset_ratio == 0.01
    model = _fitted()
    meta = ModelMeta(method="patchcore", preset="fast", config=model.config.to_dict(), in_channels=1,
                     input_size=64, default_map="nn", map_names=["nn"],
                     thresholds={"nn": {"image": Threshold(1.0, "test").to_dict()}})
    path = save_model(tmp_path / "pc.safetensors", model, meta)
    loaded, _ = load_model(path)
    assert torch.equal(loaded.memory_bank, model.memory_bank)
    x = torch.rand(1, 1, 64, 64)
    assert torch.allclose(loaded.predict(x)[0]["nn"], model.predict(x)[0]["nn"])
