"""The report as CSV (one row per image, for spreadsheets) and JSON (everything, for programs and the GUI)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from core.fileio import write_text_atomic
from core.report.records import InspectionReport

CSV_NAME = "inspection.csv"
JSON_NAME = "inspection.json"
PARTIAL_ROW = "# partial: run cancelled before all images were scored"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _regions_text(record) -> str:
    """'x,y,w,h area=N max=S' per region, separated by '; ' (one cell, readable in a spreadsheet)."""
    return "; ".join(f"{x},{y},{w},{h} area={r.area} max={r.max_score:.4g}"
                     for r in record.regions for x, y, w, h in [r.bbox])


def csv_text(report: InspectionReport) -> str:
    """Columns: file, label, score, verdict, thresholds, region summary, per-map scores, model, time.

    Skipped files are rows with verdict "skipped" and the reason in `label`; a partial run ends with a
    '# partial' row, as scores.csv does.
    """
    info = report.info
    map_names = sorted({name for r in report.records for name in r.scores})
    image_t = _number(info.image_threshold.value if info.image_threshold else None)
    pixel_t = _number(info.pixel_threshold.value if info.pixel_threshold else None)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "label", "score", "verdict", "image_threshold", "pixel_threshold", "n_regions",
                     "largest_region_px", "largest_region_percent", "regions"]
                    + [f"score_{n}" for n in map_names] + ["model", "time", "reviewed_as"])
    for r in report.records:
        largest = max(r.regions, key=lambda g: g.area, default=None)
        writer.writerow([str(r.path), r.label, _number(r.score), r.verdict, image_t, pixel_t, r.n_regions,
                         "" if largest is None else largest.area,
                         "" if largest is None else f"{largest.area_percent:.4g}", _regions_text(r)]
                        + [_number(r.scores.get(n)) for n in map_names] + [info.model.name, r.time, r.review])
    blanks = [""] * (6 + len(map_names) + 3)
    for path, reason in report.skipped:
        writer.writerow([str(path), reason, "", "skipped"] + blanks)
    if report.partial:
        writer.writerow([PARTIAL_ROW])
    return buffer.getvalue()


def write_csv(path: Path, report: InspectionReport) -> Path:
    write_text_atomic(path, csv_text(report))
    return path


def write_json(path: Path, report: InspectionReport) -> Path:
    write_text_atomic(path, json.dumps(report.to_dict(), indent=1))
    return path


def read_report(path: str | Path) -> InspectionReport:
    """Load `inspection.json` (or the folder holding it), e.g. to show a finished run in the viewer."""
    path = Path(path)
    if path.is_dir():
        path = path / JSON_NAME
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no inspection report at {path}; run `defectlab predict --report` first") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); was it written completely?") from exc
    try:
        return InspectionReport.from_dict(values)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a usable DefectLab inspection report: {exc}") from exc
