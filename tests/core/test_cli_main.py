"""The `defectlab` command line: help, errors, and a tiny train -> evaluate -> predict run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.launcher import main as launcher_main
from core.cli import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "predict", "demo", "methods"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import core  # noqa: PLC0415

    assert launcher_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"defectlab {core.__version__}"
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"defectlab {core.__version__}"


def test_bad_input_gives_clear_error_and_exit_code(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    assert main(["train", "--data", str(tmp_path / "missing")]) == 2
    assert "missing' is neither an existing path" in capsys.readouterr().err
    assert main(["evaluate"]) == 2  # nothing trained yet in this isolated home
    assert "no trained model found" in capsys.readouterr().err


def test_train_evaluate_predict(tiny_demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    model = tmp_path / "m.safetensors"
    assert launcher_main(["train", "--data", str(tiny_demo), "--method", "ae-l2", "--epochs", "1",
                          "--batch-size", "4", "--out", str(model), "--device", "cpu"]) == 0
    assert f"model written to {model}" in capsys.readouterr().out
    assert main(["evaluate", "--json", str(tmp_path / "metrics.json"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "image AUROC" in out and "pixel AUROC" in out and "AUPRO@0.3" in out and "l2*" in out
    assert "FRR good (test)" in out and "image_synthetic" in out
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["model"] == str(model.resolve()) and "aupro" in report["maps"]["l2"]
    assert main(["predict", "--model", str(model), "--input", str(tiny_demo / "test" / "good"),
                 "--out", str(tmp_path / "pred"), "--device", "cpu"]) == 0
    assert (tmp_path / "pred" / "scores.csv").read_text().startswith("file,score,verdict,label")


def test_train_set_passes_any_config_setting() -> None:
    from core.cli.main import _overrides, build_parser

    args = build_parser().parse_args(["train", "--data", "x", "--method", "trustmae", "--set", "downsamplings=3",
                                      "--set", "use_gan=true", "--set", "feature_network=efficientnet",
                                      "--set", "trust_threshold=12.5", "--no-augment"])
    assert _overrides(args) == {"downsamplings": 3, "use_gan": True, "feature_network": "efficientnet",
                                "trust_threshold": 12.5, "augment": False}
    args = build_parser().parse_args(["train", "--data", "x", "--set", "downsamplings"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        _overrides(args)


def test_methods_lists_one_methods_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods", "trustmae"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["trust_threshold"] == ["10.0", "20.0"] and rows["top_k"] == ["3", "3"]


def test_train_scorer_option_is_checked(tiny_demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    common = ["train", "--data", str(tiny_demo), "--epochs", "1", "--batch-size", "4", "--device", "cpu"]
    assert main(common + ["--method", "ae-l2", "--scorer", "nope", "--out", str(tmp_path / "a.safetensors")]) == 2
    assert "scorers" in capsys.readouterr().err
    assert main(common + ["--method", "patchcore", "--scorer", "perceptual",
                          "--out", str(tmp_path / "b.safetensors")]) == 2
    assert "cannot score a patchcore model" in capsys.readouterr().err
    assert not (tmp_path / "a.safetensors").exists() and not (tmp_path / "b.safetensors").exists()
