"""Score a folder of images with a trained model: per-image score and verdict, optional map PNGs, a CSV,
and optionally an inspection report (CSV, JSON, HTML, PDF with regions and thumbnails)."""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from core.data.index import iter_index_dataset
from core.data.io import write_png_atomic
from core.data.preprocess import ResizePolicy
from core.device import pick_device
from core.errors import user_message
from core.fileio import check_output_folder, write_text_atomic
from core.inference import ImageResult, image_scores, infer_images
from core.export.runtime import OnnxModel, is_onnx, load_scoring_model
from core.modelfile import ModelMeta
from core.models.base import AnomalyModel
from core.progress import CancelToken, Cancelled, Progress
from core.regions import DEFAULT_MIN_AREA
from core.report import ReportBuilder, RunInfo, write_report
from core.report.overlay import heatmap_overlay
from core.workflow.common import read_batches


@dataclass(frozen=True)
class PredictRequest:
    model: Path
    input: Path
    out: Path | None = None  # folder for scores.csv and maps/; None: results only in memory
    write_maps: bool = True
    device: str = "auto"
    keep_maps: bool = False  # keep maps and reconstructions in each ImageResult (GUI); memory grows
    report: Path | None = None  # folder for the inspection report; None: no report
    min_region_area: int = DEFAULT_MIN_AREA  # pixels; smaller defect regions are left out of the report
    report_pdf: bool = True


def predict_folder(request: PredictRequest, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Each step's Progress.result is that image's ImageResult; the last value (phase "done" or "cancelled")
    carries the list of results, and `extra["report"]` the ReportFiles when a report was asked for.

    Outputs are checked before the model is loaded. scores.csv is written as the images are scored, so a
    crash or a full disk keeps every row scored so far; an image that cannot be scored (e.g. out of memory)
    becomes a skipped row. A cancelled run writes a CSV and a report of what was scored, both marked partial."""
    cancel = cancel or CancelToken()
    inputs = [request.input, request.model]
    if request.report is not None:
        check_output_folder(request.report, "--report", inputs)
    if request.out:
        check_output_folder(request.out, "--out", inputs)
    model, meta = load_scoring_model(request.model)
    device = pick_device("cpu" if is_onnx(request.model) else request.device)
    model.to(device)
    index = None
    try:
        for progress in iter_index_dataset(request.input, cancel=cancel):
            index = progress.result
            yield progress
    except Cancelled:
        yield Progress("cancelled", 0, 0, message="cancelled while indexing; nothing was scored or written",
                       result=[])
        return
    assert index is not None
    records = index.records
    image_t = meta.image_threshold() or float("inf")
    pixel_t = meta.pixel_threshold() or 0.0
    results: list[ImageResult] = []
    skipped = [(s.path, s.reason) for s in index.skipped]
    table = ScoresCsv(request.out / "scores.csv", meta) if request.out else None
    if table is not None:
        table.add_skipped(skipped)
    builder = None
    if request.report is not None:
        builder = ReportBuilder(request.report, RunInfo.from_meta(request.model, meta, index.root,
                                                                  request.min_region_area))
    partial = False
    try:
        for batch_records, images, failed in read_batches(records, cancel):
            for record, image, outcome in zip(batch_records, images,
                                              _infer_each(model, images, model.config.policy, device)):
                cancel.raise_if_cancelled()
                if isinstance(outcome, BaseException):
                    failed.append((record.path, f"could not be scored: {user_message(outcome)}"))
                    continue
                maps, recon = outcome
                scores = image_scores(maps, model.config.pooling)
                score = scores[meta.default_map]
                result = ImageResult(record.path, record.label, score,
                                     "defective" if score >= image_t else "good", scores)
                write_map = bool(request.out and request.write_maps)
                if write_map or builder is not None:
                    overlay = heatmap_overlay(image, maps[meta.default_map], pixel_t)
                    overlay_path = _write_map(request.out, index.root, record.path, overlay) if write_map else None
                    if builder is not None:
                        builder.add(result, maps[meta.default_map], overlay, overlay_path)
                if request.keep_maps:
                    result.maps, result.reconstruction = maps, recon
                results.append(result)
                if table is not None:
                    table.add(result)
                yield Progress("predict", len(results), len(records), result=result)
            skipped += failed
            if table is not None:
                table.add_skipped(failed)
                table.flush()
    except Cancelled:
        partial = True
    except BaseException as exc:
        if table is not None:
            why = "interrupted" if isinstance(exc, (KeyboardInterrupt, GeneratorExit)) else user_message(exc)
            table.close(f"# partial: stopped after {len(results)} images: {why}")
        raise
    if table is not None:
        table.close("# partial: run cancelled before all images were scored" if partial else None)
    files = None
    if builder is not None:
        yield Progress("report", len(results), len(records), message=f"writing the report to {request.report}")
        files = write_report(request.report, builder.report(len(records), skipped, partial), pdf=request.report_pdf)
    if partial:
        message = f"cancelled after {len(results)} of {len(records)} images"
    else:
        message = f"scored {len(results)} images"
    yield Progress("cancelled" if partial else "done", len(records), len(records), message=message,
                   extra={"report": files} if files else {}, result=results)


def _infer_each(model: AnomalyModel | OnnxModel, images: list[np.ndarray], policy: ResizePolicy, device: torch.device
                ) -> list[tuple[dict[str, np.ndarray], np.ndarray | None] | BaseException]:
    """infer_images for a batch; when the batch fails, image by image, so one bad image is one skipped row
    (its exception in the list) instead of a lost run."""
    try:
        return list(infer_images(model, images, policy, device))
    except (MemoryError, RuntimeError, ValueError):
        if len(images) <= 1:
            raise
    outcomes: list[tuple[dict[str, np.ndarray], np.ndarray | None] | BaseException] = []
    for image in images:
        try:
            outcomes.append(infer_images(model, [image], policy, device)[0])
        except (MemoryError, RuntimeError, ValueError) as exc:
            outcomes.append(exc)
    return outcomes


def overlay_name(root: Path, path: Path) -> str:
    """maps/ file name of an image's overlay: its path below `root` joined by __; a suffix other than .png
    is kept in the name, so `a.png` and `a.jpg` never share (and overwrite) one overlay."""
    relative = path.relative_to(root)
    suffix = relative.suffix.lower()
    stem = "__".join(relative.with_suffix("").parts) + ("" if suffix == ".png" else f"_{suffix[1:]}")
    return stem + "_overlay.png"


def _write_map(out: Path, root: Path, path: Path, overlay: np.ndarray) -> Path:
    """Write the (H,W,3) RGB overlay as maps/<overlay_name>; returns its path."""
    target = out / "maps" / overlay_name(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_png_atomic(target, overlay)
    return target


class ScoresCsv:
    """scores.csv written as results come: file, score, verdict, label, one column per map; skipped files
    with their reason. The header replaces an earlier file in one step; rows are appended and flushed after
    every batch, so whatever ends the run, the rows written so far stay readable."""

    def __init__(self, path: Path, meta: ModelMeta) -> None:
        self.path = path
        self.map_names = list(meta.map_names)
        header = io.StringIO()
        csv.writer(header).writerow(["file", "score", "verdict", "label"] + [f"score_{n}" for n in self.map_names])
        write_text_atomic(path, header.getvalue())
        self._file = path.open("a", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)

    def add(self, r: ImageResult) -> None:
        self._writer.writerow([str(r.path), f"{r.score:.6g}", r.verdict, r.label]
                              + [f"{r.scores[n]:.6g}" for n in self.map_names])

    def add_skipped(self, skipped: list[tuple[Path, str]]) -> None:
        for skipped_path, reason in skipped:  # a distinct name: `self.path` is the CSV being written
            self._writer.writerow([str(skipped_path), "", "skipped", reason] + [""] * len(self.map_names))

    def flush(self) -> None:
        self._file.flush()

    def close(self, note: str | None = None) -> None:
        """Write the closing note (e.g. "# partial: ...") if any and close; a full disk loses only the note."""
        if self._file.closed:
            return
        try:
            if note:
                self._writer.writerow([note])
            self._file.close()
        except OSError:
            with contextlib.suppress(OSError):
                self._file.close()
