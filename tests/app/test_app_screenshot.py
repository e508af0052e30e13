"""Render the main window with results to a PNG (the README's screenshot is made the same way)."""

from __future__ import annotations

import time
import os
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from app.main_window import MainWindow

pytestmark = pytest.mark.gui


def test_main_window_with_results_renders_to_png(qtbot, tiny_dataset: Path, tiny_model: Path,
                                                 tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    window.open_folder(tiny_dataset, then_model=tiny_model)
    qtbot.waitUntil(lambda: len(window.session.results) == 16 and window.scoring.job is None, timeout=60000)
    defective = next(p for p, r in window.session.results.items() if r.has_mask)
    window.session.set_current(defective)
    window.viewer.mode.setCurrentIndex(1)  # overlay
    qtbot.waitUntil(lambda: len(window.dataset.loader.cache) >= 8, timeout=10000)
    qtbot.wait(50)
    out = tmp_path / "window.png"
    assert window.grab().save(str(out))
    if os.environ.get("DEFECTLAB_SCREENSHOT"):  # keep a copy to look at
        window.grab().save(os.environ["DEFECTLAB_SCREENSHOT"])
    image = QImage(str(out))
    assert image.width() >= 1200 and image.height() >= 800
    # the viewer shows every map of the model plus input and reconstruction
    assert list(window.viewer.grid.panes) == ["input", "reconstruction", "l2", "ssim", "l1"]
    assert window.viewer.grid.panes["ssim"].heat.image is not None
    assert window.viewer.grid.panes["input"].truth.has_outline()  # ground-truth contour drawn
    window.close()
