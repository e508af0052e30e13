"""What a report holds: the run (model, thresholds, input) and one small record per inspected image.

Records are built while predicting, from each image's result and map, so thousands of images can be
reported without keeping any map in memory: only scores, regions and a thumbnail file remain.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import core
from core.fileio import atomic_target
from core.inference import ImageResult
from core.metrics.thresholds import Threshold
from core.modelfile import ModelMeta
from core.regions import DEFAULT_MIN_AREA, Region, find_regions

MAX_REGIONS = 20  # regions kept per image (most anomalous first); the total count is kept too
THUMB_SIDE = 256  # pixels, long side of the thumbnails beside the HTML report
BOX_RGB = (255, 0, 255)  # region boxes in thumbnails: magenta stands out from the jet colours


def now_iso() -> str:
    """Local time with its UTC offset, to the second: '2025-05-01T14:03:12+02:00'."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _threshold_or_none(values: dict[str, Any] | None) -> Threshold | None:
    return None if values is None else Threshold.from_dict(values)


@dataclass(frozen=True)
class RunInfo:
    """Which model looked at which folder, and with which thresholds (and how they were set)."""

    model: Path
    method: str
    preset: str
    dataset: str  # the data the model was trained on
    input: Path  # the folder inspected
    map_name: str  # the map whose score and regions are reported
    image_threshold: Threshold | None
    pixel_threshold: Threshold | None
    min_region_area: int = DEFAULT_MIN_AREA
    started: str = field(default_factory=now_iso)
    code_version: str = core.__version__

    @classmethod
    def from_meta(cls, model: Path, meta: ModelMeta, input_folder: Path,
                  min_region_area: int = DEFAULT_MIN_AREA, map_name: str | None = None) -> RunInfo:
        name = map_name or meta.default_map
        return cls(Path(model), meta.method, meta.preset, str(meta.training.get("data", "unknown")),
                   Path(input_folder), name, meta.threshold(name, "image"), meta.threshold(name, "pixel"),
                   min_region_area)

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "method": self.method, "preset": self.preset, "dataset": self.dataset,
                "input": str(self.input), "map": self.map_name,
                "image_threshold": None if self.image_threshold is None else self.image_threshold.to_dict(),
                "pixel_threshold": None if self.pixel_threshold is None else self.pixel_threshold.to_dict(),
                "min_region_area": self.min_region_area, "started": self.started,
                "code_version": self.code_version}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunInfo:
        return cls(Path(values["model"]), values["method"], values["preset"], values["dataset"],
                   Path(values["input"]), values["map"], _threshold_or_none(values["image_threshold"]),
                   _threshold_or_none(values["pixel_threshold"]), int(values["min_region_area"]),
                   values["started"], values["code_version"])


@dataclass
class InspectionRecord:
    """One inspected image: score, verdict, regions; no pixels except a thumbnail file."""

    path: Path
    label: str  # "good", a defect type, or "unknown"
    score: float
    verdict: str  # "defective" | "good"
    scores: dict[str, float]  # every map, pooled
    regions: list[Region]  # at most MAX_REGIONS, most anomalous first
    n_regions: int  # all regions of at least min_region_area pixels
    image_hw: tuple[int, int]
    time: str  # when it was scored
    thumb: str | None = None  # thumbnail path relative to the report folder ("thumbs/00001_x.jpg")
    overlay: Path | None = None  # the full-size overlay PNG, when one was written
    review: str = ""  # what a person said in the workbench: "good", "defect", or "" (not reviewed)

    @property
    def defect_percent(self) -> float:
        """Area of the listed regions, % of the image."""
        return sum(r.area_percent for r in self.regions)

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "label": self.label, "score": self.score, "verdict": self.verdict,
                "scores": self.scores, "n_regions": self.n_regions, "regions": [r.to_dict() for r in self.regions],
                "image_hw": list(self.image_hw), "time": self.time, "thumb": self.thumb,
                "overlay": None if self.overlay is None else str(self.overlay), "review": self.review}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InspectionRecord:
        overlay = values.get("overlay")
        return cls(Path(values["file"]), values["label"], float(values["score"]), values["verdict"],
                   {k: float(v) for k, v in values["scores"].items()},
                   [Region.from_dict(r) for r in values["regions"]], int(values["n_regions"]),
                   tuple(values["image_hw"]), values["time"], values.get("thumb"),
                   None if overlay is None else Path(overlay), str(values.get("review", "")))


@dataclass
class InspectionReport:
    """A whole run. `partial` = cancelled before all `planned` images were scored."""

    info: RunInfo
    records: list[InspectionRecord]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    planned: int = 0  # images found in the input folder
    partial: bool = False
    finished: str = field(default_factory=now_iso)

    @property
    def n_defective(self) -> int:
        return sum(r.verdict == "defective" for r in self.records)

    def ranked(self) -> list[InspectionRecord]:
        """Most anomalous first."""
        return sorted(self.records, key=lambda r: r.score, reverse=True)

    def status_line(self) -> str:
        done = f"{len(self.records)} of {self.planned} images scored"
        return f"PARTIAL: run cancelled, {done}" if self.partial else f"complete: {done}"

    def to_dict(self) -> dict[str, Any]:
        return {"format": "defectlab-inspection", "format_version": 1, "partial": self.partial,
                "status": self.status_line(), "planned": self.planned, "finished": self.finished,
                "run": self.info.to_dict(), "images": [r.to_dict() for r in self.records],
                "skipped": [{"file": str(p), "reason": reason} for p, reason in self.skipped]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InspectionReport:
        if values.get("format") != "defectlab-inspection":
            raise ValueError("not a DefectLab inspection report (no \"format\": \"defectlab-inspection\")")
        return cls(RunInfo.from_dict(values["run"]), [InspectionRecord.from_dict(r) for r in values["images"]],
                   [(Path(s["file"]), s["reason"]) for s in values["skipped"]], int(values["planned"]),
                   bool(values["partial"]), values["finished"])


def make_thumbnail(overlay: np.ndarray, regions: list[Region], side: int = THUMB_SIDE) -> np.ndarray:
    """(H,W,3) uint8 RGB overlay -> (h,w,3) uint8 RGB with long side `side` and region boxes drawn."""
    h, w = overlay.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = cv2.resize(overlay, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    for r in regions:
        x, y, bw, bh = r.bbox
        # Boxes at least 3 px so tiny regions stay visible in the thumbnail.
        x0, y0 = int(x * scale), int(y * scale)
        x1, y1 = max(int((x + bw) * scale), x0 + 3), max(int((y + bh) * scale), y0 + 3)
        cv2.rectangle(small, (x0 - 1, y0 - 1), (x1, y1), BOX_RGB, 1)
    return small


def write_jpeg_atomic(path: Path, rgb: np.ndarray, quality: int = 85) -> None:
    """(H,W,3) uint8 RGB -> JPEG file, written atomically."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"Could not encode {path} as JPEG (shape {rgb.shape})")
    with atomic_target(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


class ReportBuilder:
    """Collects records image by image (writing thumbnails to `folder/thumbs/`); `report()` gives the whole.

    The GUI and predict_folder use it alike: `add()` once per scored image, then write_report(folder, report).
    """

    def __init__(self, folder: Path, info: RunInfo) -> None:
        self.folder = Path(folder)
        self.info = info
        self.records: list[InspectionRecord] = []
        (self.folder / "thumbs").mkdir(parents=True, exist_ok=True)

    def add(self, result: ImageResult, anomaly_map: np.ndarray, overlay: np.ndarray,
            overlay_path: Path | None = None) -> InspectionRecord:
        """result: the scored image; anomaly_map: (H,W) map of info.map_name; overlay: (H,W,3) uint8 RGB."""
        pixel = self.info.pixel_threshold
        regions = [] if pixel is None else find_regions(anomaly_map, pixel.value, self.info.min_region_area)
        kept = regions[:MAX_REGIONS]
        thumb = f"thumbs/{len(self.records) + 1:05d}_{Path(result.path).stem}.jpg"
        write_jpeg_atomic(self.folder / thumb, make_thumbnail(overlay, kept))
        record = InspectionRecord(Path(result.path), result.label, float(result.score), result.verdict,
                                  {k: float(v) for k, v in result.scores.items()}, kept, len(regions),
                                  (int(anomaly_map.shape[0]), int(anomaly_map.shape[1])), now_iso(), thumb,
                                  overlay_path)
        self.records.append(record)
        return record

    def report(self, planned: int, skipped: list[tuple[Path, str]] | None = None,
               partial: bool = False) -> InspectionReport:
        return InspectionReport(self.info, list(self.records), list(skipped or []), planned, partial)
