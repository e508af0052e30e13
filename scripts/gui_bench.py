"""GUI benchmark: the real workbench window, offscreen, fed with generated results for 1,000 and 10,000 images.

What it measures, per dataset size:
- scoring: the window's scoring job (app.scoring_jobs.ScoringJobs, the worker thread, app.jobs.compact_stream,
  core.result_store) fed by a generator that yields what core.workflow.predict_folder yields (the index, then
  one ImageResult per image) with generated maps instead of running a model; the longest stall of the GUI
  thread (a 5 ms timer's largest gap) and the process's memory (RSS) before, during and after;
- reopening: the same folder and model again, results read back from the store instead of scored;
- threshold moves: the image and the pixel threshold moved 40 times each, every panel updated and painted
  (set_thresholds + processEvents), with an image and its contours on screen.
Wall-clock times include waiting for a CPU on a shared machine; the GUI thread's own CPU time
(time.thread_time) is given beside them: it is what the GUI's code costs, whatever else the machine runs.

Run: `QT_QPA_PLATFORM=offscreen python scripts/gui_bench.py` (a few minutes); writes BENCHMARKS-gui.md and
BENCHMARKS-gui.json in the repository root. `--sizes 500` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

SIDE = 128  # generated images are SIDE x SIDE grayscale
MAPS = ("l2", "ssim")
DEFECTIVE_EVERY = 10  # one test image in ten is defective, with a mask


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB (Linux /proc)."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def make_dataset(folder: Path, n: int) -> dict[str, tuple[int, int]]:
    """MVTec layout: 20 train/good, n test images (one in DEFECTIVE_EVERY with a square defect and its mask).
    Returns the defect's (x, y) by image name."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.random((SIDE, SIDE)).astype(np.float32), (0, 0), 3) * 255
    spots: dict[str, tuple[int, int]] = {}
    for sub in ("train/good", "test/good", "test/crack", "ground_truth/crack"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(20):
        cv2.imwrite(str(folder / "train/good" / f"{i:05d}.png"), base.astype(np.uint8))
    for i in range(n):
        defective = i % DEFECTIVE_EVERY == 0
        image = base.copy()
        name = f"{i:05d}.png"
        if defective:
            x, y = int(rng.integers(10, SIDE - 30)), int(rng.integers(10, SIDE - 30))
            image[y:y + 16, x:x + 16] = 250
            mask = np.zeros((SIDE, SIDE), np.uint8)
            mask[y:y + 16, x:x + 16] = 255
            cv2.imwrite(str(folder / "ground_truth/crack" / f"{i:05d}_mask.png"), mask)
            cv2.imwrite(str(folder / "test/crack" / name), image.astype(np.uint8))
            spots[name] = (x, y)
        else:
            cv2.imwrite(str(folder / "test/good" / name), image.astype(np.uint8))
    return spots


def make_model(path: Path) -> Path:
    """A real model file (the fast AE, untrained) whose metadata names two maps and their thresholds."""
    from core.modelfile import ModelMeta, save_model  # noqa: PLC0415
    from core.models.registry import get_method  # noqa: PLC0415

    spec = get_method("ae-ssim")
    config = spec.config("fast")
    thresholds = {name: {"image": {"value": 0.8, "how": "label-free: generated"},
                         "pixel": {"value": 0.6, "how": "label-free: generated"}} for name in MAPS}
    meta = ModelMeta(method="ae-ssim", preset="fast", config=config.to_dict(), in_channels=1,
                     input_size=config.input_size, default_map=MAPS[0], map_names=list(MAPS),
                     thresholds=thresholds, training={"seed": 0})
    return save_model(path, spec.model_cls(config), meta)


def generated_predictions(index, spots: dict[str, tuple[int, int]]) -> Iterator:  # noqa: ANN001
    """What predict_folder yields (the index, then one ImageResult per image), with generated maps."""
    from core.inference import ImageResult  # noqa: PLC0415
    from core.progress import Progress  # noqa: PLC0415

    rng = np.random.default_rng(1)
    variants = [cv2.GaussianBlur(rng.random((SIDE, SIDE)).astype(np.float32), (0, 0), 4) * 0.9 for _ in range(16)]
    yield Progress("index", len(index.records), len(index.records), result=index)
    records = index.records
    for step, record in enumerate(records, start=1):
        maps = {}
        for k, name in enumerate(MAPS):
            value = variants[(step + k) % len(variants)] + 0.05 * k
            spot = spots.get(record.path.name)
            if spot is not None:
                value = value.copy()
                value[spot[1]:spot[1] + 16, spot[0]:spot[0] + 16] += 0.5
            maps[name] = value
        scores = {name: float(value.max()) for name, value in maps.items()}
        recon = variants[step % len(variants)][None]
        result = ImageResult(record.path, record.label, scores[MAPS[0]], "good", scores, maps, recon)
        yield Progress("predict", step, len(records), result=result)
    yield Progress("done", len(records), len(records), message=f"scored {len(records)} images")


def wait(app, condition, timeout_s: float) -> None:  # noqa: ANN001
    """Run the Qt event loop (as the application does) until `condition()` holds."""
    from PySide6.QtCore import QEventLoop, QTimer  # noqa: PLC0415

    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s
    check = QTimer()
    check.setInterval(10)
    check.timeout.connect(lambda: loop.quit() if condition() or time.perf_counter() > deadline else None)
    check.start()
    if not condition():
        loop.exec()
    check.stop()
    app.processEvents()
    if not condition():
        raise TimeoutError("the window did not get there in time")


def run_size(app, n: int, work: Path) -> dict:  # noqa: ANN001
    from PySide6.QtCore import QTimer  # noqa: PLC0415

    import core.inference  # noqa: F401, PLC0415 - imported before measuring, as in the running application
    from app.jobs import compact_stream  # noqa: PLC0415
    from app.main_window import MainWindow  # noqa: PLC0415
    from core.modelfile import read_meta  # noqa: PLC0415
    from core.result_store import ResultStore  # noqa: PLC0415

    os.environ["DEFECTLAB_HOME"] = str(work / "home")
    data = work / "data"
    spots = make_dataset(data, n)
    model = make_model(work / "bench.safetensors")
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    window.open_folder(data)
    wait(app, lambda: window.session.index is not None and len(window.session.index.records) == n + 20, 300)
    meta = read_meta(model)
    window.session.set_model(model, meta)
    index = window.session.index
    store = ResultStore.open(model, index.root)

    ticks: list[float] = []
    cpu: list[float] = []  # the GUI thread's CPU time at each tick
    memory: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: (ticks.append(time.perf_counter()), cpu.append(time.thread_time()),
                                   memory.append(rss_mb()[0])))
    rss_before = rss_mb()[0]
    timer.start()
    started = time.perf_counter()
    window.scoring.start(lambda cancel: compact_stream(generated_predictions(index, spots), lambda _r: True, store),
                         f"Scoring {n} generated results…")
    wait(app, lambda: window.scoring.job is None, 900)
    scoring_s = time.perf_counter() - started
    timer.stop()
    gaps = np.diff(ticks) * 1000
    gap_cpu = np.diff(cpu) * 1000
    rss_after, peak = rss_mb()
    assert len(window.session.results) == n + 20, len(window.session.results)

    defective = next(r.path for r in window.session.scored() if r.has_mask)
    window.session.set_current(defective)
    window.viewer.mode.setCurrentIndex(1)
    app.processEvents()
    scores = window.session.scores()
    image_moves, pixel_moves, image_cpu, pixel_cpu = [], [], [], []
    for value in np.quantile(scores, np.linspace(0.5, 0.99, 40)):
        t0, c0 = time.perf_counter(), time.thread_time()
        window.session.set_thresholds(image=float(value))
        app.processEvents()
        image_moves.append((time.perf_counter() - t0) * 1000)
        image_cpu.append((time.thread_time() - c0) * 1000)
    for value in np.linspace(0.5, 1.2, 40):
        t0, c0 = time.perf_counter(), time.thread_time()
        window.session.set_thresholds(pixel=float(value))
        app.processEvents()
        pixel_moves.append((time.perf_counter() - t0) * 1000)
        pixel_cpu.append((time.thread_time() - c0) * 1000)
    window.session.set_thresholds(pixel=0.8)
    app.processEvents()
    outline = window.viewer.grid.panes["l2"].pred.has_outline()

    t0 = time.perf_counter()
    window.session.clear_results()
    window.opening.score_folder()  # reopening: the store has every result
    wait(app, lambda: window.scoring.job is None, 300)
    reload_s = time.perf_counter() - t0
    reloaded = len(window.session.results) == n + 20 and "earlier run" in window.job_status.label.text()
    window.close()
    app.processEvents()
    return {
        "images": n + 20, "scoring_s": round(scoring_s, 1),
        "images_per_s": round((n + 20) / scoring_s, 1),
        "longest_stall_ms": round(float(gaps.max()), 1) if gaps.size else None,
        "stalls_over_100ms": int(np.count_nonzero(gaps > 100)),
        "longest_stall_gui_cpu_ms": round(float(gap_cpu[np.argmax(gaps)]), 1) if gaps.size else None,
        "most_gui_cpu_in_one_stall_ms": round(float(gap_cpu.max()), 1) if gap_cpu.size else None,
        "rss_before_mb": round(rss_before, 0), "rss_after_mb": round(rss_after, 0),
        "rss_peak_during_mb": round(max(memory) if memory else rss_after, 0), "process_peak_mb": round(peak, 0),
        "memory_per_image_kb": round((rss_after - rss_before) * 1024 / (n + 20), 1),
        "reload_from_store_s": round(reload_s, 2), "reloaded_all": reloaded,
        "image_threshold_move_ms": {"median": round(float(np.median(image_moves)), 1),
                                    "max": round(float(np.max(image_moves)), 1)},
        "pixel_threshold_move_ms": {"median": round(float(np.median(pixel_moves)), 1),
                                    "max": round(float(np.max(pixel_moves)), 1)},
        "image_threshold_move_gui_cpu_ms": {"median": round(float(np.median(image_cpu)), 1),
                                            "max": round(float(np.max(image_cpu)), 1)},
        "pixel_threshold_move_gui_cpu_ms": {"median": round(float(np.median(pixel_cpu)), 1),
                                            "max": round(float(np.max(pixel_cpu)), 1)},
        "contour_drawn": bool(outline),
    }


def markdown(runs: list[dict], machine: dict) -> str:
    from core.bench.report import gui_tables  # noqa: PLC0415 - the same tables BENCHMARKS.md shows

    return "\n".join(["# GUI benchmark", "",
                      "Made by `scripts/gui_bench.py` (see its docstring): the real workbench window offscreen at "
                      "1600×1000, fed through the scoring job's own code path (worker thread, "
                      "`app.jobs.compact_stream`, `core.result_store`) with *generated* results (128 px grayscale "
                      "images, maps `l2` and `ssim`; no model is run), so the numbers are the GUI's cost, not a "
                      "model's.", ""] + gui_tables({"machine": machine, "runs": runs}) + [""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS-gui.md")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415

    app = QApplication.instance() or QApplication([sys.argv[0]])
    load = os.getloadavg()[0]
    machine = {"machine": platform.machine(), "cpus": os.cpu_count(), "load": round(load, 1),
               "shared": load > 1.5, "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    runs = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="defectlab-gui-bench-") as work:
            runs.append(run_size(app, n, Path(work)))
            print(json.dumps(runs[-1]), flush=True)
    args.out.write_text(markdown(runs, machine), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "runs": runs}, indent=1) + "\n",
                                             encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
