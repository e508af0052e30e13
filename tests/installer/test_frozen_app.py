"""The frozen one-folder application (dist/defectlab, built by scripts/build_installer.sh) run as a user runs
it, in an environment with no Python paths, an empty home and an empty torch cache, offline: `--version`, the
headless demo with a one-epoch training, `predict` on a folder, export to ONNX and predict with it, a PatchCore
training (the bundled EfficientNet-Lite0 weights), and the workbench opening its window and quitting
(offscreen; under xcb too where Xvfb is installed). What is in the bundle is checked as well.

Marked `installer`, which the default suite deselects. `scripts/build_installer.sh --smoke` builds and runs
it; `DEFECTLAB_FROZEN=<folder>` points it at another build. Wall times go to <bundle>/../smoke-timings.json.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import core

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("DEFECTLAB_FROZEN", ROOT / "dist" / "defectlab"))
EXE = BUNDLE / "defectlab"
TIMINGS = BUNDLE.parent / "smoke-timings.json"
WEIGHTS = "efficientnet-lite0-57934424.pth"

pytestmark = [pytest.mark.installer,
              pytest.mark.skipif(not EXE.is_file(), reason=f"no frozen build at {BUNDLE}: scripts/build_installer.sh")]

_timings: dict[str, float] = {}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("frozen")
    yield folder
    TIMINGS.write_text(json.dumps(_timings, indent=1))


def clean_env(work: Path, **extra: str) -> dict[str, str]:
    """What a user's shell has, and nothing that could lead the program to a Python installation."""
    home = work / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
            "DEFECTLAB_HOME": str(home / "defectlab"), "DEFECTLAB_DEMO_DIR": str(work / "demo-data"),
            "TORCH_HOME": str(home / "torch"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            **extra}


def frozen(work: Path, name: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None,
           prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run the frozen program; its wall time is kept under `name`. A failure shows its output."""
    started = time.perf_counter()
    done = subprocess.run([*prefix, str(EXE), *args], env=env or clean_env(work), cwd=work, capture_output=True,
                          text=True, timeout=timeout)
    _timings[name] = round(time.perf_counter() - started, 2)
    assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_bundle_holds_what_the_app_needs_and_not_more() -> None:
    internal = BUNDLE / "_internal"
    assert [p.name for p in internal.rglob(WEIGHTS)], "EfficientNet-Lite0 weights not bundled"
    assert list(internal.rglob("DejaVuSans.ttf")), "report fonts not bundled"
    platforms = sorted(p.name for p in internal.rglob("plugins/platforms/*.so"))
    assert platforms == ["libqoffscreen.so", "libqxcb.so"]
    names = [p.name for p in internal.rglob("*.so*")]
    assert not [n for n in names if n.startswith(("libcu", "libnccl", "libcudnn", "libtorch_cuda"))]
    assert not [n for n in names if re.match(r"libQt6(Qml|Quick|Network|Sql|WebEngine|Designer)", n)]
    xcb = next(internal.rglob("plugins/platforms/libqxcb.so"))
    linked = subprocess.run(["ldd", str(xcb)], capture_output=True, text=True).stdout
    assert "not found" not in linked, linked
    files = [p for p in BUNDLE.rglob("*") if p.is_file() and not p.is_symlink()]
    _timings["bundle_mib"] = round(sum(p.stat().st_size for p in files) / 2**20, 1)
    _timings["bundle_files"] = len(files)


def test_version(work: Path) -> None:
    first = frozen(work, "version_first_s", "--version")
    assert first.stdout.strip() == f"defectlab {core.__version__}"
    frozen(work, "version_again_s", "--version")


@pytest.fixture(scope="module")
def demo(work: Path) -> tuple[Path, Path]:
    """(model file, demo dataset folder) from `defectlab demo --epochs 1`."""
    done = frozen(work, "demo_1_epoch_s", "demo", "--epochs", "1", "--out", str(work / "demo"))
    data = Path(re.search(r"demo dataset: (.+)", done.stderr).group(1).strip())
    model = next((work / "demo").glob("*.safetensors"))
    assert (data / "train" / "good").is_dir() and (work / "demo" / "metrics.json").is_file()
    assert json.loads((work / "demo" / "metrics.json").read_text())
    return model, data


def test_demo_trains_and_predict_scores_a_folder(work: Path, demo: tuple[Path, Path]) -> None:
    model, data = demo
    assert rows(work / "demo" / "test_predictions" / "scores.csv")
    folder = data / "test"
    frozen(work, "predict_folder_s", "predict", "--model", str(model), "--input", str(folder), "--out",
           str(work / "pt"), "--no-maps")
    scored = rows(work / "pt" / "scores.csv")
    images = [p for p in folder.rglob("*.png")]
    assert len(scored) == len(images) > 0 and {r["verdict"] for r in scored} <= {"good", "defective"}

    frozen(work, "export_onnx_s", "export", "--model", str(model), "--out", str(work / "m.onnx"))
    frozen(work, "predict_onnx_s", "predict", "--model", str(work / "m.onnx"), "--input", str(folder), "--out",
           str(work / "onnx"), "--no-maps")
    through_onnx = rows(work / "onnx" / "scores.csv")
    assert [(r["file"], r["verdict"]) for r in through_onnx] == [(r["file"], r["verdict"]) for r in scored]


def test_patchcore_uses_the_bundled_weights(work: Path, demo: tuple[Path, Path]) -> None:
    _, data = demo
    out = work / "patchcore.safetensors"
    frozen(work, "train_patchcore_s", "train", "--data", str(data), "--method", "patchcore", "--out", str(out),
           "--input-size", "128")
    assert out.is_file() and not any((work / "home" / "torch").rglob("*"))  # nothing fetched into a cache


def test_workbench_opens_its_window_and_quits(work: Path) -> None:
    done = frozen(work, "gui_start_offscreen_s", "gui", "--start-check", timeout=300)
    line = next(line for line in done.stdout.splitlines() if line.startswith("window shown:"))
    assert "DefectLab" in line and "on offscreen" in line and "File, View, Tools" in line
    assert "efficientnet-lite0 (bundled)" in line
    if shutil.which("xvfb-run") is None:
        pytest.skip("xcb not tried: no xvfb-run on this machine (offscreen passed)")
    env = clean_env(work, QT_QPA_PLATFORM="xcb")
    done = frozen(work, "gui_start_xcb_s", "gui", "--start-check", timeout=300, env=env,
                  prefix=(shutil.which("xvfb-run"), "-a"))
    assert "on xcb" in done.stdout
