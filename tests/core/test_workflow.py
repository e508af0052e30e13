"""End to end on a tiny generated dataset: train -> model file -> evaluate -> predict, plus resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from core.modelfile import read_meta
from core.paths import last_model
from core.progress import CancelToken, last_progress
from core.training import TrainOptions
from core.workflow import (EvaluateRequest, PredictRequest, TrainRequest, evaluate_model, predict_folder,
                           train_model)

TINY = {"epochs": 2, "batch_size": 4}


@pytest.fixture(scope="module")
def trained(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    last = last_progress(train_model(TrainRequest(tiny_demo, "ae-ssim", "fast", TINY, out, options=TrainOptions(device="cpu"))))
    assert last.phase == "done" and last.result == out
    return out


def test_model_file_carries_label_free_thresholds(trained: Path, tiny_demo: Path):
    meta = read_meta(trained)
    assert meta.method == "ae-ssim" and meta.in_channels == 3 and meta.default_map == "ssim"
    assert meta.training["n_train"] + meta.training["n_validation"] == 12
    train = meta.training["observability"]["train"]  # means over the last epoch
    assert train["steps"] >= 1 and train["losses"]["ssim"] > 0 and train["observability"] == {}  # no memory
    for name in ("l1", "l2", "ssim"):
        assert "held-out normal" in meta.thresholds[name]["image"]["how"]
        assert meta.thresholds[name]["pixel"]["value"] > 0
        for kind, entry in meta.thresholds[name].items():
            assert 0.0 <= entry["false_reject_rate"] <= 1.0, kind
            assert ("degenerate" in entry) == kind.endswith("synthetic")
            assert ("reason" in entry) == bool(entry.get("degenerate"))
    assert not list(trained.parent.glob("*.ckpt.safetensors"))  # the model supersedes the checkpoint


def test_evaluate_reports_all_metrics(trained: Path):
    report = last_progress(evaluate_model(EvaluateRequest(trained, device="cpu"))).result
    assert report["counts"] == {"good": 4, "defective": 4}
    ssim = report["maps"]["ssim"]
    for key in ("image_auroc", "pixel_auroc", "aupro", "f1_max", "pixel_f1_max"):
        assert 0.0 <= ssim[key] <= 1.0, key
    assert set(ssim["per_type"]) <= {"scratch", "spot", "crack", "stain"}
    at = ssim["at_label_free_thresholds"]
    assert at["image"]["how"].startswith("label-free") and "synthetic" in at["image_synthetic"]["how"]
    for kind, values in at.items():
        assert 0.0 <= values["false_reject_rate"] <= 1.0 and isinstance(values["degenerate"], bool), kind


def test_predict_writes_csv_matching_results(trained: Path, tiny_demo: Path, tmp_path: Path):
    last = last_progress(predict_folder(PredictRequest(trained, tiny_demo / "test", tmp_path, device="cpu")))
    rows = list(csv.DictReader((tmp_path / "scores.csv").open(encoding="utf-8")))
    assert len(rows) == len(last.result) == 8
    threshold = read_meta(trained).image_threshold()
    for row, result in zip(rows, last.result):
        assert row["file"] == str(result.path) and float(row["score"]) == pytest.approx(result.score, rel=1e-5)
        assert row["verdict"] == ("defective" if result.score >= threshold else "good")
    assert len(list((tmp_path / "maps").glob("*_overlay.png"))) == 8


def test_cancelled_training_resumes_from_checkpoint(tiny_demo: Path, tmp_path: Path):
    out = tmp_path / "resume.safetensors"
    request = TrainRequest(tiny_demo, "ae-l2", "fast", {"epochs": 3, "batch_size": 4}, out,
                           options=TrainOptions(device="cpu", checkpoint_every=1))
    cancel = CancelToken()
    for p in train_model(request, cancel):
        if p.phase == "train" and p.step == 2:
            cancel.cancel()
    assert p.phase == "cancelled" and not out.exists()
    assert out.with_name("resume.ckpt.safetensors").exists()
    phases = [(p.phase, p.step) for p in train_model(request)]
    assert ("resumed", 2) in phases and ("train", 3) in phases and ("train", 2) not in phases
    assert phases[-1][0] == "done" and out.exists() and last_model() == out.resolve()


def test_tile_mode_trains_and_stitches_maps_to_full_resolution(tiny_demo: Path, tmp_path: Path):
    out = tmp_path / "tiled.safetensors"
    overrides = {"epochs": 1, "batch_size": 4, "resize_mode": "tile", "tile_scale": 1.5, "tile_overlap": 0.5}
    assert last_progress(train_model(TrainRequest(tiny_demo, "ae-l2", "fast", overrides, out,
                                          options=TrainOptions(device="cpu")))).phase == "done"
    request = PredictRequest(out, tiny_demo / "test" / "good", keep_maps=True, device="cpu")
    results = last_progress(predict_folder(request)).result
    assert all(r.maps["l2"].shape == (128, 128) and r.reconstruction.shape == (3, 128, 128) for r in results)
