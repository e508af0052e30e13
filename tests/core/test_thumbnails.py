"""Tests for core.thumbnails: previews of readable files, reasons for unreadable ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.thumbnails import iter_thumbnails


def test_iter_thumbnails_reports_unreadable_files(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((300, 150, 3), 128, np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"no")
    out = [p.result for p in iter_thumbnails([(good, None), (bad, None)], 64)]
    assert out[0][1].shape == (64, 32, 3) and out[0][1].dtype == np.uint8
    assert out[1][1] is None and "decodable" in out[1][2]
