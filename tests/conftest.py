"""Shared fixtures: per-user folders isolated in a temp dir; tiny demo datasets made by the project's code.

The per-user folders are moved for the whole session in `pytest_configure`, before any fixture (module- and
session-scoped ones included) can run, and each test gets its own on top. The session fails if the real
user data folder ends up naming one of its models.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_MOVED = ("DEFECTLAB_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")
REAL_DATA_DIR_VAR = "DEFECTLAB_TEST_REAL_DATA_DIR"  # the real per-user data folder (for the check)


def pytest_configure(config: pytest.Config) -> None:
    from core.paths import user_data_dir  # noqa: PLC0415 - after the hook starts, before any test module

    real = user_data_dir()
    os.environ[REAL_DATA_DIR_VAR] = str(real)
    session_home = Path(tempfile.mkdtemp(prefix="defectlab-tests-"))
    config.stash[_HOME_KEY] = session_home
    for name in _MOVED:
        os.environ[name] = str(session_home / name.lower())


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HOME_KEY, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if the real user data folder now names a model of this session's temp folder."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    marker = Path(os.environ[REAL_DATA_DIR_VAR]) / "last_model.txt"
    if factory is None or not marker.is_file():
        return
    remembered = Path(marker.read_text(encoding="utf-8").strip())
    if remembered.is_relative_to(factory.getbasetemp()):
        print(f"\nERROR: the test session wrote the real user data folder: {marker} names {remembered}")
        session.exitstatus = 1


_HOME_KEY = pytest.StashKey[Path]()


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
