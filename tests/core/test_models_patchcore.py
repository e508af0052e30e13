"""PatchCore-style baseline: coreset, memory bank, nearest-neighbour maps, registry and model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.data.preprocess import ResizePolicy
from core.metrics.thresholds import Threshold
from core.modelfile import ModelMeta, load_model, save_model
from core.models.patchcore import PatchCore, _gaussian_blur, _half_of, _sampled_patches, greedy_coreset
from core.models.registry import build_model, get_method
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit


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


def _framed(n: int, seed: int, size: int = 64, band: int = 8) -> np.ndarray:
    """uint8 (n,1,size,size): a calm texture inside a band whose brightness and noise change per image,
    as the edge of a part or the background around it does."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = 0.5 + 0.02 * rng.standard_normal((size, size))
        frame = rng.uniform(0.1, 0.9) + 0.15 * rng.standard_normal((size, size))
        edge = np.ones((size, size), bool)
        edge[band:-band, band:-band] = False
        image[edge] = frame[edge]
        out.append(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)[None])
    return np.stack(out)


def _trained(**changes: object) -> PatchCore:
    model = build_model("patchcore", input_size=64, batch_size=8, **changes)
    assert isinstance(model, PatchCore)
    images = TrainingImages(list(_framed(48, seed=0)), ResizePolicy("resize", 64), augment=False)
    for _ in fit(model, images, TrainOptions(seed=0, device="cpu")):
        pass
    return model


def test_sampled_patches_keep_every_border_patch() -> None:
    idx = _sampled_patches(3, 8, 10, keep=5, keep_border=True)
    ring = {i for i in range(80) if i // 10 in (0, 7) or i % 10 in (0, 9)}
    assert idx.shape == (3, len(ring) + 5)
    for row in idx.tolist():
        assert ring <= set(row) and len(set(row)) == len(row)
    assert _sampled_patches(2, 8, 10, keep=5, keep_border=False).shape == (2, 5)


def test_half_of_depends_only_on_the_pixels() -> None:
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    halves = [_half_of(im) for im in images]
    assert halves == [_half_of(im.clone()) for im in images]
    assert 16 < sum(halves) < 48  # both halves get images


def test_position_norm_lets_the_defect_not_the_varying_border_decide_the_image_score() -> None:
    normalised, raw = _trained(), _trained(position_norm=False)
    assert [p.name for p in normalised.phases()] == ["collect", "position"]
    assert normalised.position_mean.shape == (1, 1, 8, 8) and bool((normalised.position_std > 0).all())
    assert raw.position_mean.numel() == 0
    good = torch.from_numpy(_framed(8, seed=1)).float() / 255
    defective = good.clone()
    defective[:, :, 28:36, 28:36] += 0.25  # a spot in the calm interior, fainter than the border's swings
    outcome = {}
    for model, name in ((normalised, "position_norm"), (raw, "raw")):
        maps = model.predict(torch.cat([good, defective]))[0]["nn"]
        scores = maps.flatten(1).amax(1)
        outcome[name] = bool(scores[8:].min() > scores[:8].max())
    # Raw distances of normal parts peak as high in the varying border as the spot does; z-scores do not.
    assert outcome == {"position_norm": True, "raw": False}, outcome


def test_position_statistics_survive_the_model_file(tmp_path: Path) -> None:
    model = _trained()
    meta = ModelMeta(method="patchcore", preset="fast", config=model.config.to_dict(), in_channels=1,
                     input_size=64, default_map="nn", map_names=["nn"], thresholds={})
    loaded, _ = load_model(save_model(tmp_path / "pc.safetensors", model, meta))
    assert torch.equal(loaded.position_std, model.position_std)
    assert torch.equal(loaded.bank_half, model.bank_half)
    x = torch.rand(2, 1, 64, 64)
    assert torch.allclose(loaded.predict(x)[0]["nn"], model.predict(x)[0]["nn"])
