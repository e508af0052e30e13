"""Speed of an exported model beside its PyTorch original: ms per image at a batch size, best of a few runs
(CPU timings on a shared machine are noisy; the best run is the least disturbed one). For the benchmark."""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from core.errors import UserError
from core.export.onnx_export import export_model
from core.export.runtime import load_scoring_model
from core.modelfile import ModelMeta
from core.models.base import AnomalyModel

EXPORTED, NOT_EXPORTABLE, EXPORT_FAILED = "exported", "not exportable", "export failed"


def best_ms_per_image(run: Callable[[], object], batch_size: int, repeats: int, warm_up: bool = True) -> float:
    """Milliseconds per image of the fastest of `repeats` calls of `run` on a batch of `batch_size`."""
    if warm_up:
        run()  # lazy allocations, thread pools
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
        return best_ms_per_image(lambda: model.score(images), batch_size, repeats)


def time_onnx(model_path: str | Path, batch_size: int, repeats: int = 5) -> float:
    """ms/image of an exported .onnx file through ONNX Runtime (see `time_model`)."""
    return time_model(model_path, batch_size, repeats)


def export_and_time(model: AnomalyModel, meta: ModelMeta, batch_sizes: tuple[int, ...] = (1, 8),
                    repeats: int = 3) -> dict[str, Any]:
    """Export a trained model as `defectlab export` does (default map and image score, any batch) to a
    temporary file and time it through ONNX Runtime at each batch size. Returns {"status": "exported",
    "export_seconds", "ms_per_image_b<N>" ...}, or {"status": "not exportable" | "export failed", "reason"}."""
    if model.export_blocker:
        return {"status": NOT_EXPORTABLE, "reason": model.export_blocker}
    on_cpu = all(t.device.type == "cpu" for t in (*model.parameters(), *model.buffers()))
    model = model if on_cpu else copy.deepcopy(model).cpu()
    with tempfile.TemporaryDirectory(prefix="defectlab-export-") as folder:
        path = Path(folder) / f"{meta.method}.onnx"
        started = time.perf_counter()
        try:
            export_model(model, meta, path)
        except UserError as exc:
            return {"status": EXPORT_FAILED, "reason": str(exc)}
        out: dict[str, Any] = {"status": EXPORTED, "export_seconds": time.perf_counter() - started}
        for batch_size in batch_sizes:
            out[f"ms_per_image_b{batch_size}"] = time_onnx(path, batch_size, repeats)
    return out
