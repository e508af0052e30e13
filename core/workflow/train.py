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
from core.data.preprocess import working_image
from core.device import describe_device, pick_device
from core.inference import image_scores, infer_images, match_channels
from core.metrics.thresholds import Threshold, label_free_threshold
from core.modelfile import ModelMeta, save_model
from core.models.base import AnomalyModel
from core.models.registry import get_method
from core.paths import models_dir, remember_last_model
from core.progress import CancelToken, Cancelled, Progress
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit
from core.workflow.common import final, read_batches, skipped_message


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
    fresh: bool = False  # ignore an existing checkpoint instead of resuming it
    options: TrainOptions = TrainOptions()


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


def train_model(request: TrainRequest, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Index, load, fit, calibrate, save. The last Progress (phase "done") has the model path as result;
    a cancelled training ends with phase "cancelled" and keeps its checkpoint for a later resume."""
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    index = None
    for progress in iter_index_dataset(request.data, cancel=cancel):
        index = progress.result
        yield progress
    assert index is not None
    if index.skipped:
        yield Progress("index", 1, 1, message=f"{len(index.skipped)} files skipped: " + "; ".join(
            f"{s.path.name}: {s.reason}" for s in index.skipped[:5]), extra={"skipped": index.skipped})
    normals = normal_training_records(index)
    train_records, val_records = split_normals(normals, request.val_fraction, request.options.seed)
    if not train_records:
        raise ValueError(f"no training images in {request.data}")

    spec = get_method(request.method)
    config = spec.config(request.preset, **request.overrides)
    images: list[np.ndarray] = []
    for step, (_, batch, failed) in enumerate(read_batches(train_records, cancel, "load"), start=1):
        images += [working_image(im, config.policy) for im in batch]
        yield Progress("load", min(step * 8, len(train_records)), len(train_records),
                       message=skipped_message(failed))
    channels = 3 if any(im.shape[0] == 3 for im in images) else 1
    uint8_images = [np.round(match_channels(im, channels) * 255).astype(np.uint8) for im in images]
    config = replace(config, in_channels=channels)
    torch.manual_seed(request.options.seed)  # weight initialisation is part of a seeded run
    model = spec.model_cls(config)

    out = Path(request.out) if request.out else default_model_path(request.data, request.method, request.preset)
    ckpt = checkpoint_path_for(out)
    if request.fresh:
        ckpt.unlink(missing_ok=True)
    options = replace(request.options, checkpoint_path=ckpt)
    fit_started = time.perf_counter()
    for progress in fit(model, TrainingImages(uint8_images, config.policy, config.augment), options, cancel):
        yield progress
        if progress.phase == "cancelled":
            return
    fit_seconds = time.perf_counter() - fit_started

    device = pick_device(options.device)
    thresholds, stats = yield from _calibrate(model, val_records or train_records, bool(val_records), request,
                                              device, cancel)
    meta = ModelMeta(
        method=request.method, preset=request.preset, config=config.to_dict(), in_channels=channels,
        input_size=config.input_size, default_map=model.default_map, map_names=list(model.map_names),
        thresholds=thresholds, score_stats=stats,
        training={"data": str(Path(request.data).resolve()), "layout": index.layout,
                  "n_train": len(train_records), "n_validation": len(val_records), "seed": options.seed,
                  "fit_seconds": round(fit_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
                  "device": describe_device(device),
                  "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
    )
    save_model(out, model.cpu(), meta)
    ckpt.unlink(missing_ok=True)  # the model file supersedes the checkpoint
    remember_last_model(out)
    yield final("done", 1, f"model written to {out}", out)


def _calibrate(model: AnomalyModel, records: list[ImageRecord], held_out: bool, request: TrainRequest,
               device: Any, cancel: CancelToken) -> Iterator[Progress]:
    """Label-free thresholds and score statistics from held-out normal images (generator; returns a pair)."""
    model.to(device).eval()
    policy = model.config.policy
    scores: dict[str, list[float]] = {}
    pixels: dict[str, list[np.ndarray]] = {}
    rng = np.random.default_rng(request.options.seed)
    done = 0
    for batch_records, batch, _ in read_batches(records, cancel, "calibrate"):
        for maps, _ in infer_images(model, batch, policy, device):
            for name, value in image_scores(maps, model.config.pooling).items():
                scores.setdefault(name, []).append(value)
            for name, value in maps.items():
                flat = value.ravel()
                # A fixed-size sample per image keeps memory flat for large images.
                pixels.setdefault(name, []).append(rng.choice(flat, size=min(flat.size, 20000), replace=False))
        done += len(batch_records)
        yield Progress("calibrate", done, len(records))
    if not scores:
        raise Cancelled() if cancel.cancelled else ValueError("no readable validation image to calibrate on")
    source = "held-out normal" if held_out else "training (no held-out images)"
    thresholds: dict[str, dict[str, dict[str, Any]]] = {}
    stats: dict[str, dict[str, float]] = {}
    for name, values in scores.items():
        image_scores_arr = np.asarray(values, dtype=np.float64)
        all_pixels = np.concatenate(pixels[name])
        image_t = label_free_threshold(image_scores_arr, request.target_false_reject_rate)
        if not held_out:
            image_t = Threshold(image_t.value, image_t.how.replace("held-out normal", source))
        pixel_value = float(np.quantile(all_pixels, 1.0 - request.pixel_false_positive_rate))
        pixel_t = Threshold(pixel_value, f"label-free: {100 * (1 - request.pixel_false_positive_rate):.6g}th "
                                         f"percentile of pixel scores on {len(values)} {source} images")
        thresholds[name] = {"image": image_t.to_dict(), "pixel": pixel_t.to_dict()}
        stats[name] = {"image_mean": float(image_scores_arr.mean()), "image_std": float(image_scores_arr.std()),
                       "image_max": float(image_scores_arr.max()), "pixel_p50": float(np.quantile(all_pixels, 0.5)),
                       "pixel_p99": float(np.quantile(all_pixels, 0.99)), "n_images": len(values)}
    return thresholds, stats
