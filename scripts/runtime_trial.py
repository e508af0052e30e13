"""ONNX Runtime against OpenVINO on exported DefectLab models, in one process: ms/image at batch 1 and 8 (best
of N after a warm-up, the way `core.export.speed` times), the PyTorch model beside them, and how far the
OpenVINO maps are from ONNX Runtime's. OpenVINO is optional (`pip install openvino`); the README's runtime
choice comes from this script's output.

    python scripts/runtime_trial.py M1.safetensors [M2.safetensors ...] [--threads 2] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's core/, not an installed one

from core.export.metadata import read_onnx_meta  # noqa: E402
from core.export.onnx_export import export_onnx  # noqa: E402
from core.export.runtime import OnnxModel  # noqa: E402
from core.export.speed import best_ms_per_image  # noqa: E402
from core.modelfile import load_model  # noqa: E402


def openvino_runner(path: Path, threads: int, batch: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """The graph compiled by OpenVINO for the CPU in float32 (the ONNX Runtime precision), for a static
    `batch` or, with None, the dynamic one the file has. Returns images -> the default map."""
    import openvino as ov  # noqa: PLC0415 - optional

    core = ov.Core()
    model = core.read_model(str(path))
    if batch is not None:
        model.reshape({model.inputs[0].get_any_name(): [batch, *model.inputs[0].get_partial_shape()[1:]]})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    output = compiled.outputs[1]  # outputs: score, map_<default>, ...

    def run(images: np.ndarray) -> np.ndarray:
        return request.infer({0: images})[output]
    return run


def interleaved_best_ms(runs: dict[str, Callable[[], object]], batch: int, repeats: int) -> dict[str, float]:
    """Best ms/image of each run, the runs taking turns (one call each per round, after a warm-up of each),
    so a load that comes and goes on a shared machine falls on all of them alike."""
    best = {name: float("inf") for name in runs}
    for run in runs.values():
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], best_ms_per_image(run, batch, 1, warm_up=False))
    return best


def trial(model_path: Path, threads: int, repeats: int, folder: Path) -> dict[str, object]:
    torch.set_num_threads(threads)
    onnx_path = export_onnx(model_path, folder / f"{model_path.stem}.onnx").path
    model, meta = load_model(model_path)
    ort_model = OnnxModel(onnx_path, read_onnx_meta(onnx_path), threads)
    row: dict[str, object] = {"model": model_path.name, "method": meta.method, "input_size": meta.input_size,
                              "threads": threads}
    for batch in (1, 8):
        images = np.random.default_rng(0).random((batch, meta.in_channels, meta.input_size, meta.input_size),
                                                 dtype=np.float32)
        tensor = torch.from_numpy(images)
        openvino = {"openvino_dynamic": openvino_runner(onnx_path, threads, None),
                    "openvino_static": openvino_runner(onnx_path, threads, batch)}
        runs: dict[str, Callable[[], object]] = {"pytorch": lambda: model.score(tensor),
                                                 "onnxruntime": lambda: ort_model.run(images)}
        runs.update({name: (lambda run=run: run(images)) for name, run in openvino.items()})
        with torch.no_grad():
            for name, ms in interleaved_best_ms(runs, batch, repeats).items():
                row[f"{name}_b{batch}"] = ms
        reference = ort_model.run(images)[meta.default_map]
        span = float(reference.max() - reference.min()) or 1.0
        for name, run in openvino.items():
            row[f"{name}_b{batch}_max_diff_rel"] = float(np.abs(run(images) - reference).max()) / span
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    import onnxruntime  # noqa: PLC0415
    import openvino  # noqa: PLC0415

    print(json.dumps({"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                      "openvino": openvino.__version__}))
    with tempfile.TemporaryDirectory() as folder:
        for path in args.models:
            row = trial(path, args.threads, args.repeats, Path(folder))
            print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
