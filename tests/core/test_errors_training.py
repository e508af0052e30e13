"""What happens when training goes wrong, part two: kill -9 then resume, the held-out calibration images
stored in the model file and used everywhere, and a test suite that never touches the real home."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from badfiles import make_dataset, snapshot

from core.cli.main import main
from core.data.index import index_dataset, split_normals
from core.modelfile import read_meta
from core.paths import user_data_dir
from core.progress import last_progress
from core.training import TrainOptions
from core.workflow import TrainRequest, train_model
from core.workflow.heldout import held_out_records
from core.workflow.train import normal_training_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model trained with half of its normals held out (module-scoped: runs before per-test isolation)."""
    data = make_dataset(tmp_path_factory.mktemp("heldout") / "parts", n_train=8)
    model = tmp_path_factory.mktemp("heldout_models") / "m.safetensors"
    request = TrainRequest(data, "ae-l2", "fast", {"epochs": 1, "batch_size": 4}, model, val_fraction=0.5,
                           options=TrainOptions(device="cpu", seed=3))
    assert last_progress(train_model(request)).phase == "done"
    return data, model


def test_held_out_images_are_stored_and_used(trained: tuple[Path, Path]) -> None:
    data, model = trained
    meta = read_meta(model)
    index = index_dataset(data)
    normals = normal_training_records(index)
    _, expected = split_normals(normals, 0.5, 3)
    assert meta.training["held_out"] == [r.path.relative_to(data).as_posix() for r in expected]
    assert held_out_records(meta, index.root, normals) == expected
    assert len(expected) == 4  # a rebuilt 0.1 split would give 1 image: calibration on training images
    # The GUI's predict job keeps maps for exactly these training images.
    from app.jobs import predict_job  # noqa: PLC0415 - app.jobs is Qt-free
    assert predict_job(model, index, "cpu") is not None


def test_held_out_of_an_older_model_file_uses_its_stored_rule(trained: tuple[Path, Path]) -> None:
    data, model = trained
    meta = read_meta(model)
    normals = normal_training_records(index_dataset(data))
    older = dict(meta.training)
    del older["held_out"]
    legacy = type(meta)(**{**meta.__dict__, "training": older})
    assert held_out_records(legacy, data, normals) == split_normals(normals, 0.5, 3)[1]
    del older["val_fraction"]
    assert held_out_records(legacy, data, normals) == split_normals(normals, 0.1, 3)[1]
    # Another dataset: none of its images was trained on.
    assert held_out_records(meta, data.parent / "elsewhere", normals) == normals


def test_the_real_home_is_never_touched(trained: tuple[Path, Path],
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The module-scoped training above ran before any per-test fixture, yet wrote no per-user file at home."""
    real = Path(os.environ["DEFECTLAB_TEST_REAL_DATA_DIR"])
    assert not user_data_dir().resolve().is_relative_to(real.resolve())
    assert os.environ["XDG_DATA_HOME"] != str(Path.home() / ".local" / "share")
    marker = real / "last_model.txt"
    if marker.is_file():  # other programs may use the real home; this session must not have written it
        remembered = Path(marker.read_text(encoding="utf-8").strip())
        assert not remembered.is_relative_to(tmp_path_factory.getbasetemp())
        assert remembered != trained[1]


def test_kill_9_during_training_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "parts", n_train=8)
    before = snapshot(data)
    out = tmp_path / "m.safetensors"
    ckpt = tmp_path / "m.ckpt.safetensors"
    argv = ["train", "--data", str(data), "--method", "ae-l2", "--epochs", "40", "--batch-size", "4",
            "--device", "cpu", "--threads", "1", "--checkpoint-every", "2", "--out", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "core", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ckpt.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert ckpt.exists(), "no checkpoint appeared"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not out.exists()
    stale = tmp_path / ".m.ckpt.safetensors.killed.tmp"  # what a kill during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    os.utime(stale, (time.time() - 600, time.time() - 600))
    capsys.readouterr()
    assert main(argv) == 0  # the same command again: resume, finish, calibrate
    text = capsys.readouterr().err
    assert "resumed from" in text
    assert out.is_file() and not ckpt.exists()
    assert not list(tmp_path.glob(".*.tmp")), "the killed run's temp file was not cleaned"
    assert snapshot(data) == before
