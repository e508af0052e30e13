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
from core.data.preprocess import working_image
from core.device import describe_device, pick_device
from core.inference import image_scores, infer_images, match_channels
from core.metrics.curves import f1_max
from core.metrics.thresholds import Threshold, label_free_threshold
from core.modelfile import ModelMeta, save_model
from core.models.base import AnomalyModel
from core.models.registry import get_method
from core.paths import models_dir, remember_last_model
from core.progress import CancelToken, Cancelled, Progress
from core.synth.anomalies import TextureBank, make_anomaly
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
    synthetic_validation: bool = True  # also F1-max thresholds on held-out normals + synthetic defects
    fresh: bool = False  # ignore an existing checkpoint instead of resuming it
    exclude: tuple[Path, ...] = ()  # training images left out (e.g. an audit's suspects)
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
    excluded = {Path(p) for p in request.exclude}
    normals = [r for r in normal_training_records(index) if r.path not in excluded]
    train_records, val_records = split_normals(normals, request.val_fraction, request.options.seed)
    if not train_records:
        raise ValueError(f"no training images in {request.data}")

    spec = get_method(request.method)
    config = spec.config(request.preset, **request.overrides)
    images: list[np.ndarray] = []
    for step, (_, batch, failed) in enumerate(read_batches(train_records, cancel), start=1):
        images += [working_image(im, config.policy) for im in batch]
        yield Progress("load", min(step * 8, len(train_records)), len(train_records),
                       message=skipped_message(failed))
    channels = 3 if any(im.shape[0] == 3 for im in images) else 1
    uint8_images = [np.round(match_channels(im, channels) * 255).astype(np.uint8) for im in images]
    config = replace(config, in_channels=channels)
    torch.manual_seed(request.options.seed)  # weight initialisation is part of a seeded run
    model = spec.model_cls(config)
    perceptual = _perceptual_backbone(model)
    if perceptual:
        yield Progress("load", len(train_records), len(train_records), message=f"perceptual distance: {perceptual}")

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
                  **({"excluded": sorted(str(p) for p in excluded)} if excluded else {}),
                  "fit_seconds": round(fit_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
                  "device": describe_device(device), **({"perceptual_backbone": perceptual} if perceptual else {}),
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
    synthetic = _SyntheticSplit(request.options.seed) if request.synthetic_validation else None
    done = 0
    for batch_records, batch, _ in read_batches(records, cancel):
        for maps, _ in infer_images(model, batch, policy, device):
            for name, value in image_scores(maps, model.config.pooling).items():
                scores.setdefault(name, []).append(value)
            for name, value in maps.items():
                flat = value.ravel()
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
        thresholds[name] = {"image": image_t.to_dict(), "pixel": pixel_t.to_dict()}
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
            out["image_synthetic"] = Threshold(value, f"label-free synthetic validation: image F1-max "
                                                      f"({f1:.3f}) on {split}").to_dict()
        pixel_labels = np.concatenate([m.ravel() for m in self.masks])
        if pixel_labels.any() and not pixel_labels.all():
            f1, value = f1_max(pixel_labels, np.concatenate([m.ravel() for m in maps]))
            out["pixel_synthetic"] = Threshold(value, f"label-free synthetic validation: pixel F1-max "
                                                      f"({f1:.3f}) on {split}").to_dict()
        return out
