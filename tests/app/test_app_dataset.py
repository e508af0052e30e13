"""Opening folders in the main window: tree by split and label, thumbnail grid, skipped files, keyboard."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from PySide6.QtCore import Qt

from app.main_window import MainWindow

pytestmark = pytest.mark.gui


def open_and_wait(qtbot, window: MainWindow, folder: Path) -> None:
    with qtbot.waitSignal(window.session.datasetChanged, timeout=10000):
        window.open_folder(folder)


def test_open_mvtec_folder_shows_tree_grid_and_thumbnails(qtbot, tiny_dataset: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    open_and_wait(qtbot, window, tiny_dataset)
    panel = window.dataset
    assert panel.model.rowCount() == 16
    root = panel.tree.topLevelItem(0)
    assert root.text(0) == "All images (16)"
    labels = {root.child(i).child(j).text(0) for i in range(root.childCount())
              for j in range(root.child(i).childCount())}
    assert "good (8)" in labels and "good (4)" in labels
    # choosing a split narrows the grid
    test_item = next(root.child(i) for i in range(root.childCount()) if root.child(i).text(0).startswith("test"))
    panel.tree.setCurrentItem(test_item)
    assert panel.model.rowCount() == 8
    # thumbnails arrive from the background loader
    qtbot.waitUntil(lambda: len(panel.loader.cache) >= 4, timeout=10000)
    # labels and masks are in the tooltip; selection drives the viewer
    panel.select_relative(1)
    assert window.session.current is not None
    panel.select_relative(1)
    second = window.session.current
    panel.select_relative(-1)
    assert window.session.current != second
    assert window.viewer.image is not None
    window.close()


def test_plain_folder_with_a_broken_file_lists_it_as_skipped(qtbot, tiny_dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for i, image in enumerate(sorted((tiny_dataset / "train" / "good").glob("*.png"))[:3]):
        shutil.copy(image, folder / f"part_{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("hello")
    window = MainWindow()
    qtbot.addWidget(window)
    open_and_wait(qtbot, window, folder)
    assert window.dataset.model.rowCount() == 3
    assert window.dataset.skipped.count() == 2
    assert any("broken.png" in window.dataset.skipped.item(i).text() for i in range(2))
    assert "Skipped files (2)" == window.dataset.skipped_box.title()
    window.close()


def test_missing_folder_is_a_message_not_a_crash(qtbot, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(tmp_path / "nowhere")
    qtbot.waitUntil(lambda: bool(window.job_status.errors), timeout=5000)
    assert "not found" in window.job_status.errors[-1]
    window.close()


def test_a_mask_of_the_wrong_size_is_shown_in_the_browser_and_the_viewer(qtbot, tiny_dataset: Path,
                                                                          tmp_path: Path) -> None:
    import numpy as np  # noqa: PLC0415

    from core.data.io import write_png_atomic  # noqa: PLC0415

    folder = tmp_path / "copy"
    shutil.copytree(tiny_dataset, folder)
    mask = next((folder / "ground_truth").rglob("*_mask.png"))
    write_png_atomic(mask, np.zeros((40, 56), np.uint8))  # the images are 128 x 128
    window = MainWindow()
    qtbot.addWidget(window)
    open_and_wait(qtbot, window, folder)
    model = window.dataset.model
    row = next(i for i, r in enumerate(model.records) if r.mask_path == mask)
    index = model.index(row)
    assert "⚠ mask size differs" in model.data(index)
    assert "is 56x40, the image 128x128" in model.data(index, Qt.ItemDataRole.ToolTipRole)
    window.session.set_current(model.records[row].path)
    qtbot.waitUntil(lambda: "ground truth not shown" in window.viewer.readout.text(), timeout=5000)
    window.close()
