"""Inspection reports: CSV, JSON, a score histogram, an HTML page and a PDF, written from one
`InspectionReport` (used by `defectlab predict --report` and the GUI alike).

Typical use (predict_folder does this when `PredictRequest.report` is set):

    builder = ReportBuilder(folder, RunInfo.from_meta(model_path, meta, input_folder))
    for each scored image: builder.add(result, anomaly_map, overlay)
    write_report(folder, builder.report(planned=n_images, skipped=skipped, partial=cancelled))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.io import write_png_atomic
from core.report.charts import score_groups, score_histogram
from core.report.csvjson import CSV_NAME, JSON_NAME, read_report, write_csv, write_json
from core.report.html import write_html
from core.report.pdf import TOP_N, write_pdf
from core.report.records import InspectionRecord, InspectionReport, ReportBuilder, RunInfo

HISTOGRAM_NAME = "histogram.png"

__all__ = ["InspectionRecord", "InspectionReport", "ReportBuilder", "ReportFiles", "RunInfo", "read_report",
           "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    csv: Path
    json: Path
    histogram: Path
    html: Path
    pdf: Path | None


def write_report(folder: str | Path, report: InspectionReport, pdf: bool = True, top_n: int = TOP_N) -> ReportFiles:
    """Write inspection.csv, inspection.json, histogram.png, report.html and report.pdf into `folder`.

    Thumbnails are expected in `folder/thumbs/` (ReportBuilder writes them there). Data files come first,
    so the numbers are saved even if a page fails to render.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(folder / CSV_NAME, report)
    json_path = write_json(folder / JSON_NAME, report)
    scores = np.array([r.score for r in report.records], dtype=np.float64)
    groups = score_groups([r.label for r in report.records], [r.verdict for r in report.records])
    image_t = report.info.image_threshold
    histogram = folder / HISTOGRAM_NAME
    write_png_atomic(histogram, score_histogram(scores, groups, None if image_t is None else image_t.value))
    html_path = write_html(folder, report, HISTOGRAM_NAME)
    pdf_path = write_pdf(folder, report, histogram, top_n) if pdf else None
    return ReportFiles(csv_path, json_path, histogram, html_path, pdf_path)
