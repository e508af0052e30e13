"""Train a method on a folder of images, calibrate label-free thresholds on held-out normals, save the model.

Used by `defectlab train` and the GUI's training panel alike.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch

from core.data.index import DatasetIndex, ImageRecord, iter_index_dataset, split_normals
from core.config_checks import check_config, check_fraction
from core.data.preprocess import working_image
from core.device import describe_device, pick_device
from core.errors import UserError
from core.fileio import check_output_file
from core.inference import image_scores, infer_images, match_channels
from core.metrics.curves import f1_max
from core.metrics.thresholds import Threshold, degenerate_reason, false_reject_rate, label_free_threshold
from core.modelfile import ModelMeta, save_model
from core.models.base import AnomalyModel
from core.models.registry import get_method
from core.paths import models_dir, remember_last_model
from core.progress import CancelToken, Cancelled, Progress
from core.synth.anomalies import TextureBank, make_anomaly
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit
from core.training.observability import TrainingSummary
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
    normals = normal_training_records(index)
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
    perceptual = _perceptual_backbone(model)
    if perceptual:
        yield Progress("load", len(train_records), len(train_records), message=f"perceptual distance: {perceptual}")

    if request.fresh:
        ckpt.unlink(missing_ok=True)
    options = replace(request.options, checkpoint_path=ckpt)
    fit_started = time.perf_counter()
    training_images = TrainingImages(uint8_images, config.policy, config.augment)
    summary = TrainingSummary(training_images.steps_per_epoch(config.batch_size))  # the last epoch
    for progress in fit(model, training_images, options, cancel):
        summary.add(progress)
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
                  "val_fraction": request.val_fraction, "held_out": held_out_list(index, val_records),
                  "fit_seconds": round(fit_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
                  "device": describe_device(device), **({"perceptual_backbone": perceptual} if perceptual else {}),
                  "observability": summary.summary(),
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


def _calibrate(model: AnomalyModel, records: list[ImageRecord], held_out: bool, request: TrainRequest,
               device: Any, cancel: CancelToken) -> Iterator[Progress]:
    """Label-free thresholds and score statistics from held-out normal images (generator; returns a pair)."""
    model.to(device).eval()
    policy = model.config.policy
    scores: dict[str, list[float]] = {}
    pixels: dict[str, list[np.ndarray]] = {}
    maxima: dict[str, list[float]] = {}  # per map: each image's largest pixel score
    rng = np.random.default_rng(request.options.seed)
    synthetic = _SyntheticSplit(request.options.seed) if request.synthetic_validation else None
    done = 0
    for batch_records, batch, _ in read_batches(records, cancel):
        for maps, _ in infer_images(model, batch, policy, device):
            for name, value in image_scores(maps, model.config.pooling).items():
                scores.setdefault(name, []).append(value)
            for name, value in maps.items():
                flat = value.ravel()
                maxima.setdefault(name, []).append(float(flat.max()))
                # A fixed-size sample per image keeps memory flat for large images.
                pixels.setdefault(name, []).append(rng.choice(flat, size=min(flat.size, 20000), replace=False))
            if synthetic is not None:
                synthetic.add_normal(maps, model.config.pooling)
        if synthetic is not None:
            synthetic.add_defective(model, batch, policy, device, model.config.pooling)
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
        thresholds[name] = {"image": threshold_entry(image_t, image_scores_arr),
                            "pixel": threshold_entry(pixel_t, np.asarray(maxima[name]), all_pixels)}
        if synthetic is not None:
            thresholds[name].update(synthetic.thresholds(name, source))
        stats[name] = {"image_mean": float(image_scores_arr.mean()), "image_std": float(image_scores_arr.std()),
                       "image_max": float(image_scores_arr.max()), "pixel_p50": float(np.quantile(all_pixels, 0.5)),
                       "pixel_p99": float(np.quantile(all_pixels, 0.99)), "n_images": len(values)}
    return thresholds, stats


def _perceptual_backbone(model: AnomalyModel) -> str | None:
    """Which network a perceptual map of this model uses (said in the CLI and stored in the model file)."""
    if not any(name.startswith("perceptual") for name in model.map_names):
        return None
    from core.scoring.perceptual import available_backbone  # noqa: PLC0415

    return available_backbone(getattr(model.config, "perceptual_backbone", "auto"))


SYNTH_MAX_SIDE = 256  # synthetic-split maps and masks are compared at most at this size (pixel F1-max)


class _SyntheticSplit:
    """Synthetic validation split: every calibration normal also yields one copy with an artificial defect
    (Perlin/texture, GAAGA or CutPaste, exact mask). F1-max on {normals, synthetic defects} gives image and
    pixel thresholds without any real defect label."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 424242])
        self.bank = TextureBank(seed=seed)
        self.maps: dict[str, list[np.ndarray]] = {}  # per map: small maps, normals and defects in order
        self.scores: dict[str, list[float]] = {}  # per map: image scores pooled at full resolution
        self.masks: list[np.ndarray] = []
        self.defective: list[bool] = []
        self.kinds: list[str] = []

    def add_normal(self, maps: dict[str, np.ndarray], pooling: str) -> None:
        self._add(maps, None, pooling)

    def add_defective(self, model: AnomalyModel, batch: list[np.ndarray], policy: Any, device: Any,
                      pooling: str) -> None:
        made = [make_anomaly(image, self.rng, "mixed", self.bank) for image in batch]
        self.kinds += [kind for _, _, kind in made]
        for (maps, _), (_, mask, _) in zip(infer_images(model, [im for im, _, _ in made], policy, device), made):
            self._add(maps, mask, pooling)

    def _add(self, maps: dict[str, np.ndarray], mask: np.ndarray | None, pooling: str) -> None:
        # Image scores at full resolution, exactly as test images are scored; pixels at reduced size.
        for name, value in image_scores(maps, pooling).items():
            self.scores.setdefault(name, []).append(value)
        hw = next(iter(maps.values())).shape
        factor = min(1.0, SYNTH_MAX_SIDE / max(hw))
        size = (max(1, round(hw[1] * factor)), max(1, round(hw[0] * factor)))
        for name, value in maps.items():
            self.maps.setdefault(name, []).append(cv2.resize(value, size, interpolation=cv2.INTER_AREA))
        small = np.zeros(size[::-1], bool) if mask is None else (
            cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5)
        self.masks.append(small)
        self.defective.append(mask is not None)

    def thresholds(self, name: str, source: str) -> dict[str, dict[str, Any]]:
        maps = self.maps[name]
        labels = np.asarray(self.defective)
        image = np.asarray(self.scores[name])
        n_def, n_good = int(labels.sum()), int((~labels).sum())
        kinds = ", ".join(f"{k} {self.kinds.count(k)}" for k in sorted(set(self.kinds)))
        split = f"{n_good} {source} images + {n_def} synthetic defects made from them ({kinds})"
        out: dict[str, dict[str, Any]] = {}
        if n_def and n_good:
            f1, value = f1_max(labels, image)
            t = Threshold(value, f"label-free synthetic validation: image F1-max ({f1:.3f}) on {split}")
            out["image_synthetic"] = threshold_entry(t, image[~labels], None, True,
                                                     degenerate_reason(f1, value, image, labels))
        pixel_labels = np.concatenate([m.ravel() for m in self.masks])
        if pixel_labels.any() and not pixel_labels.all():
            pixel_scores = np.concatenate([m.ravel() for m in maps])
            f1, value = f1_max(pixel_labels, pixel_scores)
            t = Threshold(value, f"label-free synthetic validation: pixel F1-max ({f1:.3f}) on {split}")
            good = [m for m, bad in zip(maps, labels) if not bad]
            out["pixel_synthetic"] = threshold_entry(
                t, np.asarray([float(m.max()) for m in good]), np.concatenate([m.ravel() for m in good]), True,
                degenerate_reason(f1, value, pixel_scores, pixel_labels))
        return out


def threshold_entry(threshold: Threshold, good_scores: np.ndarray, good_pixels: np.ndarray | None = None,
                    synthetic: bool = False, degenerate: str | None = None) -> dict[str, Any]:
    """A label-free threshold as stored in the model file: value and how, plus what it costs on the held-out
    good images.

    false_reject_rate: share of the good images it rejects. `good_scores` (n,) are their image scores for
    an image threshold, or the largest pixel score of each for a pixel threshold (a good part with any
    pixel at or above it shows a defect region). Pixel thresholds also store pixel_false_positive_rate,
    the share of their `good_pixels` at or above it. A synthetic-split threshold stores `degenerate` and,
    when true, the sentence why it is no operating point.
    """
    entry: dict[str, Any] = {**threshold.to_dict(),
                             "false_reject_rate": false_reject_rate(good_scores, threshold.value)}
    if good_pixels is not None:
        entry["pixel_false_positive_rate"] = false_reject_rate(good_pixels, threshold.value)
    if synthetic:
        entry["degenerate"] = degenerate is not None
    if degenerate is not None:
        entry["reason"] = f"Degenerate calibration, not usable as an operating point: {degenerate}."
    return entry
