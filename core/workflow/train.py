"""Train a method on a folder of images, calibrate label-free thresholds on held-out normals, save the model.

Used by `defectlab train` and the GUI's training panel alike.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from core.data.index import DatasetIndex, ImageRecord, iter_index_dataset, split_normals
from core.config_checks import check_config, check_fraction
from core.data.preprocess import working_image
from core.device import describe_device, pick_device
from core.errors import UserError
from core.fileio import check_output_file
from core.inference import match_channels
from core.modelfile import ModelMeta, save_model
from core.models.base import AnomalyModel
from core.models.registry import get_method
from core.paths import models_dir, remember_last_model
from core.progress import CancelToken, Cancelled, Progress
from core.scoring.scorers import check_scorers
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit
from core.training.observability import TrainingSummary
from core.workflow.calibrate import CalibrationSettings, calibrate
from core.workflow.common import final, read_batches, skipped_message
from core.workflow.heldout import held_out_list


@dataclass(frozen=True)
class TrainRequest:
    data: Path
    method: str = "ae-ssim"
    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None  # default: <models dir>/<dataset>_<method>_<preset>.safetensors
    val_fraction: float = 0.1
    target_false_reject_rate: float = 0.01  # image threshold: share of good parts flagged
    pixel_false_positive_rate: float = 0.001  # pixel threshold: share of good pixels flagged
    synthetic_validation: bool = True  # also F1-max thresholds on held-out normals + synthetic defects
    fresh: bool = False  # ignore an existing checkpoint instead of resuming it
    exclude: tuple[Path, ...] = ()  # training images left out (e.g. an audit's suspects)
    options: TrainOptions = TrainOptions()

    @property
    def calibration(self) -> CalibrationSettings:
        return CalibrationSettings(self.target_false_reject_rate, self.pixel_false_positive_rate,
                                   self.synthetic_validation, self.options.seed)


def default_model_path(data: Path, method: str, preset: str) -> Path:
    return models_dir() / f"{Path(data).resolve().name}_{method}_{preset}.safetensors"


def checkpoint_path_for(model_path: Path) -> Path:
    return model_path.with_name(model_path.name.removesuffix(".safetensors") + ".ckpt.safetensors")


def normal_training_records(index: DatasetIndex) -> list[ImageRecord]:
    """MVTec: train/good. Plain folder: everything except images in known defect folders (labels may be
    unknown, so an unsorted folder trains as it is: the methods are meant to tolerate a few defects)."""
    if index.layout == "mvtec":
        return index.train_records()
    return [r for r in index.records if r.label in ("good", "unknown")]


def check_train_request(request: TrainRequest) -> tuple[Any, Any, Path]:
    """Options, settings and the output file, checked before any long work: (method spec, config, out).

    The output folder is created and probed, so a bad `--out` costs seconds, not a training."""
    check_fraction("--val-fraction", request.val_fraction, 0.0, 1.0)
    check_fraction("--target-frr", request.target_false_reject_rate, 0.0, 1.0, inclusive_low=False)
    check_fraction("pixel false-positive rate", request.pixel_false_positive_rate, 0.0, 1.0, inclusive_low=False)
    if request.options.checkpoint_every < 1:
        raise UserError(f"--checkpoint-every = {request.options.checkpoint_every} must be at least 1")
    if request.options.threads is not None and request.options.threads < 1:
        raise UserError(f"--threads = {request.options.threads} must be at least 1")
    spec = get_method(request.method)
    config = spec.config(request.preset, **request.overrides)
    check_config(config)
    out = Path(request.out) if request.out else default_model_path(request.data, request.method, request.preset)
    check_output_file(out, "output model file", inputs=[request.data])
    return spec, config, out


def train_model(request: TrainRequest, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Check, index, load, fit, calibrate, save. The last Progress (phase "done") has the model path as
    result; a cancelled training (at any point) ends with phase "cancelled" and keeps its checkpoint."""
    cancel = cancel or CancelToken()
    spec, config, out = check_train_request(request)
    ckpt = checkpoint_path_for(out)
    try:
        yield from _train(request, spec, config, out, ckpt, cancel)
    except Cancelled:
        kept = f"; checkpoint kept at {ckpt}, run the same command again to resume" if ckpt.exists() else ""
        yield final("cancelled", 1, f"training cancelled{kept}", None)


def _train(request: TrainRequest, spec: Any, config: Any, out: Path, ckpt: Path,
           cancel: CancelToken) -> Iterator[Progress]:
    started = time.perf_counter()
    index = None
    for progress in iter_index_dataset(request.data, cancel=cancel):
        index = progress.result
        yield progress
    assert index is not None
    if index.skipped:
        yield Progress("index", 1, 1, message=f"{len(index.skipped)} files skipped: " + "; ".join(
            f"{s.path.name}: {s.reason}" for s in index.skipped[:5]), extra={"skipped": index.skipped})
    excluded = {Path(p) for p in request.exclude}
    normals = [r for r in normal_training_records(index) if r.path not in excluded]
    train_records, val_records = split_normals(normals, request.val_fraction, request.options.seed)
    if not train_records:
        raise ValueError(f"no training images in {request.data}")

    images: list[np.ndarray] = []
    for step, (_, batch, failed) in enumerate(read_batches(train_records, cancel), start=1):
        images += [working_image(im, config.policy) for im in batch]
        yield Progress("load", min(step * 8, len(train_records)), len(train_records),
                       message=skipped_message(failed))
    if not images:
        raise UserError(f"none of the {len(train_records)} training images in {request.data} could be read")
    channels = 3 if any(im.shape[0] == 3 for im in images) else 1
    uint8_images = [np.round(match_channels(im, channels) * 255).astype(np.uint8) for im in images]
    config = replace(config, in_channels=channels)
    torch.manual_seed(request.options.seed)  # weight initialisation is part of a seeded run
    model = spec.model_cls(config)
    try:
        check_scorers(model, config.scorers)
    except ValueError as exc:
        raise UserError(f"--scorer: {exc}") from None
    perceptual = _perceptual_backbone(model)
    if perceptual:
        yield Progress("load", len(train_records), len(train_records), message=f"perceptual distance: {perceptual}")

    if request.fresh:
        ckpt.unlink(missing_ok=True)
    options = replace(request.options, checkpoint_path=ckpt)
    fit_started = time.perf_counter()
    training_images = TrainingImages(uint8_images, config.policy, config.augment, config.rotate90)
    summary = TrainingSummary(training_images.steps_per_epoch(config.batch_size))  # the last epoch
    steps = 0
    for progress in fit(model, training_images, options, cancel):
        summary.add(progress)
        yield progress
        if progress.phase == "cancelled":
            return
        steps = progress.step
    fit_seconds = time.perf_counter() - fit_started

    device = pick_device(options.device)
    thresholds, stats = yield from calibrate(model, val_records or train_records, bool(val_records),
                                             request.calibration, device, cancel)
    meta = ModelMeta(
        method=request.method, preset=request.preset, config=config.to_dict(), in_channels=channels,
        input_size=config.input_size, default_map=model.default_map, map_names=list(model.all_map_names),
        thresholds=thresholds, score_stats=stats,
        training={"data": str(Path(request.data).resolve()), "layout": index.layout,
                  "n_train": len(train_records), "n_validation": len(val_records), "seed": options.seed,
                  "val_fraction": request.val_fraction, "held_out": held_out_list(index, val_records),
                  **({"excluded": sorted(str(p) for p in excluded)} if excluded else {}),
                  "fit_seconds": round(fit_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
                  "device": describe_device(device), **({"perceptual_backbone": perceptual} if perceptual else {}),
                  "observability": summary.summary(), "train_steps": steps,
                  **({"model_stats": stats} if (stats := model.training_stats()) else {}),
                  "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
    )
    save_model(out, model.cpu(), meta)
    ckpt.unlink(missing_ok=True)  # the model file supersedes the checkpoint
    remember_last_model(out)
    yield final("done", 1, f"model written to {out}" + degenerate_message(meta), out)


def degenerate_message(meta: ModelMeta) -> str:
    """'' or a sentence naming the synthetic-split thresholds that are no operating point."""
    bad = meta.degenerate_thresholds()
    if not bad:
        return ""
    return ("; degenerate synthetic-split calibration (no better than flagging every part), not offered as "
            "a threshold: " + ", ".join(f"{name} {kind}" for name, kind, _ in bad))


def _perceptual_backbone(model: AnomalyModel) -> str | None:
    """Which network a perceptual map of this model uses (said in the CLI and stored in the model file)."""
    if not any(name.startswith("perceptual") for name in model.all_map_names):
        return None
    from core.scoring.perceptual import available_backbone  # noqa: PLC0415

    return available_backbone(getattr(model.config, "perceptual_backbone", "auto"))
