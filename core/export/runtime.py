"""Scoring with an exported ONNX file through ONNX Runtime (CPU), behind the small part of the model interface
that `core.inference` and `core.workflow.predict` use (config, eval, to, score), so resize/tile, stitching,
pooling, verdicts and reports are the same code as for a PyTorch model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from core.export.graph import INPUT_NAME, map_output
from core.export.metadata import ONNX_SUFFIX, OnnxFileError, read_onnx_meta
from core.modelfile import ModelMeta, load_model
from core.models.base import AnomalyModel, MethodConfig
from core.models.registry import get_method


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ONNX_SUFFIX


class OnnxModel:
    """An exported model scored by ONNX Runtime. `score(batch (N,C,S,S) in [0,1])` -> ({map: (N,1,S,S)},
    None): the maps the file holds, on the CPU; there is no reconstruction."""

    reconstructs = False

    def __init__(self, path: Path, meta: ModelMeta, threads: int | None = None) -> None:
        import onnxruntime as ort  # noqa: PLC0415 - only for ONNX files

        self.path = path
        self.meta = meta
        self.method = meta.method
        self.config: MethodConfig = get_method(meta.method).config_cls.from_dict(meta.config)
        self.map_names = tuple(meta.map_names)
        self.default_map = meta.default_map
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads() or os.cpu_count() or 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own types for files it cannot load
            raise OnnxFileError(path, f"ONNX Runtime cannot load it ({exc})") from exc
        outputs = {o.name for o in self.session.get_outputs()}
        missing = [n for n in self.map_names if map_output(n) not in outputs]
        if missing:
            raise OnnxFileError(path, f"the graph lacks the outputs of maps {', '.join(missing)} named in its "
                                      "metadata; export it again")
        self._outputs = [map_output(n) for n in self.map_names]
        batch = self.session.get_inputs()[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None  # None: the graph takes any batch

    @property
    def all_map_names(self) -> tuple[str, ...]:
        return self.map_names

    def eval(self) -> OnnxModel:
        return self

    def to(self, device: torch.device | str) -> OnnxModel:
        """ONNX Runtime runs on the CPU here; inputs on any device are copied there."""
        return self

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """images (N,C,S,S) float32 in [0,1] -> {map name: (N,1,S,S)}. A graph exported for a fixed batch
        gets the images in groups of that size, the last one padded."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        step = self.fixed_batch or len(images)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(images), step):
            group = images[start:start + step]
            pad = step - len(group)
            if pad:
                group = np.concatenate([group, np.zeros((pad, *group.shape[1:]), np.float32)])
            parts.append([v[:step - pad] for v in self.session.run(self._outputs, {INPUT_NAME: group})])
        return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(self.map_names)}

    def score(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], None]:
        maps = self.run(batch.detach().float().cpu().numpy())
        return {name: torch.from_numpy(value) for name, value in maps.items()}, None


def load_onnx_model(path: str | Path, threads: int | None = None) -> tuple[OnnxModel, ModelMeta]:
    """An exported file as (model-like runtime, its ModelMeta); file problems are OnnxFileErrors."""
    path = Path(path)
    meta = read_onnx_meta(path)
    return OnnxModel(path, meta, threads), meta


def load_scoring_model(path: str | Path) -> tuple[AnomalyModel | OnnxModel, ModelMeta]:
    """A model file (.safetensors, PyTorch) or an exported one (.onnx, ONNX Runtime), ready to score."""
    return load_onnx_model(path) if is_onnx(path) else load_model(path)
