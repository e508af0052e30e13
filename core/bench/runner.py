"""The benchmark: methods x datasets x scorers under a fixed budget, as a generator of Progress.

Per (dataset, contamination level, method) it trains on the normal training images (plus, for the
contamination protocol of TrustMAE Sec. 3.2, a share of the defective test images), calibrates the
label-free thresholds on held-out normals and a synthetic-defect split (the same code as `defectlab train`),
then scores the remaining test images with every scorer and records metrics, speed and memory.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from core.bench.profiles import BenchProfile, DatasetRun, MethodRun
from core.bench.scorers import ScoredModel, applicable_scorers, time_scorers
from core.bench.system import peak_rss_mb, reset_peak_rss
from core.data.index import ImageRecord, index_dataset, resolve_data_root, split_normals
from core.data.preprocess import working_image
from core.device import pick_device
from core.inference import match_channels
from core.metrics.curves import auroc
from core.metrics.summary import image_metrics
from core.models.registry import get_method
from core.progress import CancelToken, Progress
from core.scoring.perceptual import available_backbone
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit, seconds_per_step
from core.workflow.common import read_batches
from core.workflow.evaluate import map_metrics, score_test_set
from core.workflow.audit import audit_recall, score_training_images
from core.workflow.train import TrainRequest, _calibrate, normal_training_records



def resolve_dataset(run: DatasetRun, work_dir: Path) -> Path:
    if run.name.startswith("demo:"):
        from core.data.demo import make_demo_dataset  # noqa: PLC0415 - only when a demo is benchmarked

        return make_demo_dataset(work_dir / "data", run.name[5:], **run.demo_size)
    return resolve_data_root(run.name)


def contaminate(index_train: list[ImageRecord], test: list[ImageRecord], fraction: float, seed: int
                ) -> tuple[list[ImageRecord], list[ImageRecord], list[ImageRecord]]:
    """Move round(fraction x defective test images) into training. Returns (train normals + moved,
    remaining test, moved). The choice is seeded and the same for every method."""
    defective = [r for r in test if r.label not in ("good", "unknown")]
    count = int(round(fraction * len(defective)))
    order = np.random.default_rng([seed, 31337]).permutation(len(defective))
    moved = [defective[i] for i in sorted(order[:count])]
    moved_paths = {r.path for r in moved}
    return index_train + moved, [r for r in test if r.path not in moved_paths], moved


def trivial_scores(records: list[ImageRecord]) -> dict[str, dict[str, Any]]:
    """Scores that know nothing about defects: file bytes per pixel and mean intensity. If they separate
    good from defective images, image-level metrics on that dataset are confounded."""
    import cv2  # noqa: PLC0415

    labels, size_score, mean_score = [], [], []
    for record in records:
        image = cv2.imread(str(record.path), cv2.IMREAD_UNCHANGED)
        if image is None:
            continue
        labels.append(record.label)
        size_score.append(record.path.stat().st_size / (image.shape[0] * image.shape[1]))
        mean_score.append(float(image.mean()) / (65535.0 if image.dtype == np.uint16 else 255.0))
    out = {}
    for name, values in (("bytes_per_pixel", size_score), ("mean_intensity", mean_score)):
        metrics = image_metrics(labels, np.asarray(values))
        flags = np.asarray([label != "good" for label in labels])
        value = auroc(flags, np.asarray(values))
        # Either direction reveals a confound: report the better one and say which it was.
        metrics["image_auroc_best_sign"] = max(value, 1 - value)
        metrics["sign"] = "+" if value >= 0.5 else "-"
        out[name] = metrics
    return out


def _load_training_images(records: list[ImageRecord], policy: Any, cancel: CancelToken
                          ) -> tuple[list[np.ndarray], int]:
    images = []
    for _, batch, _ in read_batches(records, cancel):
        images += [working_image(im, policy) for im in batch]
    channels = 3 if any(im.shape[0] == 3 for im in images) else 1
    return [np.round(match_channels(im, channels) * 255).astype(np.uint8) for im in images], channels


class _Deadline(CancelToken):
    """Stops training when the wall-clock budget is spent (or when the outer token is cancelled). The engine
    checks it between steps, so the model keeps what it learnt so far."""

    def __init__(self, outer: CancelToken, seconds: float | None) -> None:
        super().__init__()
        self.outer = outer
        self.end = None if seconds is None else time.perf_counter() + seconds

    @property
    def cancelled(self) -> bool:
        return self.outer.cancelled or (self.end is not None and time.perf_counter() >= self.end)


def _drain(gen: Iterator[Progress], label: str) -> Iterator[Progress]:
    """Forward a sub-generator's progress (tagged) and return its return value."""
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            return stop.value
        yield dataclasses.replace(progress, message=f"{label}: {progress.message}" if progress.message else "")


SWEEP_SCORERS = ("l2",)  # scored beside the default map in contaminated runs (TrustMAE w/o PD = its l2 map)


def _epochs_within(model: Any, training: TrainingImages, budget: float, device: str) -> int:
    """Whole epochs of a multi-phase method that fit `budget` seconds (at most its preset's), from timing a
    few steps of each gradient phase. Each phase keeps its share of the epochs, so a budget never ends the
    training inside stage 1 the way a deadline would."""
    phases = [p for p in model.phases() if p.is_gradient_phase]
    planned = sum(p.epochs for p in phases)
    per_epoch = training.steps_per_epoch(model.config.batch_size)
    seconds = sum(p.epochs / planned * per_epoch * seconds_per_step(model, training, p, device=device)
                  for p in phases)
    return max(len(phases), min(model.config.epochs, int(budget / seconds)))


def _audit(model: Any, train_records: list[ImageRecord], injected: set[Path], threshold: float | None,
           device: Any, cancel: CancelToken) -> Iterator[Progress]:
    """Rank the (contaminated) training images by the default map's score, as `defectlab audit` does;
    returns audit_recall's dict."""
    scored = yield from score_training_images(model, train_records, model.default_map, device, cancel)
    return audit_recall([record.path in injected for record, _ in scored], [score for _, score in scored],
                        float("inf") if threshold is None else threshold)


def run_job(profile: BenchProfile, data: Path, run: MethodRun, train_records: list[ImageRecord],
            val_records: list[ImageRecord], test_records: list[ImageRecord], label: str,
            cancel: CancelToken, common_test: set[Path] | None = None, injected: set[Path] | None = None
            ) -> Iterator[Progress]:
    """Train, calibrate and evaluate one method; returns a JSON-friendly result dict.

    `common_test`: the test images every contamination level keeps; metrics on them go to "common" so the
    levels compare on the same images. `injected`: the defective images among the training images; a run
    with some scores only the default and sweep maps and audits its training set.
    """
    reset_peak_rss()
    device = pick_device(profile.device)
    spec = get_method(run.method)
    config = spec.config(run.preset, **run.overrides)
    images, channels = _load_training_images(train_records, config.policy, cancel)
    config = dataclasses.replace(config, in_channels=channels)
    if profile.epochs is not None:
        config = dataclasses.replace(config, epochs=profile.epochs)
    training = TrainingImages(images, config.policy, config.augment)
    started = time.perf_counter()
    # Wall-clock budget: train up to the preset's epochs, but stop when the time is spent. Non-gradient
    # methods (a memory bank) must see every image, and a run with its own epochs keeps them: neither gets a
    # deadline. Multi-phase methods get the whole epochs that fit the budget instead (see _epochs_within).
    torch.manual_seed(profile.seed)
    model = spec.model_cls(config)
    gradient = [p for p in model.phases() if p.is_gradient_phase]
    fixed = profile.epochs is not None or "epochs" in run.overrides
    budget = profile.budget_seconds if gradient and not fixed else None
    if budget and len(gradient) > 1:
        config = dataclasses.replace(config, epochs=_epochs_within(model, training, budget, profile.device))
        budget = None
        torch.manual_seed(profile.seed)
        model = spec.model_cls(config)
    options = TrainOptions(seed=profile.seed, device=profile.device)
    what = f"up to {config.epochs} epoch(s)" + (f" or {budget:.0f} s" if budget else "")
    yield Progress("train", 0, 1, message=f"{label}: training {what} on {len(images)} images")
    steps = total = 0
    for progress in fit(model, training, options, _Deadline(cancel, budget)):
        steps, total = progress.step, progress.total
        if progress.phase != "cancelled":
            yield progress
    cancel.raise_if_cancelled()  # cancelled by the user (not the budget): stop the benchmark
    model.eval()
    train_seconds = time.perf_counter() - started
    planned = sum(p.epochs for p in model.phases())  # a memory-bank phase is one pass whatever config.epochs says
    epochs_done = planned * steps / max(total, 1)

    scorers = applicable_scorers(model, run.scorers)
    if injected:
        scorers = [n for n in scorers if n == model.default_map or n in SWEEP_SCORERS] or scorers[:1]
    scored = ScoredModel(model, scorers)
    request = TrainRequest(data=data, method=run.method, options=options)
    thresholds, _ = yield from _drain(_calibrate(scored, val_records, True, request, device, cancel), label)

    eval_started = time.perf_counter()
    yield Progress("evaluate", 0, len(test_records), message=f"{label}: scoring {len(test_records)} test images")
    test = yield from score_test_set(scored, test_records, device, profile.metric_max_side, cancel)
    eval_seconds = time.perf_counter() - eval_started
    per_scorer: dict[str, Any] = {}
    common: dict[str, Any] = {}
    for name in scorers:
        yield Progress("metrics", 0, 1, message=f"{label}: metrics for {name}")
        per_scorer[name] = map_metrics(test, name, thresholds.get(name, {}))
        if common_test is not None and (name == scored.default_map or name in SWEEP_SCORERS):
            common[name] = map_metrics(test.subset(common_test), name, {})
    speed1 = time_scorers(model, scorers, 1, profile.timing_repeats)
    speed8 = time_scorers(model, scorers, 8, profile.timing_repeats)
    for name in scorers:
        per_scorer[name]["ms_per_image_b1"] = speed1[name]
        per_scorer[name]["ms_per_image_b8"] = speed8[name]
    audit = None
    if injected:
        yield Progress("audit", 0, 1, message=f"{label}: auditing {len(train_records)} training images")
        image_threshold = thresholds.get(model.default_map, {}).get("image", {}).get("value")
        audit = yield from _audit(model, train_records, injected, image_threshold, device, cancel)
    return {"method": run.method, "label": run.label, "variant": run.variant, "preset": run.preset,
            "config": config.to_dict(), "epochs": epochs_done, "epochs_planned": planned,
            "default_map": scored.default_map, "scorers": per_scorer, "thresholds": thresholds,
            "common": common, "audit": audit,
            "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "eval_ms_per_image_incl_io": 1000 * eval_seconds / max(len(test.labels), 1),
            "peak_rss_mb": peak_rss_mb(), "n_train": len(train_records), "n_val": len(val_records),
            "n_test": len(test.labels), "device": str(device)}


def run_bench(profile: BenchProfile, work_dir: Path, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Run the whole profile; the last Progress (phase "done") carries the results dict."""
    cancel = cancel or CancelToken()
    work_dir = Path(work_dir)
    started = time.perf_counter()
    results: dict[str, Any] = {"profile": dataclasses.asdict(profile), "datasets": [],
                               "perceptual_backbone": available_backbone()}
    for ds in profile.datasets:
        yield Progress("data", 0, 1, message=f"indexing {ds.name}")
        root = resolve_dataset(ds, work_dir)
        index = index_dataset(root)
        normals = normal_training_records(index)
        test = [r for r in index.test_records() if r.label != "unknown"]
        levels = profile.contamination if ds.sweep else (0.0,)
        train_normals, val = split_normals(normals, profile.val_fraction, profile.seed)
        # The moved images are nested (one seeded order), so the highest level's remaining test images are
        # in every level's test set: the sweep compares levels on them.
        common = {r.path for r in contaminate(train_normals, test, max(levels), profile.seed)[1]}
        entry: dict[str, Any] = {"name": ds.name, "root": str(root), "note": ds.note,
                                 "counts": {"train": len(normals), "test_good": sum(r.label == "good" for r in test),
                                            "test_defective": sum(r.label != "good" for r in test),
                                            "common_test": len(common)},
                                 "trivial": trivial_scores(test), "runs": []}
        for fraction in levels:
            train, remaining, moved = contaminate(train_normals, test, fraction, profile.seed)
            for run in profile.methods:
                if fraction > 0 and not run.sweep:
                    continue
                label = f"{ds.name} {run.label} {int(round(100 * fraction))}%"
                sweep = len(levels) > 1 and run.sweep
                job = yield from run_job(profile, root, run, train, val, remaining, label, cancel,
                                         common if sweep else None, {r.path for r in moved})
                job.update({"contamination": fraction, "n_moved_defective": len(moved)})
                entry["runs"].append(job)
        results["datasets"].append(entry)
    results["total_seconds"] = time.perf_counter() - started
    yield Progress("done", 1, 1, message="benchmark finished", result=results)
