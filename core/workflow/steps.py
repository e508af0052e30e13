"""The intermediate steps of one image's inference, for methods whose inference is iterative (the
workbench's iteration view; `AnomalyModel.steps`)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from core.data.io import read_image
from core.device import pick_device
from core.errors import UserError
from core.export.runtime import is_onnx
from core.inference import image_steps
from core.modelfile import load_model
from core.models.base import AnomalyModel
from core.models.registry import get_method
from core.progress import CancelToken, Progress


def method_has_steps(method: str) -> bool:
    """Whether the method's inference has intermediate steps to show (it overrides `AnomalyModel.steps`)."""
    return get_method(method).model_cls.steps is not AnomalyModel.steps


def steps_of_image(model_path: Path, image_path: Path, device: str = "auto",
                   cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Load the model file and the image, then one Progress per step (result = `core.inference.StepImage`);
    the last value (phase "done") has the list. The model must be a `.safetensors` file of a method with
    steps; anything else is a UserError that says so."""
    cancel = cancel or CancelToken()
    if is_onnx(model_path):
        raise UserError(f"{Path(model_path).name} is an ONNX file; the steps of an inference need the model's "
                        ".safetensors file")
    yield Progress("load", 0, 1, message=f"loading {Path(model_path).name}")
    model, meta = load_model(model_path)
    if not method_has_steps(meta.method):
        raise UserError(f"{meta.method} has no intermediate steps to show: its inference is one pass")
    model.to(pick_device(device))
    image = read_image(image_path)
    cancel.raise_if_cancelled()
    yield from image_steps(model, image, model.config.policy, pick_device(device), cancel)
