"""A workbench window scored by a model, and untrained model files, for the GUI tests (works with or without
qtbot)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from core.modelfile import ModelMeta, save_model
from core.models import build_model


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "the window") -> None:
    """Run the Qt event loop until `condition()` holds."""
    deadline = time.perf_counter() + timeout_s
    while not condition():
        QApplication.processEvents()
        time.sleep(0.01)
        assert time.perf_counter() < deadline, f"{what} took over {timeout_s:.0f} s"


def scored_window(folder: Path, model: Path, images: int = 16, size: tuple[int, int] = (1600, 1000)) -> MainWindow:
    """A shown window with `folder` open and every one of its `images` scored by `model`."""
    window = MainWindow()
    window.resize(*size)
    window.show()
    window.open_folder(folder, then_model=model)
    wait_for(lambda: len(window.session.results) == images and window.scoring.job is None, what="scoring")
    return window


@contextlib.contextmanager
def scored_window_at_home(home: Path, folder: Path, model: Path) -> Iterator[MainWindow]:
    """`scored_window` with DEFECTLAB_HOME at `home`, closed afterwards (for module-scoped fixtures)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEFECTLAB_HOME", str(home))
        window = scored_window(folder, model)
        yield window
        window.close()


def model_file(folder: Path, method: str, reference: torch.Tensor | None = None, **settings: object) -> Path:
    """`folder/<method>.safetensors`: the method's fast preset with `settings`, untrained (seed 0), one channel;
    `reference` (C,H,W) in [0,1] is set as its reference image when given."""
    torch.manual_seed(0)
    model = build_model(method, "fast", in_channels=1, **settings).eval()
    if reference is not None:
        model.set_reference(reference)
    meta = ModelMeta(method=method, preset="fast", config=model.config.to_dict(), in_channels=1,
                     input_size=model.config.input_size, default_map=model.default_map,
                     map_names=list(model.all_map_names))
    return save_model(folder / f"{method}.safetensors", model, meta)
