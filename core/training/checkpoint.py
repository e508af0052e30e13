"""Training checkpoints: model and optimizer tensors in safetensors, everything else as JSON in its header.

Nothing is pickled, so a checkpoint can be loaded without running code from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from core.fileio import atomic_target

_KEY = "defectlab_checkpoint"


@dataclass
class Checkpoint:
    method: str
    config: dict[str, Any]
    step: int  # global steps completed
    phase: str
    seed: int
    model_state: dict[str, torch.Tensor]
    optimizer_states: list[dict[str, Any]]


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in ckpt.model_state.items()}
    optimizers_meta = []
    for i, opt_state in enumerate(ckpt.optimizer_states):
        scalars: dict[str, dict[str, Any]] = {}
        for param_id, values in opt_state["state"].items():
            for name, value in values.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{i}.{param_id}.{name}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(param_id), {})[name] = value
        optimizers_meta.append({"param_groups": opt_state["param_groups"], "scalars": scalars})
    header = {"method": ckpt.method, "config": ckpt.config, "step": ckpt.step, "phase": ckpt.phase,
              "seed": ckpt.seed, "optimizers": optimizers_meta}
    with atomic_target(path) as tmp:
        save_file(tensors, str(tmp), metadata={_KEY: json.dumps(header)})


def load_checkpoint(path: Path) -> Checkpoint:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if _KEY not in meta:
                raise ValueError(f"{path} is not a DefectLab training checkpoint")
            header = json.loads(meta[_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    except Exception as exc:  # safetensors raises its own error type for corrupt headers
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizer_states = []
    for i, opt_meta in enumerate(header["optimizers"]):
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optim.{i}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                param_id, name = key[len(prefix):].split(".", 1)
                state.setdefault(int(param_id), {})[name] = value
        for param_id, values in opt_meta["scalars"].items():
            state.setdefault(int(param_id), {}).update(values)
        groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in opt_meta["param_groups"]]
        optimizer_states.append({"state": state, "param_groups": groups})
    return Checkpoint(header["method"], header["config"], header["step"], header["phase"], header["seed"],
                      model_state, optimizer_states)
