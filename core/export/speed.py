"""Speed of an exported model beside its PyTorch original: ms per image at a batch size, best of a few runs
(CPU timings on a shared machine are noisy; the best run is the least disturbed one). For the benchmark."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.export.runtime import load_scoring_model


def _best_ms_per_image(run: Callable[[], object], batch_size: int, repeats: int) -> float:
    run()  # warm-up: lazy allocations, thread pools
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best / batch_size


def time_model(model_path: str | Path, batch_size: int, repeats: int = 5) -> float:
    """ms/image of `score` on a batch (batch_size,C,S,S) at the model's input size: a .safetensors file
    through PyTorch, an .onnx file through ONNX Runtime. Best of `repeats` after one warm-up."""
    model, meta = load_scoring_model(model_path)
    images = torch.from_numpy(np.random.default_rng(0).random(
        (batch_size, meta.in_channels, meta.input_size, meta.input_size), dtype=np.float32))
    with torch.no_grad():
        return _best_ms_per_image(lambda: model.score(images), batch_size, repeats)


def time_onnx(model_path: str | Path, batch_size: int, repeats: int = 5) -> float:
    """ms/image of an exported .onnx file through ONNX Runtime (see `time_model`)."""
    return time_model(model_path, batch_size, repeats)
