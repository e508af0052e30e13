"""Wording shared by the HTML and PDF reports, so both say the same thing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from core.metrics.thresholds import Threshold
from core.report.records import InspectionRecord, InspectionReport
from core.review import DEFECT, GOOD, measure


def threshold_text(threshold: Threshold | None) -> str:
    if threshold is None:
        return "none stored in the model"
    return f"{threshold.value:.6g} ({threshold.how})"


def display_path(path: Path, root: Path) -> str:
    """The file relative to the inspected folder when it lies inside it; POSIX separators."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def summary_rows(report: InspectionReport) -> list[tuple[str, str]]:
    """(key, value) lines naming the model, method, data, thresholds and how they were set, and the counts."""
    info = report.info
    n = len(report.records)
    defective = report.n_defective
    return [
        ("Status", report.status_line()),
        ("Model", f"{info.model.name}  ({info.model})"),
        ("Method", f"{info.method} ({info.preset} preset), map '{info.map_name}'"),
        ("Trained on", info.dataset),
        ("Inspected folder", str(info.input)),
        ("Image threshold", threshold_text(info.image_threshold)),
        ("Pixel threshold", threshold_text(info.pixel_threshold)),
        ("Regions", f"connected pixels at or above the pixel threshold, at least {info.min_region_area} px"),
        ("Result", f"{defective} defective, {n - defective} good of {n} scored"
                   + (f"; {len(report.skipped)} files skipped" if report.skipped else "")),
        ("Time", f"started {info.started}, finished {report.finished}; DefectLab {info.code_version}"),
    ] + review_rows(report)


def review_rows(report: InspectionReport) -> list[tuple[str, str]]:
    """The person's review, when there was one: how many images, and the verdicts' precision and recall on
    them."""
    reviewed = [r for r in report.records if r.review in (GOOD, DEFECT)]
    if not reviewed:
        return []
    measured = measure({r.path: r.review for r in reviewed}, {r.path: 1.0 if r.verdict == "defective" else 0.0
                                                              for r in reviewed}, 0.5)
    return [("Reviewed by a person", measured.text())]


def label_rows(report: InspectionReport) -> list[tuple[str, int, int]]:
    """(label, images, flagged defective) per known label; empty when no label is known."""
    total = Counter(r.label for r in report.records)
    flagged = Counter(r.label for r in report.records if r.verdict == "defective")
    if set(total) <= {"unknown"}:
        return []
    order = sorted(total, key=lambda label: (label != "good", label))
    return [(label, total[label], flagged[label]) for label in order]


def regions_text(record: InspectionRecord, limit: int = 3) -> str:
    """'2 regions: 1.2% at (x,y) w x h, max 0.31; ...' for the largest `limit` ones."""
    if record.n_regions == 0:
        return "no region"
    parts = []
    for r in sorted(record.regions, key=lambda g: g.area, reverse=True)[:limit]:
        x, y, w, h = r.bbox
        parts.append(f"{r.area_percent:.2g}% at ({x},{y}) {w}x{h}, max {r.max_score:.3g}")
    more = record.n_regions - len(parts)
    head = f"{record.n_regions} region{'s' if record.n_regions != 1 else ''}"
    return f"{head}: " + "; ".join(parts) + (f"; +{more} more" if more > 0 else "")
