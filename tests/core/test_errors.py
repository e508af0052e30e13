"""What happens when things go wrong: one row per case a user can cause or meet. Each row runs the command
line as a user would and asserts the message, the exit status (0 done, 2 bad input or environment, 130
cancelled), that no traceback reached the user, and that no input or earlier output changed."""

from __future__ import annotations

import csv
import errno
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from badfiles import (add_mask_cases, edit_model_meta, flip_header_bytes, make_dataset, make_odd_formats, noise,
                      snapshot)

import core.data.index
import core.fileio
import core.workflow.calibrate
import core.workflow.common
import core.workflow.predict
import core.workflow.train
from core.cli.main import main
from core.data.io import write_png_atomic
from core.progress import last_progress
from core.training import TrainOptions
from core.workflow import TrainRequest, train_model


@dataclass
class Env:
    """What a row works with: a shared dataset and model (must never change), a clean lot, a temp folder."""

    tmp: Path
    data: Path
    model: Path
    lot: Path
    patch: pytest.MonkeyPatch
    protected: list[Path] = field(default_factory=list)  # earlier outputs that must stay as they were


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = make_dataset(tmp_path_factory.mktemp("errors_data") / "parts")
    model = tmp_path_factory.mktemp("errors_models") / "m.safetensors"
    request = TrainRequest(data, "ae-l2", "fast", {"epochs": 1, "batch_size": 4, "input_size": 128}, model,
                           options=TrainOptions(device="cpu"))
    assert last_progress(train_model(request)).phase == "done"
    return data, model


@pytest.fixture()
def env(shared: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    lot = tmp_path / "lot"
    lot.mkdir()
    for i in range(3):
        write_png_atomic(lot / f"part_{i}.png", noise(32, 50 + i))
    return Env(tmp_path, shared[0], shared[1], lot, monkeypatch)


def ctrl_c_at(env: Env, module: Any, name: str, call: int = 1, hard: bool = False) -> None:
    """Press Ctrl-C when `module.name` is called for the `call`-th time (hard: the second, aborting press)."""
    original = getattr(module, name)
    calls = [0]

    def pressed(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == call:
            if hard:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)
    env.patch.setattr(module, name, pressed)


def fail_at(env: Env, module: Any, name: str, exc: BaseException, call: int = 1) -> None:
    """Make the `call`-th and later calls of `module.name` raise `exc`."""
    original = getattr(module, name)
    calls = [0]

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] >= call:
            raise exc
        return original(*args, **kwargs)
    env.patch.setattr(module, name, failing)


def read_only(env: Env, folder: Path) -> Path:
    """A folder nobody can write to (also for root, who ignores permission bits)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    real_mkstemp = core.fileio.tempfile.mkstemp

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:  # noqa: A002 - tempfile's name
        if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)
    env.patch.setattr(core.fileio.tempfile, "mkstemp", mkstemp)
    return folder


def earlier(env: Env, path: Path, text: str = "earlier output\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    env.protected.append(path)
    return path


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open(encoding="utf-8")))


def train(env: Env, *more: str) -> list[str]:
    return ["train", "--data", str(env.data), "--method", "ae-l2", "--epochs", "1", "--batch-size", "4",
            "--input-size", "128", "--device", "cpu", "--out", str(env.tmp / "new" / "model.safetensors"), *more]


def predict(env: Env, *more: str, lot: Path | None = None) -> list[str]:
    return ["predict", "--model", str(env.model), "--input", str(lot or env.lot), "--device", "cpu", *more]


def evaluate(env: Env, *more: str, model: Path | None = None) -> list[str]:
    return ["evaluate", "--model", str(model or env.model), "--device", "cpu", *more]


def _lot_with(env: Env, images: dict[str, np.ndarray]) -> Path:
    for name, pixels in images.items():
        write_png_atomic(env.lot / name, pixels)
    return env.lot


def _ckpt(env: Env) -> Path:
    return env.tmp / "new" / "model.ckpt.safetensors"


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Env], list[str]]
    exit: int
    says: tuple[str, ...]
    check: Callable[[Env, str], None] = lambda env, output: None
    early: bool = True  # a refusal before any long work (exit 2 within seconds)


def _scores_listed(skipped: list[str], scored: int) -> Callable[[Env, str], None]:
    def check(env: Env, output: str) -> None:
        table = rows(env.tmp / "out" / "scores.csv")[1:]
        assert sorted(Path(r[0]).name for r in table if r[2] == "skipped") == sorted(skipped)
        assert sum(1 for r in table if len(r) > 2 and r[2] in ("good", "defective")) == scored
    return check


def _partial_csv(scored: int) -> Callable[[Env, str], None]:
    def check(env: Env, output: str) -> None:
        table = rows(env.tmp / "out" / "scores.csv")
        assert sum(1 for r in table[1:] if len(r) > 2 and r[2] in ("good", "defective")) == scored
        assert table[-1][0].startswith("# partial")
        assert not list((env.tmp / "out").rglob("*.tmp"))
    return check


def _no_temp_left(env: Env, output: str) -> None:
    assert not [p for p in env.tmp.rglob(".*.tmp")], "an interrupted write left a temp file"


def _checkpoint_kept(env: Env, output: str) -> None:
    assert _ckpt(env).is_file() and not (env.tmp / "new" / "model.safetensors").exists()


def _nothing_trained(env: Env, output: str) -> None:
    assert not (env.tmp / "new" / "model.safetensors").exists()


def _stale_temp(env: Env) -> list[str]:
    out = env.tmp / "out"
    out.mkdir()
    stale = out / ".scores.csv.abc123.tmp"
    stale.write_text("half", encoding="utf-8")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    return predict(env, "--out", str(out))


def _readable_outputs(env: Env, output: str) -> None:
    files = [p for p in (env.tmp / "out").rglob("*") if p.is_file()]
    assert files and not [p for p in files if p.name.endswith(".tmp")]
    for path in files:
        assert path.stat().st_mode & 0o777 == core.fileio.FILE_MODE, path


def _torch_pickle(env: Env) -> Path:
    path = env.tmp / "pickled.safetensors"
    torch.save({"weights": torch.zeros(3)}, path)
    return path


CASES = [
    # --- nothing of the user's is modified; skipped files are listed
    Case("predict-unreadable-inputs", lambda e: predict(e, "--out", str(e.tmp / "out"), lot=_bad_lot(e)), 0,
         ("3 images scored",), _scores_listed(["dangling.png", "empty.png", "notes.png", "truncated.png"], 3)),
    Case("predict-16bit-rgba-palette-unicode", lambda e: predict(e, "--out", str(e.tmp / "out"),
                                                                 lot=_odd_lot(e)), 0, ("7 images scored",),
         _scores_listed([], 7)),
    # --- output problems, refused before any work
    Case("predict-out-read-only", lambda e: predict(e, "--out", str(read_only(e, e.tmp / "ro"))), 2,
         ("--out", "permission denied")),
    Case("train-out-read-only", lambda e: train(e)[:-1] + [str(read_only(e, e.tmp / "ro") / "m.safetensors")], 2,
         ("output model file", "permission denied")),
    Case("train-out-under-a-file", lambda e: train(e)[:-1] + [str(earlier(e, e.tmp / "f") / "m.safetensors")], 2,
         ("is a file, not a folder",), _nothing_trained),
    Case("train-out-is-a-folder", lambda e: train(e)[:-1] + [str(e.lot)], 2, ("is a folder; give a file name",)),
    Case("train-out-inside-data", lambda e: train(e)[:-1] + [str(e.data / "m.safetensors")], 2,
         ("inside the input",)),
    Case("evaluate-json-at-a-folder", lambda e: evaluate(e, "--json", str(e.lot)), 2, ("--json", "is a folder")),
    Case("evaluate-json-over-the-model", lambda e: evaluate(e, "--json", str(e.model)), 2,
         ("--json", "inside the input")),
    Case("audit-csv-under-a-file", lambda e: ["audit", "--model", str(e.model), "--csv",
                                              str(earlier(e, e.tmp / "f") / "a.csv")], 2, ("--csv", "is a file")),
    Case("predict-out-inside-input", lambda e: predict(e, "--out", str(e.lot / "results")), 2,
         ("inside the input",)),
    Case("predict-report-is-a-file", lambda e: predict(e, "--report", str(earlier(e, e.tmp / "r.html"))), 2,
         ("--report", "is a file")),
    Case("evaluate-disk-full-keeps-earlier-json", lambda e: _disk_full_json(e), 2, ("no space left",),
         _no_temp_left, early=False),
    Case("predict-disk-full-keeps-rows", lambda e: _disk_full_maps(e), 2, ("no space left",), _partial_csv(2),
         early=False),
    # --- cancel anywhere: exit 130, checkpoint kept, partial output marked partial
    Case("cancel-train-indexing", lambda e: (ctrl_c_at(e, core.data.index, "check_image", 2), train(e))[1], 130,
         ("training cancelled",), _nothing_trained),
    Case("cancel-train-loading", lambda e: (ctrl_c_at(e, core.workflow.common, "read_image", 1), train(e))[1],
         130, ("cancelled", "checkpoint kept"), _nothing_trained),
    Case("cancel-train-calibrating", lambda e: (ctrl_c_at(e, core.workflow.calibrate, "infer_images", 1, hard=True),
                                                train(e))[1], 130, ("cancelled",), _checkpoint_kept),
    Case("cancel-predict-indexing", lambda e: (ctrl_c_at(e, core.data.index, "check_image", 1),
                                               predict(e, "--out", str(e.tmp / "out")))[1], 130,
         ("cancelled while indexing",)),
    Case("cancel-predict-scoring", lambda e: (ctrl_c_at(e, core.workflow.predict, "heatmap_overlay", 1),
                                              predict(e, "--out", str(e.tmp / "out"), "--report",
                                                      str(e.tmp / "report")))[1], 130, ("PARTIAL",),
         lambda e, o: (_partial_csv(1)(e, o), "Partial report" in (e.tmp / "report" / "report.html").read_text(
             encoding="utf-8")) and None),
    # --- option bounds, rejected up front
    Case("batch-size-0", lambda e: train(e, "--batch-size", "0"), 2, ("batch_size = 0",), _nothing_trained),
    Case("epochs-0", lambda e: train(e, "--epochs", "0"), 2, ("epochs = 0",), _nothing_trained),
    Case("set-lr-nan", lambda e: train(e, "--set", "lr=NaN"), 2, ("lr = nan", "finite"), _nothing_trained),
    Case("set-lr-wrong-type", lambda e: train(e, "--set", "lr=fast"), 2, ("lr = 'fast'", "must be a number")),
    Case("target-frr-2", lambda e: train(e, "--target-frr", "2"), 2, ("--target-frr = 2.0",), _nothing_trained),
    Case("val-fraction-1", lambda e: train(e, "--val-fraction", "1"), 2, ("--val-fraction",)),
    # --- memory and degenerate images
    Case("predict-image-above-pixel-limit", lambda e: (e.patch.setenv("DEFECTLAB_MAX_PIXELS", "2000"),
                                                       predict(e, "--out", str(e.tmp / "out"),
                                                               lot=_lot_with(e, {"huge.png": noise(64)})))[1], 0,
         ("3 images scored",), _scores_listed(["huge.png"], 3)),
    Case("predict-one-image-out-of-memory", lambda e: (_oom_for_width(e, 40), predict(
        e, "--out", str(e.tmp / "out"), lot=_lot_with(e, {"wide.png": noise((32, 40))})))[1], 0,
         ("3 images scored",), _scores_listed(["wide.png"], 3)),
    Case("tiny-images-warned", lambda e: predict(e, "--out", str(e.tmp / "out"), lot=_lot_with(
        e, {"dot.png": noise(1), "speck.png": noise(8)})), 0, ("dot.png (1x1)", "speck.png (8x8)")),
    # --- masks: each problem named and counted
    Case("evaluate-mask-problems", lambda e: evaluate(e, "--data", str(_mask_cases(e))), 0,
         ("pixel metrics from 3 of 6 defect images", "no mask: no_mask.png", "empty_mask.png",
          "wrong_size_mask.png", "0/1 mask read as 1 = defect: zero_one_mask.png")),
    # --- model files: damaged, edited or not a model at all
    Case("model-truncated-header", lambda e: evaluate(e, model=_truncated(e, 200)), 2,
         ("Cannot load model", "t.safetensors", "not a safetensors model file")),
    Case("model-truncated-weights", lambda e: evaluate(e, model=_truncated(e, e.model.stat().st_size // 2)), 2,
         ("Cannot load model", "t.safetensors")),
    Case("model-header-flipped", lambda e: evaluate(e, model=flip_header_bytes(e.model, e.tmp / "f.safetensors")),
         2, ("Cannot load model",)),
    Case("model-pickle-renamed", lambda e: evaluate(e, model=_torch_pickle(e)), 2, ("Cannot load model",)),
    Case("model-huge-latent-dim", lambda e: evaluate(e, model=edit_model_meta(
        e.model, e.tmp / "x.safetensors", **{"config.latent_dim": 10 ** 9})), 2, ("x.safetensors", "latent_dim")),
    Case("model-zero-input-size", lambda e: predict(e, "--out", str(e.tmp / "out"), "--model", str(edit_model_meta(
        e.model, e.tmp / "x.safetensors", **{"config.input_size": 0, "input_size": 0}))), 2, ("input_size",)),
    Case("model-nan-threshold", lambda e: evaluate(e, model=edit_model_meta(
        e.model, e.tmp / "x.safetensors", **{"thresholds.l2.image.value": float("nan")})), 2,
         ("field thresholds.l2.image",)),
    # --- leftovers: stale temp files cleaned, ordinary read permissions
    Case("stale-temp-cleaned-and-readable", _stale_temp, 0, ("3 images scored",), _readable_outputs),
]


def _bad_lot(env: Env) -> Path:
    (env.lot / "empty.png").write_bytes(b"")
    (env.lot / "truncated.png").write_bytes((env.lot / "part_0.png").read_bytes()[:60])
    (env.lot / "notes.png").write_text("not an image", encoding="utf-8")
    os.symlink(env.lot / "missing.png", env.lot / "dangling.png")
    return env.lot


def _odd_lot(env: Env) -> Path:
    make_odd_formats(env.lot)
    return env.lot


def _disk_full_json(env: Env) -> list[str]:
    target = earlier(env, env.tmp / "metrics.json", '{"earlier": true}')
    fail_at(env, core.fileio.os, "fsync", OSError(errno.ENOSPC, "No space left on device"))
    return evaluate(env, "--json", str(target))


def _disk_full_maps(env: Env) -> list[str]:
    fail_at(env, core.workflow.predict, "write_png_atomic",
            OSError(errno.ENOSPC, "No space left on device", str(env.tmp / "out" / "maps")), call=3)
    return predict(env, "--out", str(env.tmp / "out"))


def _oom_for_width(env: Env, width: int) -> None:
    """Scoring an image of this width runs out of memory (as a huge image would)."""
    original = core.workflow.predict.infer_images

    def infer(model: Any, images: list[np.ndarray], *args: Any) -> Any:
        if any(image.shape[2] == width for image in images):
            raise MemoryError()
        return original(model, images, *args)
    env.patch.setattr(core.workflow.predict, "infer_images", infer)


def _mask_cases(env: Env) -> Path:
    data = make_dataset(env.tmp / "masked", n_train=2)
    add_mask_cases(data)
    return data


def _truncated(env: Env, size: int) -> Path:
    path = env.tmp / "t.safetensors"
    path.write_bytes(env.model.read_bytes()[:size])
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_what_happens_when_things_go_wrong(case: Case, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = [env.data, env.model, env.model.parent]
    before = snapshot(*inputs)
    argv = case.argv(env)
    before_lot, before_earlier = snapshot(env.lot), snapshot(*env.protected)
    started = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - started
    output = capsys.readouterr()
    text = output.out + output.err
    assert code == case.exit, text
    for words in case.says:
        assert words in text, f"{words!r} not in:\n{text}"
    assert "Traceback" not in text
    if case.exit == 2:
        errors = [line for line in output.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and output.err.strip().endswith(errors[0]), "one short message, last"
    if case.exit == 2 and case.early:
        assert len(output.err.strip().splitlines()) <= 3, "a refusal comes before any work"
        assert seconds < 15, "a refusal must come before any long work"
    assert snapshot(*inputs) == before, "an input changed"
    assert snapshot(env.lot) == before_lot, "the input folder changed"
    assert snapshot(*env.protected) == before_earlier, "an earlier output changed"
    case.check(env, text)
