"""One benchmark run: train one method on one training set, calibrate its label-free thresholds on held-out
normals and a synthetic-defect split (the code of `defectlab train`), score the test images through
`defectlab evaluate`'s code path at its metric resolution, and record metrics, speed (PyTorch, and the
exported ONNX graph through ONNX Runtime) and memory. A run's test variants (MethodRun.test_variants) then
score the same trained weights under test-time settings, without training again."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from core.bench.floors import BLUR, method_spec
from core.bench.profiles import BenchProfile, MethodRun
from core.bench.scorers import bench_scorers, time_scorers, time_steps, with_scorers
from core.bench.system import peak_rss_mb, reset_peak_rss
from core.data.index import ImageRecord
from core.data.preprocess import working_image
from core.device import pick_device
from core.export.speed import export_and_time
from core.inference import match_channels
from core.metrics.operating_point import image_flag_everything_f1, pixel_flag_everything_f1
from core.metrics.thresholds import false_reject_rate
from core.modelfile import ModelMeta
from core.models.base import AnomalyModel
from core.progress import CancelToken, Progress
from core.training.batches import TrainingImages
from core.training.observability import TrainingSummary
from core.training.engine import TrainOptions, calibrate_perceptual, fit
from core.workflow.audit import audit_recall, score_training_images
from core.workflow.common import read_batches
from core.workflow.evaluate import METRIC_MAX_SIDE, THRESHOLD_KINDS, TestScores, map_metrics, score_test_set
from core.workflow.calibrate import CalibrationSettings, calibrate

SWEEP_SCORERS = ("l2",)  # scored beside the default map in contaminated runs (TrustMAE w/o PD = its l2 map)


@dataclasses.dataclass(frozen=True)
class JobData:
    """What one run trains and is tested on."""

    root: Path  # the dataset folder (for calibration's request)
    train: list[ImageRecord]  # normal (+ moved defective) training images
    val: list[ImageRecord]  # held-out normals for calibration
    test: list[ImageRecord]  # labelled test images
    common: set[Path] | None = None  # the sweep's common test images (metrics on them go to "common")
    injected: set[Path] = dataclasses.field(default_factory=set)  # defective images among `train`


def _drain(gen: Iterator[Progress], label: str) -> Iterator[Progress]:
    """Forward a sub-generator's progress (tagged) and return its return value."""
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            return stop.value
        yield dataclasses.replace(progress, message=f"{label}: {progress.message}" if progress.message else "")


def _load_training_images(records: list[ImageRecord], policy: Any, cancel: CancelToken
                          ) -> tuple[list[np.ndarray], int]:
    images = []
    for _, batch, _ in read_batches(records, cancel):
        images += [working_image(im, policy) for im in batch]
    channels = 3 if any(im.shape[0] == 3 for im in images) else 1
    return [np.round(match_channels(im, channels) * 255).astype(np.uint8) for im in images], channels


def _first_test_image(records: list[ImageRecord], config: Any, channels: int, cancel: CancelToken
                      ) -> torch.Tensor:
    """The first labelled test image as the model sees it, (1,C,S,S) in [0,1] (times iterative inference on
    real content, where an early stop depends on the image)."""
    for _, batch, _ in read_batches(records[:1], cancel):
        size = config.input_size  # in tile mode: the first tile
        image = match_channels(working_image(batch[0], config.policy), channels)[:, :size, :size]
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    raise ValueError("no readable test image to time the inference on")


def false_reject_rates(test: TestScores, name: str, thresholds: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Share of good test parts each label-free threshold rejects: image thresholds on the pooled image
    score, pixel thresholds on the map's maximum (a part is rejected when any pixel is flagged)."""
    good = [i for i, label in enumerate(test.labels) if label == "good"]
    label_of = dict(zip(test.paths, test.labels))
    good_maps = [m for m, path in zip(test.maps.get(name, []), test.map_paths) if label_of[path] == "good"]
    image_scores = np.asarray([test.scores[name][i] for i in good])
    map_max = np.asarray([float(m.max()) for m in good_maps])
    out = {}
    for kind in (k for k in THRESHOLD_KINDS if k in thresholds):
        scores = image_scores if kind.startswith("image") else map_max
        out[kind] = false_reject_rate(scores, float(thresholds[kind]["value"]))
    return out


def variant_model(method: str, model: AnomalyModel, overrides: dict[str, Any]) -> AnomalyModel:
    """The trained `model` under test-time settings: a model of its config (without the benchmark's added
    scorers) with `overrides` applied, holding the trained weights and buffers, where every tuned setting
    (`tuned_buffers`) that `overrides` names takes the override instead of the tuned value. Overrides that
    change the network (so the weights do not load) are an error."""
    config = dataclasses.replace(model.config, scorers=())
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(config)})
    if unknown:
        raise ValueError(f"{method} has no setting {', '.join(unknown)} for a test variant")
    variant = method_spec(method).model_cls(dataclasses.replace(config, **overrides))
    state = model.state_dict()
    variant.prepare_for_state(state)
    try:
        variant.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"test variant {overrides} of {method} changes the network, so the trained weights do "
                         f"not load; a test variant may only change test-time settings ({exc})") from exc
    variant.use_config_settings(overrides)
    return variant.eval()


def _changes_nothing(model: AnomalyModel, overrides: dict[str, Any]) -> bool:
    """Whether `overrides` leave the trained model as it is (same config, no tuned setting named)."""
    config = dataclasses.replace(model.config, scorers=())
    return dataclasses.replace(config, **overrides) == config and not set(overrides) & set(model.tuned_buffers)


def _score_test_variants(profile: BenchProfile, run: MethodRun, model: AnomalyModel, data: JobData, label: str,
                         main: dict[str, Any], device: Any, cancel: CancelToken) -> Iterator[Progress]:
    """Each test variant of `run` calibrated on the held-out normals and scored on the test set like the main
    run, with its default map only (generator of Progress); returns {name: entry}. A variant whose settings
    are the trained ones repeats the main run's numbers (`same_as_trained`) instead of scoring again."""
    default = model.default_map
    out: dict[str, Any] = {}
    for name, overrides in run.test_variants:
        cancel.raise_if_cancelled()
        tag = f"{label}, test variant {name}"
        if _changes_nothing(model, overrides) and default in main["scorers"]:
            out[name] = {"overrides": overrides, "same_as_trained": True, "tuned": model.tuned_settings(),
                         "scorers": {default: main["scorers"][default]},
                         "thresholds": {default: main["thresholds"].get(default, {})}}
            continue
        variant = variant_model(run.method, model, overrides)
        settings = CalibrationSettings(seed=profile.seed)
        thresholds, _ = yield from _drain(calibrate(variant, data.val, True, settings, device, cancel), tag)
        started = time.perf_counter()
        yield Progress("evaluate", 0, len(data.test), message=f"{tag}: scoring {len(data.test)} test images")
        test = yield from _drain(score_test_set(variant, data.test, device, METRIC_MAX_SIDE, cancel), tag)
        cancel.raise_if_cancelled()  # a cancel during the last batch is honoured too
        seconds = time.perf_counter() - started
        yield Progress("metrics", 0, 1, message=f"{tag}: metrics for {default}")
        metrics = map_metrics(test, default, thresholds.get(default, {}))
        metrics["false_reject_rate"] = false_reject_rates(test, default, thresholds.get(default, {}))
        out[name] = {"overrides": overrides, "same_as_trained": False, "tuned": variant.tuned_settings(),
                     "scorers": {default: metrics}, "thresholds": {default: thresholds.get(default, {})},
                     "eval_seconds": seconds,
                     "ms_per_image_b1": time_scorers(variant, [default], 1, profile.timing_repeats)[default]}
    return out


def run_job(profile: BenchProfile, run: MethodRun, data: JobData, label: str, cancel: CancelToken
            ) -> Iterator[Progress]:
    """Train, calibrate and evaluate one method, then its test variants (generator of Progress); returns a
    JSON-friendly dict.

    A run with injected images scores only the default and sweep maps and audits its training set."""
    reset_peak_rss()
    device = pick_device(profile.device)
    spec = method_spec(run.method)
    config = spec.config(run.preset, **run.overrides)
    images, channels = _load_training_images(data.train, config.policy, cancel)
    config = dataclasses.replace(config, in_channels=channels)
    if profile.epochs is not None and "epochs" not in run.overrides:
        config = dataclasses.replace(config, epochs=profile.epochs)
    training = TrainingImages(images, config.policy, config.augment, config.rotate90)
    torch.manual_seed(profile.seed)
    model = spec.model_cls(config)
    options = TrainOptions(seed=profile.seed, device=profile.device)
    planned = sum(p.epochs for p in model.phases())  # a memory-bank phase is one pass whatever config.epochs says
    yield Progress("train", 0, 1, message=f"{label}: training {planned} epoch(s) on {len(images)} images")
    started = time.perf_counter()
    summary = TrainingSummary(training.steps_per_epoch(config.batch_size))  # the last epoch of each phase
    for progress in fit(model, training, options, cancel):
        summary.add(progress)
        if progress.phase != "cancelled":
            yield progress
    cancel.raise_if_cancelled()
    model.eval()
    train_seconds = time.perf_counter() - started

    scorers = bench_scorers(model, run.scorers)
    if data.injected:
        scorers = [n for n in scorers if n == model.default_map or n in SWEEP_SCORERS] or scorers[:1]
    scored = with_scorers(model, scorers)
    if scored.calibrates_perceptual and scored.perceptual_stats.numel() == 0:
        # Post-hoc perceptual scorers (and the blur floor's) get the statistics training gives its own.
        for progress in calibrate_perceptual(scored, training, options, device, cancel):
            if progress.phase != "cancelled":
                yield progress
        cancel.raise_if_cancelled()
    settings = CalibrationSettings(seed=profile.seed)
    thresholds, _ = yield from _drain(calibrate(scored, data.val, True, settings, device, cancel), label)

    eval_started = time.perf_counter()
    yield Progress("evaluate", 0, len(data.test), message=f"{label}: scoring {len(data.test)} test images")
    test = yield from score_test_set(scored, data.test, device, METRIC_MAX_SIDE, cancel)
    eval_seconds = time.perf_counter() - eval_started
    per_scorer: dict[str, Any] = {}
    common: dict[str, Any] = {}
    for name in scorers:
        yield Progress("metrics", 0, 1, message=f"{label}: metrics for {name}")
        per_scorer[name] = map_metrics(test, name, thresholds.get(name, {}))
        per_scorer[name]["false_reject_rate"] = false_reject_rates(test, name, thresholds.get(name, {}))
        if data.common is not None and (name == scored.default_map or name in SWEEP_SCORERS):
            common[name] = map_metrics(test.subset(data.common), name, {})
    speed1 = time_scorers(model, scorers, 1, profile.timing_repeats)
    speed8 = time_scorers(model, scorers, 8, profile.timing_repeats)
    for name in scorers:
        per_scorer[name]["ms_per_image_b1"] = speed1[name]
        per_scorer[name]["ms_per_image_b8"] = speed8[name]
    steps = time_steps(model, _first_test_image(data.test, config, channels, cancel))
    main = {"scorers": per_scorer, "thresholds": thresholds}
    variants = yield from _score_test_variants(profile, run, model, data, label, main, device, cancel)
    onnx = None
    if run.method != BLUR and not run.variant and not data.injected:  # each method's own clean run
        yield Progress("export", 0, 1, message=f"{label}: exporting to ONNX and timing it")
        meta = ModelMeta(method=run.method, preset=run.preset, config=model.config.to_dict(), in_channels=channels,
                         input_size=config.input_size, default_map=model.default_map,
                         map_names=list(model.all_map_names), thresholds=thresholds)
        onnx = export_and_time(model, meta, (1, 8), profile.timing_repeats)
    audit = None
    if data.injected:
        yield Progress("audit", 0, 1, message=f"{label}: auditing {len(data.train)} training images")
        image_threshold = thresholds.get(model.default_map, {}).get("image", {}).get("value")
        scores = yield from score_training_images(model, data.train, model.default_map, device, cancel)
        audit = audit_recall([record.path in data.injected for record, _ in scores], [s for _, s in scores],
                             float("inf") if image_threshold is None else image_threshold)
    return {"method": run.method, "label": run.label, "variant": run.variant, "preset": run.preset,
            "config": config.to_dict(), "epochs": planned, "gradient": any(p.is_gradient_phase for p in
                                                                            model.phases()),
            "default_map": scored.default_map, "scorers": per_scorer, "thresholds": thresholds,
            "tuned": model.tuned_settings(), "test_variants": variants,
            "common": common, "audit": audit, "onnx": onnx, "steps": steps, "observability": summary.summary(),
            "flag_everything": {"image_f1": image_flag_everything_f1(test.labels),
                                "pixel_f1": pixel_flag_everything_f1(test.masks) if test.has_pixels else None},
            "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "eval_ms_per_image_incl_io": 1000 * eval_seconds / max(len(test.labels), 1),
            "peak_rss_mb": peak_rss_mb(), "n_train": len(data.train), "n_val": len(data.val),
            "n_test": len(test.labels), "device": str(device)}
