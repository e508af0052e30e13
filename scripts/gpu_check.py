"""Time every method's paper preset on a GPU: one epoch (at most --max-steps steps) of training and a
short inference, on a real dataset when one is present, otherwise on the generated demo.

Writes gpu_check.json and gpu_check.md (ms/step, ms/image, peak GPU memory, losses) to --out. A method
that fails is recorded with its error and the others still run.

    python scripts/gpu_check.py --out OUT_DIR [--data DIR] [--max-steps 40] [--methods a,b]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from core.data.demo import make_demo_dataset  # noqa: E402
from core.data.index import ImageRecord, default_data_dir, index_dataset  # noqa: E402
from core.data.preprocess import working_image  # noqa: E402
from core.inference import infer_images, match_channels  # noqa: E402
from core.models.registry import get_method, list_methods  # noqa: E402
from core.training.batches import TrainingImages  # noqa: E402
from core.training.engine import TrainOptions, fit  # noqa: E402
from core.workflow.common import read_batches  # noqa: E402
from core.workflow.train import normal_training_records  # noqa: E402
from core.progress import CancelToken  # noqa: E402

WARMUP_STEPS = 2  # not timed: CUDA context, cuDNN autotuning, lazy feature networks
INFER_IMAGES = 16


def pick_dataset(data: str | None, work: Path) -> Path:
    """--data, else magnetic_tile in the data folder, else a generated demo dataset in `work`."""
    if data:
        return Path(data)
    real = default_data_dir() / "magnetic_tile"
    if (real / "train" / "good").is_dir():
        return real
    return make_demo_dataset(work, "metal", n_train=60, n_test_good=8, n_test_defect=8, size=256)


def load(records: list[ImageRecord], policy: Any, limit: int) -> list[np.ndarray]:
    """At most `limit` images (evenly spaced over `records`) at the preset's working resolution, (C,H,W) float."""
    if len(records) > limit:
        records = [records[i] for i in np.linspace(0, len(records) - 1, limit).round().astype(int)]
    images: list[np.ndarray] = []
    for _, batch, _ in read_batches(records, CancelToken()):
        images += [working_image(im, policy) for im in batch]
    return images


def one_epoch_per_phase(spec: Any, config: Any) -> int:
    """The fewest epochs that give every training phase at least one (two-stage methods need 2)."""
    for epochs in range(1, 5):
        candidate = type(config).from_dict({**config.to_dict(), "epochs": epochs})
        if all(phase.epochs >= 1 for phase in spec.model_cls(candidate).phases()):
            return epochs
    return 4


def check_method(name: str, train_records: list[ImageRecord], test_records: list[ImageRecord],
                 max_steps: int, device: torch.device) -> dict[str, Any]:
    """Train `name`'s paper preset for one epoch per phase, on at most `max_steps` steps in all (fewer
    images when the dataset is larger), and time it; then time inference."""
    spec = get_method(name)
    paper = spec.config("paper")
    epochs = one_epoch_per_phase(spec, paper)
    phase_count = len(spec.model_cls(type(paper).from_dict({**paper.to_dict(), "epochs": epochs})).phases())
    steps_per_phase = max(max_steps // phase_count, 1)
    raw = load(train_records, paper.policy, steps_per_phase * paper.batch_size)
    channels = 3 if any(im.shape[0] == 3 for im in raw) else 1
    images = [np.round(match_channels(im, channels) * 255).astype(np.uint8) for im in raw]
    # A preset that counts its training in iterations (I3AD: 500,000) gets the same budget in steps.
    counted = {"iterations": steps_per_phase} if paper.to_dict().get("iterations") else {}
    config = type(paper).from_dict({**paper.to_dict(), "in_channels": channels, "epochs": epochs, **counted})
    torch.manual_seed(0)
    model = spec.model_cls(config)
    training = TrainingImages(images, config.policy, config.augment)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    by_phase: dict[str, list[float]] = {}
    last_losses: dict[str, float] = {}
    start = time.perf_counter()
    for progress in fit(model, training, TrainOptions(device=str(device))):
        now = time.perf_counter()
        if progress.phase not in ("done", "resumed"):
            by_phase.setdefault(progress.phase, []).append(now - start)
            last_losses = progress.losses or last_losses
        start = now
    # fit reads every loss back as a float, so each step's time includes its GPU work.
    ms_per_step = {phase: round(1000 * statistics.median(times[WARMUP_STEPS:] or times), 2)
                   for phase, times in by_phase.items()}
    all_steps = [t for times in by_phase.values() for t in times]

    test = [match_channels(im, channels) for _, batch, _ in read_batches(test_records[:INFER_IMAGES], CancelToken())
            for im in batch]
    infer_images(model, test[:1], config.policy, device)  # warm-up
    t = time.perf_counter()
    results = infer_images(model, test, config.policy, device)  # maps come back to the CPU: synchronized
    infer_ms = (time.perf_counter() - t) * 1000 / max(len(test), 1)
    finite = all(np.isfinite(m).all() for maps, _ in results for m in maps.values())
    return {
        "method": name, "status": "ok" if finite else "non-finite maps",
        "input_size": config.input_size, "resize_mode": config.resize_mode, "batch_size": config.batch_size,
        "train_images": len(images), "epochs": epochs, "steps_run": len(all_steps),
        "ms_per_step": ms_per_step, "ms_first_step": round(1000 * all_steps[0], 1),
        "train_seconds": round(sum(all_steps), 2), "infer_ms_per_image": round(infer_ms, 2),
        "infer_images": len(test),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated(device) / 2**20) if cuda else None,
        "last_losses": {k: round(v, 5) for k, v in last_losses.items()},
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# GPU check: {report['device']}", "",
             f"torch {report['torch']}, data `{report['data']}`, paper presets, one epoch per training "
             f"phase, at most {report['max_steps']} steps in all; ms/step is the median after {WARMUP_STEPS} "
             "warm-up steps.", "",
             "| method | status | input | batch | train images | steps | ms/step by phase | first step ms "
             "| infer ms/image | peak GPU MiB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["methods"]:
        if r["status"] == "error":
            lines.append(f"| {r['method']} | error: {r['error']} | | | | | | | | |")
            continue
        lines.append(f"| {r['method']} | {r['status']} | {r['input_size']} ({r['resize_mode']}) | {r['batch_size']} "
                     f"| {r['train_images']} | {r['steps_run']} "
                     f"| {', '.join(f'{k} {v}' for k, v in r['ms_per_step'].items())} | {r['ms_first_step']} "
                     f"| {r['infer_ms_per_image']} | {r['peak_gpu_mib']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", help="MVTec-layout folder (default: magnetic_tile if present, else the demo)")
    parser.add_argument("--max-steps", type=int, default=40, help="training steps per method at most")
    parser.add_argument("--methods", default="", help="comma-separated (default: every registered method)")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only to try the script itself")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    data = pick_dataset(args.data, args.out / "demo")
    index = index_dataset(data, verify=False)
    train_records = normal_training_records(index)
    test_records = index.test_records() or train_records
    names = [m for m in args.methods.split(",") if m] or [spec.name for spec in list_methods()]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report: dict[str, Any] = {"device": device_name, "torch": torch.__version__,
                              "python": platform.python_version(), "data": str(data),
                              "max_steps": args.max_steps, "methods": []}
    for name in names:
        print(f"{name} ...", flush=True)
        try:
            result = check_method(name, train_records, test_records, args.max_steps, device)
        except Exception as exc:  # noqa: BLE001 - record it and check the next method
            traceback.print_exc()
            result = {"method": name, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
        print(json.dumps(result), flush=True)
        report["methods"].append(result)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(r["status"] == "ok" for r in report["methods"]) else 1


if __name__ == "__main__":
    sys.exit(main())
