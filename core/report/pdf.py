"""PDF report with reportlab (headless, no Qt): the HTML report's content, paged.

All images are listed in a table; thumbnails are shown only for the `top_n` most anomalous ones, so a run of
thousands of images gives a PDF of tens of pages, not thousands. Text is set in the bundled DejaVu Sans
(fonts/), which has the glyphs of file names in any script, not only Latin-1.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import CondPageBreak, Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.fileio import atomic_target
from core.report.records import InspectionRecord, InspectionReport
from core.report.text import display_path, label_rows, regions_text, summary_rows

PDF_NAME = "report.pdf"
TOP_N = 24  # thumbnails in the PDF
COLUMNS = 3  # thumbnails per row
MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN
CAPTION_LINES = 3  # every caption has exactly these lines, so the thumbnail rows line up
FONTS = Path(__file__).with_name("fonts")
FONT, BOLD = "DejaVuSans", "DejaVuSans-Bold"

if FONT not in pdfmetrics.getRegisteredFontNames():
    pdfmetrics.registerFont(TTFont(FONT, str(FONTS / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(FONTS / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)

_styles = getSampleStyleSheet()
for _name in ("Title", "Heading2", "Heading3"):
    _styles[_name].fontName = BOLD
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontName=FONT, fontSize=8.5, leading=10.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7, leading=8.5)
PARTIAL = ParagraphStyle("partial", parent=BODY, fontSize=11, leading=14, textColor=colors.white,
                         backColor=colors.HexColor("#c0392b"), borderPadding=6, spaceAfter=8)
GRID = [("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#bbbbbb")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("FONTSIZE", (0, 0), (-1, -1), 7.5), ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
HEADER = [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")), ("FONTNAME", (0, 0), (-1, 0), BOLD)]


def _p(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(text), style)


def _tail(text: str, limit: int) -> str:
    """Long paths keep their end (the file name), which is what tells images apart."""
    return text if len(text) <= limit else "..." + text[-(limit - 3):]


def _head(text: str, limit: int) -> str:
    """A caption line keeps its start."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _thumb_cell(record: InspectionRecord, rank: int, folder: Path, root: Path, width: float) -> list:
    """A thumbnail fitted into a width x 0.75 width box, and a caption of exactly CAPTION_LINES short lines."""
    cell: list = []
    if record.thumb and (folder / record.thumb).is_file():
        h, w = record.image_hw
        scale = min(width / w, 0.75 * width / h)
        cell.append(Image(str(folder / record.thumb), w * scale, h * scale))
    chars = int(width / 4.3)  # about this many 7-point characters fit the width
    lines = [f"#{rank} {_tail(display_path(record.path, root), chars - 4)}",
             _head(f"score {record.score:.4g}, {record.verdict}, label {record.label}", chars),
             _head(regions_text(record, limit=1), chars)]
    cell.append(Paragraph("<br/>".join(escape(line) for line in lines[:CAPTION_LINES]), SMALL))
    return cell


def _thumb_grid(report: InspectionReport, folder: Path, top_n: int) -> Table:
    cell_w = WIDTH / COLUMNS
    cells = [_thumb_cell(r, k, folder, report.info.input, cell_w - 8)
             for k, r in enumerate(report.ranked()[:top_n], 1)]
    rows = [cells[i:i + COLUMNS] for i in range(0, len(cells), COLUMNS)]
    rows[-1] += [""] * (COLUMNS - len(rows[-1]))
    row_h = 0.75 * (cell_w - 8) + CAPTION_LINES * SMALL.leading + 14
    table = Table(rows, colWidths=[cell_w] * COLUMNS, rowHeights=[row_h] * len(rows))
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 8)]))
    return table


def _image_table(report: InspectionReport) -> Table:
    rows: list[list] = [["#", "file", "label", "score", "verdict", "regions", "largest %"]]
    for k, r in enumerate(report.ranked(), 1):
        largest = max((g.area_percent for g in r.regions), default=None)
        rows.append([str(k), _tail(display_path(r.path, report.info.input), 60), r.label[:16], f"{r.score:.4g}",
                     r.verdict, str(r.n_regions), "" if largest is None else f"{largest:.2g}"])
    widths = [10 * mm, 82 * mm, 24 * mm, 16 * mm, 16 * mm, 14 * mm, 16 * mm]
    style = GRID + HEADER + [("ALIGN", (3, 1), (3, -1), "RIGHT"), ("ALIGN", (5, 1), (-1, -1), "RIGHT")]
    style += [("TEXTCOLOR", (4, i), (4, i), colors.HexColor("#b03a00"))
              for i, row in enumerate(rows[1:], 1) if row[4] == "defective"]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle(style))
    return table


def _story(report: InspectionReport, folder: Path, histogram: Path | None, top_n: int) -> list:
    story: list = [Paragraph("DefectLab inspection report", _styles["Title"])]
    if report.partial:
        story.append(_p(f"PARTIAL REPORT: the run was cancelled after {len(report.records)} of {report.planned} "
                        "images. Images not scored are not listed.", PARTIAL))
    summary = Table([[_p(k), _p(v)] for k, v in summary_rows(report)], colWidths=[32 * mm, WIDTH - 32 * mm])
    summary.setStyle(TableStyle(GRID + [("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f3f3f3"))]))
    story += [summary, Spacer(1, 6)]
    labels = label_rows(report)
    if labels:
        table = Table([["label", "images", "flagged defective"]]
                      + [[label, str(n), f"{f} ({100 * f / n:.0f}%)"] for label, n, f in labels],
                      colWidths=[40 * mm, 20 * mm, 35 * mm], hAlign="LEFT")
        table.setStyle(TableStyle(GRID + HEADER))
        story += [Paragraph("By label (from folder names)", _styles["Heading3"]), table]
    if histogram is not None and histogram.is_file():
        story += [Paragraph("Score histogram", _styles["Heading3"]), Image(str(histogram), WIDTH, WIDTH * 280 / 760)]
    if report.records:
        shown = min(top_n, len(report.records))
        # Start the thumbnails on a new page unless a heading, the note and a row of thumbnails fit here.
        story += [CondPageBreak(75 * mm), Paragraph(f"The {shown} most anomalous images", _styles["Heading2"]),
                  _p(f"Thumbnails for the {shown} highest-scoring of {len(report.records)} images; every image is "
                     "listed in the table after them, and report.html shows all thumbnails. Overlay: jet colours "
                     "from half the pixel threshold up, white contour at the pixel threshold, magenta boxes around "
                     "regions."), Spacer(1, 4), _thumb_grid(report, folder, top_n),
                  Paragraph(f"All images ({len(report.records)}, most anomalous first)", _styles["Heading2"]),
                  _image_table(report)]
    if report.skipped:
        story.append(Paragraph(f"Skipped files ({len(report.skipped)})", _styles["Heading2"]))
        story += [_p(f"{p}: {reason}", SMALL) for p, reason in report.skipped]
    return story


def write_pdf(folder: Path, report: InspectionReport, histogram: Path | None = None, top_n: int = TOP_N) -> Path:
    """Write `folder/report.pdf` atomically; thumbnails are read from `folder/thumbs/`."""
    folder = Path(folder)
    path = folder / PDF_NAME
    footer = f"DefectLab inspection of {report.info.input.name} with {report.info.model.name}"
    if report.partial:
        footer += " - PARTIAL (cancelled)"

    def on_page(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(MARGIN, 8 * mm, footer)
        canvas.drawRightString(A4[0] - MARGIN, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    with atomic_target(path) as tmp:
        doc = SimpleDocTemplate(str(tmp), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                                bottomMargin=MARGIN, title="DefectLab inspection report", author="DefectLab")
        doc.build(_story(report, folder, histogram, top_n), onFirstPage=on_page, onLaterPages=on_page)
    return path
