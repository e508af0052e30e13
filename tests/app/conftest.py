"""GUI tests run offscreen with settings, models and demo data isolated in a temporary folder."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DEFECTLAB_HOME", str(home))
    monkeypatch.setenv("DEFECTLAB_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return home


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MVTec-layout demo folder (128 px): 8 train, 4 good and 4 defective test images with masks."""
    from core.data.demo import make_demo_dataset  # noqa: PLC0415

    return make_demo_dataset(tmp_path_factory.mktemp("data"), "metal", n_train=8, n_test_good=4,
                             n_test_defect=4, size=128)


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fast AE trained for one epoch on the tiny dataset (a few seconds on CPU)."""
    from core.progress import Progress  # noqa: PLC0415
    from core.workflow import TrainRequest, train_model  # noqa: PLC0415

    out = tmp_path_factory.mktemp("models") / "tiny_ae.safetensors"
    last: Progress | None = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEFECTLAB_HOME", str(tmp_path_factory.mktemp("train_home")))
        for last in train_model(TrainRequest(data=tiny_dataset, method="ae-ssim", preset="fast", out=out,
                                             overrides={"epochs": 1, "batch_size": 4})):
            pass
    assert last is not None and last.phase == "done"
    return out
