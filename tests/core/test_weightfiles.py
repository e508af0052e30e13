"""Tests for core.weightfiles: where weight files are looked for and the SHA-256 check of a file's name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.weightfiles import find_local, hub_checkpoints, install, is_verified, sha256_prefix, weights_dir


def test_hub_checkpoints_follows_torch_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert hub_checkpoints() == tmp_path / "hub" / "checkpoints"


def test_a_file_is_verified_by_the_digits_in_its_torchvision_name(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("DEFECTLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    source = tmp_path / "downloaded.pth"
    source.write_bytes(b"some weights")
    digits = hashlib.sha256(b"some weights").hexdigest()[:8]
    name = f"vgg16-{digits}.pth"
    assert sha256_prefix(name) == digits and sha256_prefix("alexnet-owt-7be5be79.pth") == "7be5be79"
    assert is_verified(source, name) and not is_verified(source, "vgg16-397923af.pth")
    assert not is_verified(tmp_path / "absent.pth", name)
    assert find_local(name) is None
    with pytest.raises(ValueError, match="SHA-256 does not start with 397923af"):
        install(source, "vgg16-397923af.pth")
    target = install(source, name)
    assert target == weights_dir() / name and target.read_bytes() == b"some weights"
    assert find_local(name) == target
    assert find_local(name, (tmp_path,)) is None  # only the folders asked for
