"""What an exported ONNX file says about itself (`metadata_props`): enough to inspect and run it without the
model file it came from.

Readable keys (all text): method, preset, code_version, input (shape, dtype, range), normalisation,
input_size, in_channels, resize_policy (JSON), pooling, default_map, maps, outputs, image_threshold /
pixel_threshold with _how, thresholds (JSON, every kind of every exported map). `defectlab_model` holds the
full model metadata as JSON (the same as in the .safetensors file, with `map_names` = the exported maps), so
`read_onnx_meta` gives back the `ModelMeta` the workflows use.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from core.errors import FileError
from core.modelfile import ModelMeta, check_meta
from core.models.base import AnomalyModel

META_KEY = "defectlab_model"
ONNX_SUFFIX = ".onnx"
Thresholds = dict[str, dict[str, dict[str, Any]]]  # {map: {kind: Threshold dict}}


class OnnxFileError(FileError):
    """An ONNX file that cannot be used as a DefectLab model, with the file and the reason."""

    action = "load ONNX model"


def exported_meta(meta: ModelMeta, maps: list[str], thresholds: Thresholds | None = None) -> ModelMeta:
    """The model's metadata restricted to the exported maps (their thresholds and score statistics), the
    first of `maps` as the default map; `thresholds` replace stored ones kind by kind."""
    merged = {name: {**meta.thresholds.get(name, {}), **(thresholds or {}).get(name, {})} for name in maps}
    return dataclasses.replace(meta, map_names=list(maps), default_map=maps[0],
                               thresholds={k: v for k, v in merged.items() if v},
                               score_stats={k: v for k, v in meta.score_stats.items() if k in maps})


def _threshold_text(meta: ModelMeta, kind: str) -> tuple[str, str]:
    """(value, how) of the default map's threshold of `kind` ("image"/"pixel"), ("", "not set") when none."""
    threshold = meta.threshold(meta.default_map, kind)
    if threshold is None:
        return "", "not set"
    return f"{threshold.value:.9g}", threshold.how


def metadata_props(model: AnomalyModel, meta: ModelMeta, outputs: list[str]) -> dict[str, str]:
    """The key -> text pairs written into the ONNX file; `meta` already restricted to the exported maps."""
    c = model.config
    image_value, image_how = _threshold_text(meta, "image")
    pixel_value, pixel_how = _threshold_text(meta, "pixel")
    policy = {"mode": c.resize_mode, "size": c.input_size, "tile_scale": c.tile_scale,
              "tile_overlap": c.tile_overlap}
    return {
        "method": meta.method, "preset": meta.preset, "code_version": meta.code_version,
        "input": f"images float32 (N,{c.in_channels},{c.input_size},{c.input_size}) in [0,1]",
        "normalisation": model.input_normalisation, "input_size": str(c.input_size),
        "in_channels": str(c.in_channels), "resize_policy": json.dumps(policy), "pooling": c.pooling,
        "default_map": meta.default_map, "maps": ",".join(meta.map_names), "outputs": ",".join(outputs),
        "image_threshold": image_value, "image_threshold_how": image_how,
        "pixel_threshold": pixel_value, "pixel_threshold_how": pixel_how,
        "thresholds": json.dumps(meta.thresholds, sort_keys=True),
        META_KEY: meta.to_json(),
    }


def read_props(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, without loading its weights."""
    import onnx  # noqa: PLC0415 - only for ONNX files

    path = Path(path)
    if not path.is_file():
        raise OnnxFileError(path, "file not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for files that are no ONNX model
        raise OnnxFileError(path, f"not an ONNX model ({type(exc).__name__}: {exc})") from exc
    return {p.key: p.value for p in proto.metadata_props}


def read_onnx_meta(path: str | Path) -> ModelMeta:
    """The `ModelMeta` an exported file carries, checked as a model file's is."""
    path = Path(path)
    props = read_props(path)
    if META_KEY not in props:
        raise OnnxFileError(path, "no DefectLab metadata in the file (was it exported by defectlab export?)")
    meta = ModelMeta.from_json(props[META_KEY], path)
    check_meta(meta, path)
    return meta


def describe(props: dict[str, str]) -> list[tuple[str, str]]:
    """Readable (key, value) rows for `defectlab export --inspect`: every key but the full JSON."""
    return [(key, value) for key, value in props.items() if key != META_KEY]
