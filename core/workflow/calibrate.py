"""Label-free calibration of a trained model: thresholds from normal images and from a synthetic-defect
split, each stored with what it costs on good parts. Used by training, the workbench and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import cv2
import numpy as np

from core.data.index import ImageRecord
from core.inference import image_scores, infer_images
from core.metrics.curves import f1_max
from core.metrics.thresholds import Threshold, degenerate_reason, false_reject_rate, label_free_threshold
from core.models.base import AnomalyModel
from core.progress import CancelToken, Cancelled, Progress
from core.synth.anomalies import TextureBank, make_anomaly
from core.workflow.common import read_batches


@dataclass(frozen=True)
class CalibrationSettings:
    target_false_reject_rate: float = 0.01  # image threshold: share of good parts flagged
    pixel_false_positive_rate: float = 0.001  # pixel threshold: share of good pixels flagged
    synthetic_validation: bool = True  # also F1-max thresholds on the normals + synthetic defects
    seed: int = 0


def calibrate(model: AnomalyModel, records: list[ImageRecord], held_out: bool, settings: CalibrationSettings,
              device: Any, cancel: CancelToken) -> Iterator[Progress]:
    """Label-free thresholds and score statistics of every map of a trained model, from normal images
    (`held_out`: images training did not see). Generator of Progress; returns (thresholds, stats), the
    model file's `thresholds` and `score_stats`."""
    model.to(device).eval()
    policy = model.config.policy
    scores: dict[str, list[float]] = {}
    pixels: dict[str, list[np.ndarray]] = {}
    maxima: dict[str, list[float]] = {}  # per map: each image's largest pixel score
    rng = np.random.default_rng(settings.seed)
    synthetic = SyntheticSplit(settings.seed) if settings.synthetic_validation else None
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
    cancel.raise_if_cancelled()  # a cancel during the last batch is honoured too
    if not scores:
        raise Cancelled() if cancel.cancelled else ValueError("no readable validation image to calibrate on")
    source = "held-out normal" if held_out else "training (no held-out images)"
    thresholds: dict[str, dict[str, dict[str, Any]]] = {}
    stats: dict[str, dict[str, float]] = {}
    for name, values in scores.items():
        image_scores_arr = np.asarray(values, dtype=np.float64)
        all_pixels = np.concatenate(pixels[name])
        image_t = label_free_threshold(image_scores_arr, settings.target_false_reject_rate)
        if not held_out:
            image_t = Threshold(image_t.value, image_t.how.replace("held-out normal", source))
        pixel_value = float(np.quantile(all_pixels, 1.0 - settings.pixel_false_positive_rate))
        pixel_t = Threshold(pixel_value, f"label-free: {100 * (1 - settings.pixel_false_positive_rate):.6g}th "
                                         f"percentile of pixel scores on {len(values)} {source} images")
        thresholds[name] = {"image": threshold_entry(image_t, image_scores_arr),
                            "pixel": threshold_entry(pixel_t, np.asarray(maxima[name]), all_pixels)}
        if synthetic is not None:
            thresholds[name].update(synthetic.thresholds(name, source))
        stats[name] = {"image_mean": float(image_scores_arr.mean()), "image_std": float(image_scores_arr.std()),
                       "image_max": float(image_scores_arr.max()), "pixel_p50": float(np.quantile(all_pixels, 0.5)),
                       "pixel_p99": float(np.quantile(all_pixels, 0.99)), "n_images": len(values)}
    return thresholds, stats


SYNTH_MAX_SIDE = 256  # synthetic-split maps and masks are compared at most at this size (pixel F1-max)


class SyntheticSplit:
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
