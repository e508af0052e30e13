"""`defectlab export`: a model file -> one ONNX graph (images in [0,1] -> image score and anomaly maps) with
the model's metadata, thresholds and policy inside (`core.export.metadata`).

The graph is traced by torch.onnx's dynamo exporter (the TorchScript one cannot convert SSIM's reflect-padded
convolution with a dynamic batch). The batch dimension is dynamic; the image size is the model's input size.
"""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import UserError, user_message
from core.export.graph import INPUT_NAME, ExportGraph, choose_maps
from core.export.metadata import ONNX_SUFFIX, Thresholds, exported_meta, metadata_props
from core.fileio import atomic_target, check_output_file
from core.modelfile import ModelMeta, load_model
from core.models.base import AnomalyModel
from core.models.registry import get_method

OPSET = 18
FORMATS = ("onnx",)
MAX_BATCH = 4096  # the upper bound torch.export asks for; any batch up to it runs


@dataclass(frozen=True)
class ExportResult:
    path: Path
    method: str
    maps: list[str]  # exported, default first
    outputs: list[str]


def check_exportable(model: AnomalyModel | type[AnomalyModel]) -> None:
    """A UserError naming the method and why, when its inference is not one forward pass."""
    if model.export_blocker:
        raise UserError(f"{model.method} cannot be exported to ONNX: {model.export_blocker}")


def check_method_exportable(method: str) -> None:
    """`check_exportable` from a method's name alone (before a model file's weights are read)."""
    check_exportable(get_method(method).model_cls)


def export_onnx(model_path: str | Path, out: str | Path, maps: list[str] | None = None,
                all_maps: bool = False, fixed_batch: int | None = None, default_map: str | None = None,
                thresholds: Thresholds | None = None) -> ExportResult:
    """Export the model file `model_path` to the ONNX file `out`: the default map and score, plus `maps`
    (or every map with `all_maps`). The graph takes any batch size, or exactly `fixed_batch` images when
    given (a static graph exports several times faster). `default_map` makes another of the model's maps the
    one the score and verdicts come from; `thresholds` ({map: {kind: Threshold dict}}) replace stored ones
    (e.g. thresholds tuned in the workbench). Every failure a user can cause is a UserError or a file error."""
    model_path, out = Path(model_path), Path(out)
    check_onnx_target(out, inputs=[model_path])
    model, meta = load_model(model_path)
    return export_model(model, meta, out, maps, all_maps, fixed_batch, default_map, thresholds)


def check_onnx_target(out: Path, inputs: list[Path]) -> None:
    if out.suffix.lower() != ONNX_SUFFIX:
        raise UserError(f"--out {out} must end in {ONNX_SUFFIX}")
    check_output_file(out, "--out", inputs=inputs)


def export_model(model: AnomalyModel, meta: ModelMeta, out: Path, maps: list[str] | None = None,
                 all_maps: bool = False, fixed_batch: int | None = None, default_map: str | None = None,
                 thresholds: Thresholds | None = None) -> ExportResult:
    """`export_onnx` of a model already in memory with its metadata (the benchmark exports what it trained)."""
    check_exportable(model)
    names = choose_maps(model, maps, all_maps, default_map)
    graph = ExportGraph(model, names)
    size = model.config.input_size
    sample = torch.rand(fixed_batch or 2, model.config.in_channels, size, size)
    batch = None if fixed_batch else torch.export.Dim("batch", min=1, max=MAX_BATCH)
    props = metadata_props(model, exported_meta(meta, names, thresholds), graph.output_names)
    with atomic_target(out) as tmp:
        try:
            program = _quiet_export(graph, sample, batch)
        except Exception as exc:  # torch.export raises many types; all mean "this graph does not convert"
            first = user_message(exc).splitlines()[0]
            raise UserError(f"{model.method} (maps {', '.join(names)}) could not be exported to ONNX: {first}; "
                            "export fewer maps (--maps) or use the .safetensors model") from exc
        program.save(str(tmp))
        _write_props(tmp, props)
    return ExportResult(out, model.method, names, graph.output_names)


def _quiet_export(graph: ExportGraph, sample: torch.Tensor, batch: torch.export.Dim | None) -> torch.onnx.ONNXProgram:
    """torch.onnx.export without its progress prints and warnings (they are for torch developers)."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return torch.onnx.export(graph, (sample,), dynamo=True, opset_version=OPSET, input_names=[INPUT_NAME],
                                 output_names=graph.output_names, verbose=False,
                                 dynamic_shapes=({0: batch},) if batch is not None else None)


def _write_props(path: Path, props: dict[str, str]) -> None:
    import onnx  # noqa: PLC0415 - only for export

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
