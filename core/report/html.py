"""HTML report: summary, score histogram, and every image with its overlay thumbnail and regions.

Images are files beside the page (histogram.png, thumbs/*.jpg), never embedded, so a report of thousands of
images stays a small page that the browser loads lazily.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from urllib.parse import quote

from core.fileio import write_text_atomic
from core.report.records import InspectionReport
from core.report.text import display_path, label_rows, regions_text, summary_rows

HTML_NAME = "report.html"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 28px; }
table { border-collapse: collapse; }
td, th { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
.summary th { background: none; position: static; width: 150px; }
.partial { background: #fde2e1; border: 2px solid #c0392b; padding: 10px; font-weight: bold; }
.defective { color: #b03a00; font-weight: bold; } .good { color: #2e7d32; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.thumb { display: block; max-width: 256px; max-height: 256px; }
.note { color: #555; font-size: 90%; }
"""


def _link(target: Path, folder: Path) -> str:
    """A link from the report folder to `target`: relative when possible, so the folder can be moved."""
    try:
        return quote(Path(os.path.relpath(target, folder)).as_posix())  # '#' or '?' in a name must not cut the URL
    except ValueError:  # another drive on Windows
        return target.as_uri()


def html_text(report: InspectionReport, folder: Path, histogram: str | None = "histogram.png") -> str:
    """The page for a report whose thumbnails and histogram lie in `folder`."""
    info = report.info
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
           f"<title>DefectLab inspection: {escape(info.input.name)}</title>", f"<style>{STYLE}</style></head><body>",
           "<h1>DefectLab inspection report</h1>",
           f"<p class='note'>{escape(str(info.input))} inspected with {escape(info.model.name)}</p>"]
    if report.partial:
        out.append(f"<p class='partial'>Partial report: the run was cancelled after {len(report.records)} of "
                   f"{report.planned} images. Images not scored are not listed.</p>")
    out.append("<h2>Summary</h2><table class='summary'>")
    out += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in summary_rows(report)]
    out.append("</table>")
    labels = label_rows(report)
    if labels:
        out.append("<h2>By label</h2><table><tr><th>label</th><th>images</th><th>flagged defective</th></tr>")
        out += [f"<tr><td>{escape(label)}</td><td class='num'>{n}</td><td class='num'>{flagged} "
                f"({100 * flagged / n:.0f}%)</td></tr>" for label, n, flagged in labels]
        out.append("</table><p class='note'>Labels come from the folder names (good / defect type).</p>")
    if histogram:
        out.append(f"<h2>Score histogram</h2><img src='{escape(histogram)}' alt='score histogram'>")
    full_size = any(r.overlay is not None for r in report.records)
    out.append(f"<h2>Images ({len(report.records)}, most anomalous first)</h2>"
               "<p class='note'>Thumbnails: jet colours from half the pixel threshold up, white contour at the "
               "pixel threshold, magenta boxes around the listed regions."
               + (" Click a thumbnail for the full-size overlay." if full_size else "") + "</p>")
    out.append("<table><tr><th>#</th><th>overlay</th><th>file</th><th>label</th><th>score</th><th>verdict</th>"
               "<th>regions</th></tr>")
    for rank, r in enumerate(report.ranked(), 1):
        thumb = ""
        if r.thumb:
            thumb = f"<img class='thumb' loading='lazy' src='{escape(quote(r.thumb))}' alt=''>"
            if r.overlay is not None:
                thumb = f"<a href='{escape(_link(r.overlay, folder))}'>{thumb}</a>"
        out.append(f"<tr><td class='num'>{rank}</td><td>{thumb}</td>"
                   f"<td>{escape(display_path(r.path, info.input))}</td><td>{escape(r.label)}</td>"
                   f"<td class='num'>{r.score:.4g}</td><td class='{escape(r.verdict)}'>{escape(r.verdict)}</td>"
                   f"<td>{escape(regions_text(r, limit=5))}</td></tr>")
    out.append("</table>")
    if report.skipped:
        out.append(f"<h2>Skipped files ({len(report.skipped)})</h2><table>")
        out += [f"<tr><td>{escape(str(p))}</td><td>{escape(reason)}</td></tr>" for p, reason in report.skipped]
        out.append("</table>")
    out.append("<p class='note'>Data: inspection.csv and inspection.json in this folder.</p></body></html>")
    return "\n".join(out)


def write_html(folder: Path, report: InspectionReport, histogram: str | None = "histogram.png") -> Path:
    path = Path(folder) / HTML_NAME
    write_text_atomic(path, html_text(report, Path(folder), histogram))
    return path
