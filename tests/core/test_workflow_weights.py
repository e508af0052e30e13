"""Tests for core.workflow.weights: a user's weights file is recognized by its SHA-256, whatever its name, and
found by the perceptual distance afterwards; an unknown file says which files would do."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.scoring import perceptual
from core.weightfiles import weights_dir
from core.workflow.weights import import_weights_file, known_weight_files, weights_report


@pytest.fixture
def fake_alexnet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A file standing in for torchvision's AlexNet file: the known name carries this file's hash digits."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    source = tmp_path / "copied from another machine.pth"
    source.write_bytes(b"alexnet weights, pretend")
    digits = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    monkeypatch.setitem(perceptual.TRUNK_FILES, "alex", f"alexnet-owt-{digits}.pth")
    perceptual.find_trunk_weights.cache_clear()
    yield source
    perceptual.find_trunk_weights.cache_clear()


def test_import_recognizes_the_file_by_its_hash(fake_alexnet: Path) -> None:
    assert perceptual.find_trunk_weights("alex") is None
    imported = import_weights_file(fake_alexnet)
    assert imported.name == perceptual.TRUNK_FILES["alex"] and "lpips-alex" in imported.used_for
    assert imported.path == weights_dir() / imported.name and imported.path.read_bytes() == fake_alexnet.read_bytes()
    assert perceptual.find_trunk_weights("alex") == imported.path  # the cached lookup was refreshed
    assert perceptual.available_backbone() == "lpips-alex (local weights)"
    found = {name: path for name, _use, path in weights_report()}
    assert found[imported.name] == imported.path and set(found) == set(known_weight_files())


def test_unknown_or_missing_files_are_clear_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    other.write_bytes(b"something else")
    with pytest.raises(ValueError, match="none of the weights files.*vgg16-397923af.pth"):
        import_weights_file(other)
    with pytest.raises(FileNotFoundError, match="not found"):
        import_weights_file(tmp_path / "absent.pth")
