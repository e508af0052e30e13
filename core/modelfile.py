"""Model files: one safetensors file holding the weights and, in its header, the JSON metadata
(method, config, input size, channels, thresholds, score statistics, format and code version).

Loading validates the metadata and never unpickles anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

import core
from core.config_checks import check_config
from core.errors import FileError
from core.fileio import atomic_target
from core.metrics.thresholds import Threshold
from core.models.base import AnomalyModel
from core.models.registry import build_from_config, get_method

FORMAT_VERSION = 1
MODEL_SUFFIX = ".safetensors"
_KEY = "defectlab_model"


class ModelFileError(FileError):
    """A model file that cannot be used, with the file and the reason."""

    action = "load model"


@dataclass(frozen=True)
class ModelMeta:
    method: str
    preset: str
    config: dict[str, Any]
    in_channels: int
    input_size: int
    default_map: str
    map_names: list[str]
    # thresholds[map][kind] = {"value": float, "how": str, "false_reject_rate": float, ...}, kind "image",
    # "pixel", "image_synthetic" or "pixel_synthetic"; a synthetic one with "degenerate": true (and a
    # "reason") is kept for the record but is no operating point
    thresholds: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # score_stats[map] = statistics of held-out normal images (image scores and pixel values)
    score_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    # data, counts, seed, time, device, ...; "reference": the image file set as the reference image after
    # training (methods with `uses_reference`; absent: the one training chose)
    training: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    code_version: str = core.__version__

    def threshold(self, map_name: str, kind: str) -> Threshold | None:
        """The stored threshold of `kind` ("image", "pixel", ...) for a map, with how it was set; None when
        there is none or its calibration was degenerate."""
        entry = self.thresholds.get(map_name, {}).get(kind)
        return None if entry is None or entry.get("degenerate") else Threshold.from_dict(entry)

    def degenerate_thresholds(self) -> list[tuple[str, str, str]]:
        """(map, kind, reason) of every stored threshold whose calibration was degenerate."""
        return [(name, kind, entry.get("reason", "degenerate calibration"))
                for name, kinds in sorted(self.thresholds.items()) for kind, entry in sorted(kinds.items())
                if entry.get("degenerate")]

    def threshold_notes(self, map_name: str) -> str:
        """One line for users: the held-out false-reject rate of the map's stored thresholds and which
        synthetic-split calibrations are degenerate ("" when nothing is stored)."""
        parts = []
        for kind, entry in sorted(self.thresholds.get(map_name, {}).items()):
            if entry.get("degenerate"):
                parts.append(f"{kind}: degenerate calibration, not offered")
            elif "false_reject_rate" in entry:
                parts.append(f"{kind}: rejects {entry['false_reject_rate']:.1%} of held-out good parts")
        return "; ".join(parts)

    def image_threshold(self, map_name: str | None = None) -> float | None:
        entry = self.thresholds.get(map_name or self.default_map, {}).get("image")
        return None if entry is None else float(entry["value"])

    def pixel_threshold(self, map_name: str | None = None) -> float | None:
        entry = self.thresholds.get(map_name or self.default_map, {}).get("pixel")
        return None if entry is None else float(entry["value"])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: Path) -> ModelMeta:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(path, f"metadata is not valid JSON ({exc})") from exc
        if not isinstance(values, dict):
            raise ModelFileError(path, "metadata is not a JSON object")
        version = values.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise ModelFileError(path, f"format version {version!r} is not supported (this DefectLab reads "
                                       f"1..{FORMAT_VERSION}); update DefectLab")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(values))
        if missing:
            raise ModelFileError(path, f"metadata lacks {', '.join(missing)}")
        unknown = sorted(set(values) - names)
        if unknown:
            raise ModelFileError(path, f"metadata has unknown fields {', '.join(unknown)}")
        return cls(**values)


def save_model(path: str | Path, model: AnomalyModel, meta: ModelMeta) -> Path:
    """Write weights + metadata atomically; returns the path."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_target(path) as tmp:
        save_file(tensors, str(tmp), metadata={_KEY: meta.to_json()})
    return path


def read_meta(path: str | Path) -> ModelMeta:
    """Metadata only, without building the network (fast; used by lists and the GUI)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(path, f"not a safetensors model file ({exc})") from exc
    if _KEY not in header:
        raise ModelFileError(path, "no DefectLab metadata in the file (is it a DefectLab model?)")
    meta = ModelMeta.from_json(header[_KEY], path)
    check_meta(meta, path)
    return meta


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_meta(meta: ModelMeta, path: Path) -> None:
    """Bounds and types of every metadata value, checked before a network is built or an image is scored;
    a damaged or hand-edited file gets a ModelFileError naming the file and the field."""
    def bad(field_name: str, problem: str) -> ModelFileError:
        return ModelFileError(path, f"field {field_name} {problem}; the file is damaged or was edited: "
                                    "train the model again or use another file")
    try:
        spec = get_method(meta.method) if isinstance(meta.method, str) else None
    except ValueError as exc:
        raise bad("method", f"= {meta.method!r} is unknown ({exc})") from None
    if spec is None:
        raise bad("method", f"= {meta.method!r} is not text")
    if not isinstance(meta.config, dict):
        raise bad("config", "is not a JSON object")
    try:
        config = spec.config_cls.from_dict(meta.config)
        check_config(config, where="")
    except (ValueError, TypeError) as exc:
        raise bad("config", f"is not valid: {exc}") from None
    if meta.in_channels not in (1, 3) or isinstance(meta.in_channels, bool):
        raise bad("in_channels", f"= {meta.in_channels!r} must be 1 or 3")
    if meta.input_size != config.input_size:
        raise bad("input_size", f"= {meta.input_size!r} differs from config.input_size = {config.input_size}")
    if not isinstance(meta.map_names, list) or not meta.map_names or not all(isinstance(n, str) for n in meta.map_names):
        raise bad("map_names", f"= {meta.map_names!r} must be a non-empty list of map names")
    if meta.default_map not in meta.map_names:
        raise bad("default_map", f"= {meta.default_map!r} is not one of map_names {meta.map_names}")
    if not isinstance(meta.thresholds, dict):
        raise bad("thresholds", "is not a JSON object")
    for map_name, kinds in meta.thresholds.items():
        if not isinstance(kinds, dict):
            raise bad(f"thresholds.{map_name}", "is not a JSON object")
        for kind, entry in kinds.items():
            if not isinstance(entry, dict) or not _finite(entry.get("value")) or not isinstance(entry.get("how", ""), str):
                raise bad(f"thresholds.{map_name}.{kind}", f"= {entry!r} must hold a finite number 'value' and "
                                                           "a text 'how'")
    if not isinstance(meta.score_stats, dict):
        raise bad("score_stats", "is not a JSON object")
    for map_name, stats in meta.score_stats.items():
        for key, value in (stats.items() if isinstance(stats, dict) else [("", stats)]):
            if not _finite(value):
                raise bad(f"score_stats.{map_name}.{key}".rstrip("."), f"= {value!r} is not a finite number")
    if not isinstance(meta.training, dict):
        raise bad("training", "is not a JSON object")
    if not isinstance(meta.training.get("reference", ""), str):
        raise bad("training.reference", "must be the path of an image file")
    held_out = meta.training.get("held_out", [])
    if not isinstance(held_out, list) or not all(isinstance(p, str) for p in held_out):
        raise bad("training.held_out", "must be a list of image paths")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[AnomalyModel, ModelMeta]:
    """Rebuild the network from the metadata and load the weights; every mismatch is a ModelFileError."""
    path = Path(path)
    meta = read_meta(path)
    try:
        model = build_from_config(meta.method, meta.config)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(path, str(exc)) from exc
    with safe_open(str(path), framework="pt", device="cpu") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    model.prepare_for_state(state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(path, f"weights do not match the {meta.method} network: {exc}") from exc
    model.to(device).eval()
    return model, meta
