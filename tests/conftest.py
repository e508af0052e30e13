"""Shared fixtures: per-user folders isolated in a temp dir; tiny demo datasets made by the project's code."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("defectlab_home")
    monkeypatch.setenv("DEFECTLAB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MVTec-layout dataset (RGB fabric, 128 px) generated once per test session."""
    from core.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(root, "fabric", n_train=12, n_test_good=4, n_test_defect=4, size=128, seed=3)
