"""A report from images already scored (the GUI's cached results) with the thresholds in use, e.g. tuned by hand.

No model is run again: scores come from the results; each kept map (shrunk by the GUI) is scaled back to its
image's size for the regions and the overlay thumbnail. Verdicts: defective when the score of the reported map
is at or above the image threshold, as in every report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import cv2
import numpy as np

from core.result_store import load_maps
from core.results import CachedResult
from core.data.io import ImageReadError, read_image
from core.inference import ImageResult
from core.metrics.thresholds import Threshold
from core.modelfile import ModelMeta
from core.progress import CancelToken, Cancelled, Progress
from core.regions import DEFAULT_MIN_AREA
from core.report import ReportBuilder, RunInfo, write_report
from core.report.overlay import heatmap_overlay

def session_run_info(model: Path, meta: ModelMeta, input_folder: Path, map_name: str, image: float | None,
                     pixel: float | None, how: str, review: tuple[float, float] | None = None,
                     min_region_area: int = DEFAULT_MIN_AREA) -> RunInfo:
    """RunInfo naming the thresholds in use and how they were set. A value equal to the model's stored one keeps
    the model's description; others get `how`. Infinite or None values: no threshold."""
    def threshold(kind: str, value: float | None) -> Threshold | None:
        if value is None or not math.isfinite(value):
            return None
        stored = meta.threshold(map_name, kind)
        if stored is not None and math.isclose(stored.value, value, rel_tol=1e-9):
            text = stored.how  # the model's own threshold, with its story (also when only the other one moved)
        else:
            text = how.strip() or "set by hand"
        if kind == "image" and review is not None:
            low, high = sorted(review)
            text += f"; review band {low:.4g} to {high:.4g} in the workbench"
        return Threshold(value, text)

    return RunInfo(Path(model), meta.method, meta.preset, str(meta.training.get("data", "unknown")),
                   Path(input_folder), map_name, threshold("image", image), threshold("pixel", pixel),
                   min_region_area)


def full_size_map(cached: CachedResult, map_name: str, hw: tuple[int, int]) -> np.ndarray:
    """(H,W) float32: the kept map (in memory or on disk) scaled to the image's size; zeros when none was kept."""
    small = load_maps(cached).maps.get(map_name)
    if small is None:
        return np.zeros(hw, np.float32)
    return cv2.resize(small.astype(np.float32), (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def iter_session_report(folder: Path, info: RunInfo, results: Sequence[CachedResult],
                        skipped: Sequence[tuple[Path, str]] = (), cancel: CancelToken | None = None,
                        pdf: bool = True, reviews: Mapping[Path, str] | None = None) -> Iterator[Progress]:
    """Progress("report") per image; the last value (phase "done" or "cancelled") has result = ReportFiles.
    A cancelled run writes a report of the images done so far, marked partial. Unreadable images are listed
    as skipped. `reviews`: what a person said about images ("good" / "defect"), reported beside the verdicts."""
    cancel = cancel or CancelToken()
    builder = ReportBuilder(Path(folder), info)
    image_t = info.image_threshold.value if info.image_threshold is not None else math.inf
    pixel_t = info.pixel_threshold.value if info.pixel_threshold is not None else 0.0
    skipped = list(skipped)
    partial = False
    try:
        for step, cached in enumerate(results, start=1):
            cancel.raise_if_cancelled()
            try:
                image = read_image(cached.path)
            except ImageReadError as exc:
                skipped.append((cached.path, exc.reason))
                continue
            anomaly = full_size_map(cached, info.map_name, image.shape[1:])
            score = float(cached.scores.get(info.map_name, math.nan))
            verdict = "defective" if score >= image_t else "good"
            result = ImageResult(cached.path, cached.label, score, verdict, dict(cached.scores))
            record = builder.add(result, anomaly, heatmap_overlay(image, anomaly, pixel_t))
            record.review = (reviews or {}).get(cached.path, "")
            yield Progress("report", step, len(results), message=f"report: {step} of {len(results)} images")
    except Cancelled:
        partial = True
    yield Progress("report", len(results), len(results), message=f"writing the report to {folder}")
    files = write_report(folder, builder.report(len(results), skipped, partial), pdf=pdf)
    yield Progress("cancelled" if partial else "done", len(results), len(results), result=files,
                   message=f"report written to {folder}" + (" (partial)" if partial else ""))
