"""The scorer registry: names, applicability, the maps a model's `score` adds, and a model file that
carries them through training, evaluation and prediction."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.modelfile import load_model, read_meta
from core.models.registry import build_model
from core.progress import last_progress
from core.scoring.maps import l2_map
from core.scoring.scorers import Scorer, applicable_scorers, check_scorers, extra_maps, register_scorer, scorer_names
from core.training import TrainOptions
from core.workflow import TrainRequest, train_model

TINY_AE = {"epochs": 1, "batch_size": 4}


def test_registry_rejects_duplicates_and_names_the_known_scorers() -> None:
    assert {"perceptual", "perceptual_mse", "msfr"} <= set(scorer_names())
    with pytest.raises(ValueError, match="already registered"):
        register_scorer(Scorer("msfr", "again", lambda model, x, recon: x))
    model = build_model("ae-l2", "fast")
    with pytest.raises(ValueError, match="unknown scorer 'nope'; known scorers: msfr, perceptual"):
        check_scorers(model, ("nope",))


def test_applicability_follows_the_model() -> None:
    ae = build_model("ae-l2", "fast")
    assert applicable_scorers(ae) == ["perceptual", "perceptual_mse", "msfr"]  # it has encoder scales
    patchcore = build_model("patchcore", "fast")
    assert applicable_scorers(patchcore) == []  # no reconstruction to compare with
    with pytest.raises(ValueError, match="cannot score a patchcore model"):
        check_scorers(patchcore, ("perceptual",))


def test_score_adds_the_configured_maps_and_reuses_the_perceptual_one() -> None:
    model = build_model("ae-l2", "fast", scorers=("perceptual", "perceptual_mse"))
    assert model.all_map_names == ("l2", "ssim", "l1", "perceptual", "perceptual_mse")
    x = torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(0))
    maps, recon = model.eval().score(x)
    assert set(maps) == set(model.all_map_names) and maps["perceptual"].shape == (2, 1, 128, 128)
    assert torch.allclose(maps["perceptual_mse"], maps["perceptual"] * l2_map(x, recon))
    own, _ = model.predict(x)
    assert set(own) == {"l2", "ssim", "l1"}
    fixed = {"perceptual": torch.ones(2, 1, 128, 128)}
    assert torch.allclose(extra_maps(model, ("perceptual_mse",), x, recon, fixed)["perceptual_mse"], l2_map(x, recon))


def test_a_model_file_carries_its_scorers(tiny_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "scored.safetensors"
    request = TrainRequest(tiny_demo, "ae-l2", "fast", {**TINY_AE, "scorers": ("msfr",)}, out,
                           options=TrainOptions(device="cpu"))
    assert last_progress(train_model(request)).phase == "done"
    meta = read_meta(out)
    assert meta.map_names == ["l2", "ssim", "l1", "msfr"] and "msfr" in meta.thresholds
    model, _ = load_model(out)
    maps, _ = model.eval().score(torch.rand(1, 3, 128, 128))
    assert set(maps) == {"l1", "l2", "ssim", "msfr"}
