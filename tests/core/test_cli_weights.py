"""`defectlab weights import FILE` and `defectlab weights list` through the command line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.cli import main
from core.features import loss as feature_loss
from core.weightfiles import weights_dir


def test_weights_import_and_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    source = tmp_path / "vgg.pth"
    source.write_bytes(b"vgg19 weights, pretend")
    name = f"vgg19-{hashlib.sha256(source.read_bytes()).hexdigest()[:8]}.pth"
    monkeypatch.setattr(feature_loss, "VGG19_FILE", name)
    monkeypatch.setattr("core.workflow.weights.VGG19_FILE", name)
    feature_loss.find_vgg19_weights.cache_clear()
    assert main(["weights", "import", str(source)]) == 0
    assert f"{name} imported to {weights_dir() / name}" in capsys.readouterr().out
    assert feature_loss.find_vgg19_weights() == weights_dir() / name
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert str(weights_dir()) in out and f"{name}" in out and "not found" in out  # the LPIPS trunks are absent
    feature_loss.find_vgg19_weights.cache_clear()
    assert main(["weights", "import", str(tmp_path / "absent.pth")]) == 2
    assert "weights file not found" in capsys.readouterr().err
