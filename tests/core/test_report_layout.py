"""Report layout: larger thumbnails, captions of equal length, a Unicode font in the PDF, no promise of
full-size overlays that were not written, and files others can read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.inference import ImageResult
from core.metrics.thresholds import Threshold
from core.report import ReportBuilder, RunInfo, write_report
from core.report.records import THUMB_SIDE


def test_unicode_names_large_thumbnails_and_honest_notes(tmp_path: Path) -> None:
    info = RunInfo(tmp_path / "m.safetensors", "ae-l2", "fast", "/data/x", tmp_path / "lot", "l2",
                   Threshold(0.5, "label-free: test"), Threshold(0.5, "label-free: test"), min_region_area=2)
    builder = ReportBuilder(tmp_path / "report", info)
    for i, name in enumerate(["Prüfteil_ø12.png", "検査_001.png", "деталь.png", "plain.png"]):
        spot = np.zeros((300, 400), np.float32)
        spot[10:40, 10:40 + 20 * i] = 0.9
        builder.add(ImageResult(tmp_path / "lot" / name, "unknown", 0.9 - i / 10, "defective", {"l2": 0.9}),
                    spot, np.zeros((300, 400, 3), np.uint8))
    files = write_report(tmp_path / "report", builder.report(4))
    pdf = files.pdf.read_bytes()
    assert b"+DejaVuSans" in pdf and b"+DejaVuSans-Bold" in pdf  # the bundled Unicode font, embedded
    html = files.html.read_text(encoding="utf-8")
    assert "検査_001.png" in html and "full-size overlay" not in html  # none was written
    thumbs = sorted((tmp_path / "report" / "thumbs").iterdir())
    import cv2  # noqa: PLC0415

    assert max(cv2.imread(str(thumbs[0])).shape[:2]) == THUMB_SIDE >= 256
    umask = os.umask(0)
    os.umask(umask)
    for path in [files.html, files.pdf, files.csv, *thumbs]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
