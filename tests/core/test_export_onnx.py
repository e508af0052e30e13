"""ONNX export: per exportable method, a tiny untrained model exported and run by ONNX Runtime gives the
PyTorch maps within tolerance and the same verdicts; the metadata round-trips; what cannot export says so;
`predict --model M.onnx` writes the scores.csv of `predict --model M.safetensors`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.cli.main import main
from core.errors import UserError
from core.export.graph import choose_maps
from core.export.metadata import exported_meta, read_onnx_meta, read_props
from core.export.onnx_export import export_onnx
from core.export.runtime import load_onnx_model
from core.metrics.thresholds import Threshold
from core.modelfile import ModelMeta, save_model
from core.models.ae import AutoencoderL2
from core.models.base import AnomalyModel
from core.models.registry import build_model
from core.progress import last_progress
from core.workflow import PredictRequest, predict_folder

# Max |ONNX - PyTorch| of every map, relative to that map's range over the sample batch. Float32 kernels
# sum in another order; SSIM divides by local variances, which amplifies that most (measured <= 3e-4).
MAP_TOLERANCE = 1e-3
SAMPLES = 6

_SMALL_MEMORY = dict(input_size=32, downsamplings=2, base_channels=4, latent_dim=16, residual_blocks=1,
                     memory_slots=16)
TINY = {
    "ae-l2": dict(input_size=128, latent_dim=8),
    "ae-ssim": dict(input_size=128, latent_dim=8),
    "memae": dict(_SMALL_MEMORY, shrink_threshold=1.0 / 16),
    "trustmae": dict(_SMALL_MEMORY, use_gan=False, perceptual_backbone="efficientnet"),
    "cmaae": dict(input_size=32, patch_size=16, base_channels=4, latent_dim=16, memory_slots=16),
    "patchcore": dict(input_size=32, max_bank=64),
    "ndpnet": dict(input_size=64, widths=(4, 4, 8, 8, 8), ffm_channels=4, weight_perceptual=0.0),
}


def tolerance(reference: np.ndarray) -> float:
    """MAP_TOLERANCE of the values' range, and at least a few float32 rounding steps at their magnitude (an
    untrained network's map can be nearly constant)."""
    span = float(np.ptp(reference)) or 1.0
    return MAP_TOLERANCE * span + 4 * float(np.finfo(np.float32).eps) * float(np.abs(reference).max())


def smooth_images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n,channels,size,size) in [0,1]: smooth random shading plus a little noise, like product images."""
    g = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(n, channels, 6, 6, generator=g), size=(size, size), mode="bilinear",
                           align_corners=False)
    return (0.9 * coarse + 0.1 * torch.rand(n, channels, size, size, generator=g)).clamp(0, 1)


def tiny_model(method: str) -> AnomalyModel:
    torch.manual_seed(0)
    model = build_model(method, **TINY[method], in_channels=3).eval()
    if method == "patchcore":  # its one training pass: collect features of normal images, keep a coreset
        model.collect(smooth_images(4, 3, 32, seed=1), "collect")
        model.finalize("collect")
    if method == "ndpnet":  # its reference image is part of the model (chosen at training)
        model.set_reference(smooth_images(1, 3, 64, seed=3)[0])
    return model


def save_tiny(method: str, folder: Path, threshold: float = 1.0) -> Path:
    model = tiny_model(method)
    meta = ModelMeta(method=method, preset="fast", config=model.config.to_dict(), in_channels=3,
                     input_size=model.config.input_size, default_map=model.default_map,
                     map_names=list(model.all_map_names),
                     thresholds={model.default_map: {"image": Threshold(threshold, "test: set by hand").to_dict(),
                                                     "pixel": Threshold(threshold, "test: pixel").to_dict()}})
    return save_model(folder / f"{method}.safetensors", model, meta)


def split_threshold(scores: np.ndarray) -> float:
    """A threshold in the widest gap between the middle scores, so half the samples are 'defective'."""
    ordered = np.sort(scores)
    middle = ordered[1:-1]
    gap = int(np.argmax(np.diff(middle)))
    return float((middle[gap] + middle[gap + 1]) / 2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """method -> (model file, ONNX file with every map); exported once per module, on first use."""
    return {}


def export_once(exported: dict[str, tuple[Path, Path]], method: str, folder: Path) -> tuple[Path, Path]:
    if method not in exported:
        model_path = save_tiny(method, folder)
        onnx_path = export_onnx(model_path, folder / f"{method}.onnx", all_maps=True, fixed_batch=SAMPLES).path
        exported[method] = (model_path, onnx_path)
    return exported[method]


@pytest.mark.parametrize("method", list(TINY))
def test_exported_maps_and_verdicts_match_pytorch(method: str, exported: dict, tmp_path_factory) -> None:
    model_path, onnx_path = export_once(exported, method, tmp_path_factory.mktemp(method))
    model = tiny_model(method)
    runtime, meta = load_onnx_model(onnx_path)
    assert meta.default_map == model.default_map == runtime.map_names[0]
    assert sorted(runtime.map_names) == sorted(model.all_map_names)
    images = smooth_images(SAMPLES, 3, model.config.input_size, seed=2)
    expected, _ = model.score(images)
    got, _ = runtime.score(images)
    for name in model.all_map_names:
        ref, out = expected[name].numpy(), got[name].numpy()
        assert out.shape == ref.shape == (SAMPLES, 1, model.config.input_size, model.config.input_size)
        assert np.abs(out - ref).max() <= tolerance(ref), f"{method} map {name}"
    # The pooled image score inside the graph, and verdicts at a threshold between the PyTorch scores.
    from core.scoring.pooling import pool_scores  # noqa: PLC0415

    ref_scores = pool_scores(expected[model.default_map], model.config.pooling).numpy()
    graph_scores = runtime.session.run(["score"], {"images": images.numpy()})[0]
    assert np.abs(graph_scores - ref_scores).max() <= tolerance(ref_scores)
    t = split_threshold(ref_scores)
    assert list(graph_scores >= t) == list(ref_scores >= t)
    assert 0 < int((ref_scores >= t).sum()) < SAMPLES


def test_batch_size_is_dynamic(tmp_path: Path) -> None:
    model_path = save_tiny("memae", tmp_path)
    runtime, _ = load_onnx_model(export_onnx(model_path, tmp_path / "m.onnx").path)
    model = tiny_model("memae")
    for n in (1, 3):
        images = smooth_images(n, 3, 32)
        maps, recon = runtime.score(images)
        assert maps["l2"].shape == (n, 1, 32, 32) and recon is None
        ref = model.score(images)[0]["l2"]
        assert (maps["l2"] - ref).abs().max() <= MAP_TOLERANCE * float(ref.max() - ref.min())


def test_metadata_round_trip_and_inspect(exported: dict, tmp_path_factory, capsys) -> None:
    model_path, onnx_path = export_once(exported, "cmaae", tmp_path_factory.mktemp("cmaae"))
    from core.modelfile import read_meta  # noqa: PLC0415

    meta = read_meta(model_path)
    assert read_onnx_meta(onnx_path) == exported_meta(meta, ["msfr", "l1"])
    props = read_props(onnx_path)
    assert props["method"] == "cmaae" and props["preset"] == "fast" and props["default_map"] == "msfr"
    assert props["input_size"] == "32" and props["in_channels"] == "3" and props["pooling"] == "max_smoothed"
    assert props["image_threshold"] == "1" and props["image_threshold_how"] == "test: set by hand"
    assert props["pixel_threshold_how"] == "test: pixel" and "x * 2 - 1" in props["normalisation"]
    assert '"mode": "resize"' in props["resize_policy"] and props["outputs"] == "score,map_msfr,map_l1"
    assert props["code_version"] == meta.code_version
    assert main(["export", "--inspect", str(onnx_path)]) == 0
    printed = capsys.readouterr().out
    assert "image_threshold_how" in printed and "test: set by hand" in printed


def test_default_export_holds_the_default_map_and_asked_maps(exported: dict, tmp_path_factory) -> None:
    model = tiny_model("ae-l2")
    assert choose_maps(model) == ["l2"] and choose_maps(model, ["l1", "l2", "l1"]) == ["l2", "l1"]
    model_path, _ = export_once(exported, "ae-l2", tmp_path_factory.mktemp("ae-l2"))
    out = model_path.parent / "two.onnx"
    result = export_onnx(model_path, out, maps=["ssim"], fixed_batch=2)
    assert result.outputs == ["score", "map_l2", "map_ssim"]
    assert read_onnx_meta(out).map_names == ["l2", "ssim"] and list(read_onnx_meta(out).thresholds) == ["l2"]
    runtime, _ = load_onnx_model(out)  # a fixed-batch graph takes any number of images in groups
    assert runtime.fixed_batch == 2 and runtime.score(smooth_images(3, 3, 128))[0]["ssim"].shape[0] == 3


def test_what_cannot_export_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    model_path = save_tiny("ae-l2", tmp_path)
    with pytest.raises(UserError, match=r"ae-l2 has no map 'nn'; its maps are l2, ssim, l1"):
        export_onnx(model_path, tmp_path / "m.onnx", maps=["nn"])
    monkeypatch.setattr(AutoencoderL2, "export_blocker", "its test-time loop runs in Python")
    with pytest.raises(UserError, match="ae-l2 cannot be exported to ONNX: its test-time loop runs in Python"):
        export_onnx(model_path, tmp_path / "m.onnx")
    assert main(["export", "--model", str(model_path), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "cannot be exported" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
    assert main(["predict", "--model", str(tmp_path / "none.onnx"), "--input", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_predict_with_onnx_matches_pytorch_scores_csv(exported: dict, tmp_path_factory, tiny_demo: Path,
                                                       tmp_path: Path) -> None:
    model_path, onnx_path = export_once(exported, "ae-l2", tmp_path_factory.mktemp("ae-l2"))
    for name, path in (("pt", model_path), ("onnx", onnx_path)):
        assert main(["predict", "--model", str(path), "--input", str(tiny_demo / "test"),
                     "--out", str(tmp_path / name), "--no-maps"]) == 0
    pt, ox = _rows(tmp_path / "pt" / "scores.csv"), _rows(tmp_path / "onnx" / "scores.csv")
    assert pt[0] == ox[0] == ["file", "score", "verdict", "label", "score_l2", "score_ssim", "score_l1"]
    assert len(pt) == len(ox) > 2
    assert [r[0] for r in pt] == [r[0] for r in ox] and [r[2] for r in pt] == [r[2] for r in ox]
    for a, b in zip(pt[1:], ox[1:]):
        np.testing.assert_allclose([float(v) for v in b[4:] + [b[1]]], [float(v) for v in a[4:] + [a[1]]],
                                   rtol=1e-3, atol=1e-6)
