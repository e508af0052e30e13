"""Nothing of the user's is modified: every writer is run on an input folder holding unreadable files, and
every input file must be byte-identical afterwards."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.data.io import write_png_atomic
from core.progress import last_progress
from core.training import TrainOptions
from core.workflow import PredictRequest, TrainRequest, predict_folder, train_model


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Relative path -> file bytes, or the link target for a symbolic link (dangling ones included)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "link -> " + os.readlink(path)
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


def make_lot_with_bad_files(folder: Path, size: int = 64) -> list[str]:
    """Two readable images plus an empty file, a truncated PNG, a text file named .png and a dangling link.
    Returns the names of the files that must be skipped."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        write_png_atomic(folder / name, rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "a.png").read_bytes()[:60])
    (folder / "notes.png").write_text("not an image", encoding="utf-8")
    os.symlink(folder / "missing.png", folder / "dangling.png")
    return ["dangling.png", "empty.png", "notes.png", "truncated.png"]


@pytest.fixture(scope="module")
def tiny_model(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("safety_models") / "m.safetensors"
    request = TrainRequest(tiny_demo, "ae-l2", "fast", {"epochs": 1, "batch_size": 4}, out,
                           options=TrainOptions(device="cpu"))
    assert last_progress(train_model(request)).phase == "done"
    return out


@pytest.mark.parametrize("with_report", [False, True])
def test_predict_never_writes_into_its_input(tiny_model: Path, tmp_path: Path, with_report: bool):
    lot = tmp_path / "lot"
    bad = make_lot_with_bad_files(lot)
    before = _snapshot(lot)
    out = tmp_path / "out"
    report = tmp_path / "report" if with_report else None
    last = last_progress(predict_folder(PredictRequest(tiny_model, lot, out, device="cpu", report=report,
                                                       report_pdf=False)))
    assert last.phase == "done"
    assert _snapshot(lot) == before
    rows = list(csv.DictReader((out / "scores.csv").open(encoding="utf-8")))
    skipped = sorted(Path(r["file"]).name for r in rows if r["verdict"] == "skipped")
    assert skipped == bad
    assert sorted(Path(r["file"]).name for r in rows if r["verdict"] != "skipped") == ["a.png", "b.png"]


@pytest.fixture()
def bad_data(tiny_demo: Path, tmp_path: Path) -> Path:
    """The tiny MVTec demo copied, plus unreadable files in train/good and test/<type>."""
    data = tmp_path / "data"
    shutil.copytree(tiny_demo, data, symlinks=True)
    make_lot_with_bad_files(data / "train" / "good" / "junk")
    make_lot_with_bad_files(data / "test" / "scratch" / "junk")
    return data


def test_every_writer_leaves_its_inputs_alone(tiny_model: Path, bad_data: Path, tmp_path: Path):
    """evaluate --json, audit --csv, train --out, predict maps + report, a project file: inputs byte-identical."""
    from core.cli.main import main  # noqa: PLC0415
    from core.project import Project, save_project  # noqa: PLC0415

    model_copy = tmp_path / "models" / "m.safetensors"
    model_copy.parent.mkdir()
    model_copy.write_bytes(tiny_model.read_bytes())
    before = {"data": _snapshot(bad_data), "models": _snapshot(model_copy.parent)}
    out = tmp_path / "out"
    assert main(["evaluate", "--model", str(model_copy), "--data", str(bad_data), "--device", "cpu",
                 "--json", str(out / "metrics.json")]) == 0
    assert main(["audit", "--model", str(model_copy), "--data", str(bad_data), "--device", "cpu",
                 "--csv", str(out / "audit.csv")]) == 0
    assert main(["predict", "--model", str(model_copy), "--input", str(bad_data / "test"), "--device", "cpu",
                 "--out", str(out / "pred"), "--report", str(out / "report")]) == 0
    assert main(["train", "--data", str(bad_data), "--method", "ae-l2", "--epochs", "1", "--batch-size", "4",
                 "--device", "cpu", "--out", str(out / "again.safetensors")]) == 0
    save_project(out / "p", Project(dataset=bad_data, models=(model_copy,)))
    assert _snapshot(bad_data) == before["data"]
    assert _snapshot(model_copy.parent) == before["models"]
    written = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert {"metrics.json", "audit.csv", "scores.csv", "report.html", "again.safetensors"} <= set(written)
    assert not [name for name in written if name.endswith(".tmp")]


def test_overlays_of_same_named_inputs_do_not_overwrite_each_other(tiny_model: Path, tmp_path: Path):
    lot = tmp_path / "lot"
    lot.mkdir()
    rng = np.random.default_rng(1)
    write_png_atomic(lot / "a.png", rng.integers(0, 255, (32, 32), dtype=np.uint8))
    (lot / "a.jpg").write_bytes(_jpeg(rng.integers(0, 255, (32, 32), dtype=np.uint8)))
    last_progress(predict_folder(PredictRequest(tiny_model, lot, tmp_path / "out", device="cpu")))
    assert sorted(p.name for p in (tmp_path / "out" / "maps").iterdir()) == ["a_jpg_overlay.png", "a_overlay.png"]


def _jpeg(pixels: np.ndarray) -> bytes:
    import cv2  # noqa: PLC0415

    return cv2.imencode(".jpg", pixels)[1].tobytes()
