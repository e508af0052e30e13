"""The one training engine for all methods: runs a model's phases as a generator of Progress values."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from core.device import pick_device, set_threads
from core.progress import CancelToken, EtaClock, Progress
from core.training.batches import TrainingImages
from core.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from core.models.base import AnomalyModel
from core.models.phases import Phase

STATS_EVERY = 10  # steps between model statistics (e.g. memory usage) sent with the progress


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainOptions:
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    checkpoint_path: Path | None = None
    checkpoint_every: int = 100  # steps; also written at every phase end and on cancel
    resume: bool = True  # continue from `checkpoint_path` when it exists and matches the model


def fit(model: AnomalyModel, images: TrainingImages, options: TrainOptions,
        cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Train `model` in place. Yields one Progress per step; the last one has phase "done" or "cancelled".

    Deterministic for a given seed: batches depend on (seed, epoch, index) and torch's RNG is reseeded from
    (seed, step) before every step, so a resumed run continues exactly like an uninterrupted one.
    """
    cancel = cancel or CancelToken()
    device = pick_device(options.device)
    set_threads(options.threads)
    model.to(device)
    batch_size = model.config.batch_size
    per_epoch = images.steps_per_epoch(batch_size)
    schedule = [(phase, phase.length(per_epoch)) for phase in model.phases()]
    total = sum(steps for _, steps in schedule)

    resumed = _resume_point(model, options)
    done_steps = resumed.step if resumed else 0
    if resumed:
        yield Progress("resumed", done_steps, total, message=f"resumed from {options.checkpoint_path} "
                                                               f"at step {done_steps} of {total}")
    clock = EtaClock(total, done_steps)
    phase_start = 0
    for phase, steps in schedule:
        phase_end = phase_start + steps
        if phase_end <= done_steps:
            phase_start = phase_end
            continue
        optimizers = _prepare_phase(model, phase)
        if resumed and resumed.phase == phase.name and phase.is_gradient_phase:
            for opt, state in zip(optimizers, resumed.optimizer_states):
                opt.load_state_dict(state)
        # A non-gradient phase keeps its collected state only in memory: restart it whole.
        first = done_steps if phase.is_gradient_phase else phase_start
        for step in range(max(first, phase_start), phase_end):
            if cancel.cancelled:
                _save(model, optimizers, options, step if phase.is_gradient_phase else phase_start, phase)
                yield Progress("cancelled", step, total, message=_saved_message(options, step))
                return
            epoch, index = divmod(step - phase_start, per_epoch)
            torch.manual_seed(options.seed * 1_000_003 + step)
            batch = images.batch(epoch, index, batch_size, options.seed).to(device)
            losses = _train_step(model, phase, optimizers, batch, step)
            if (step + 1) % options.checkpoint_every == 0 and phase.is_gradient_phase:
                _save(model, optimizers, options, step + 1, phase)
            extra = model.training_stats() if (step + 1) % STATS_EVERY == 0 else {}
            observed = model.observability() if phase.is_gradient_phase else {}
            if observed:
                extra = {**extra, "observability": observed}
            yield Progress(phase.name, step + 1, total, losses, clock.eta(step + 1), extra=extra)
        if not phase.is_gradient_phase:
            with torch.no_grad():
                model.finalize(phase.name)
        _save(model, optimizers, options, phase_end, phase)
        done_steps = phase_start = phase_end
    _restore_trainable(model)
    if model.calibrates_perceptual:
        yield from calibrate_perceptual(model, images, options, device, cancel)
    model.eval()
    yield Progress("done", total, total, message=f"trained {total} steps")


PERCEPTUAL_STATS = "perceptual_stats"  # the progress phase of the per-layer perceptual calibration


def calibrate_perceptual(model: AnomalyModel, images: TrainingImages, options: TrainOptions,
                         device: torch.device, cancel: CancelToken) -> Iterator[Progress]:
    """One pass over the training images (the seeded batches of epoch 0) measuring the perceptual layers'
    statistics on normal images (`AnomalyModel.calibrate_perceptual`). Cheap to redo, so a resumed training
    redoes it whole; a cancel leaves the model uncalibrated."""
    batch_size = model.config.batch_size
    steps = images.steps_per_epoch(batch_size)
    batches = (images.batch(0, index, batch_size, options.seed).to(device) for index in range(steps))
    for done in model.calibrate_perceptual(batches):
        if cancel.cancelled:
            model.perceptual_stats = torch.zeros(0, 2, 1, 1, device=device)
            yield Progress("cancelled", done, steps, message="cancelled while calibrating the perceptual distance")
            return
        yield Progress(PERCEPTUAL_STATS, done, steps)


def seconds_per_step(model: AnomalyModel, images: TrainingImages, phase: Phase, steps: int = 3,
                     device: str = "auto") -> float:
    """Wall-clock seconds of one training step of `phase` (best of `steps`, after a warm-up), measured on a
    copy so `model` is untouched. Lets a time budget become whole epochs for methods whose later phases
    must not be cut off by a deadline."""
    probe = copy.deepcopy(model).to(pick_device(device))
    optimizers = _prepare_phase(probe, phase)
    batch = images.batch(0, 0, probe.config.batch_size, 0).to(pick_device(device))
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        _train_step(probe, phase, optimizers, batch, step)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def _train_step(model: AnomalyModel, phase: Phase, optimizers: list[torch.optim.Optimizer],
                batch: torch.Tensor, step: int) -> dict[str, float]:
    if not phase.is_gradient_phase:
        with torch.no_grad():
            model.collect(batch, phase.name)
        return {}
    losses = model.training_losses(batch, phase.name)
    values = _checked(losses, phase, step)
    for i, (spec, opt) in enumerate(zip(phase.optimizers, optimizers)):
        loss = losses[spec.loss]
        if callable(loss):  # computed now: it must see the weights the earlier optimizers just updated
            late = loss()
            values.update(_checked(late, phase, step))
            loss = late[spec.loss]
        opt.zero_grad(set_to_none=True)
        loss.backward(retain_graph=i < len(optimizers) - 1)
        opt.step()
    return values


def _checked(losses: dict[str, Any], phase: Phase, step: int) -> dict[str, float]:
    """The float value of every tensor loss; TrainingDiverged when one is NaN or infinite."""
    values = {name: float(value.detach()) for name, value in losses.items() if torch.is_tensor(value)}
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise TrainingDiverged(
            f"loss {', '.join(bad)} became {values[bad[0]]} at step {step + 1} (phase '{phase.name}'); "
            "training stopped. Try a lower learning rate, or check the images for constant/corrupt content.")
    return values


def _modules(model: nn.Module, names: tuple[str, ...]) -> list[nn.Module]:
    missing = [n for n in names if not isinstance(getattr(model, n, None), nn.Module)]
    if missing:
        raise ValueError(f"{type(model).__name__} has no sub-module {', '.join(missing)}")
    return [getattr(model, n) for n in names] if names else [model]


def _prepare_phase(model: AnomalyModel, phase: Phase) -> list[torch.optim.Optimizer]:
    _restore_trainable(model)
    model.train()
    for module in _modules(model, phase.frozen) if phase.frozen else []:
        module.eval()
        module.requires_grad_(False)
    optimizers = []
    for spec in phase.optimizers:
        params = [p for m in _modules(model, spec.modules) for p in m.parameters() if p.requires_grad]
        optimizers.append(torch.optim.Adam(params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay))
    return optimizers


def _restore_trainable(model: nn.Module) -> None:
    model.requires_grad_(True)


def _resume_point(model: AnomalyModel, options: TrainOptions) -> Checkpoint | None:
    path = options.checkpoint_path
    if not (options.resume and path and Path(path).exists()):
        return None
    ckpt = load_checkpoint(Path(path))
    # Compare as the checkpoint stores it: JSON turns the config's tuples into lists.
    if ckpt.method != model.method or ckpt.config != json.loads(json.dumps(model.config.to_dict())):
        raise ValueError(f"checkpoint {path} belongs to a different training ({ckpt.method} with other "
                         "settings); delete it or choose another output to start afresh")
    if ckpt.seed != options.seed:
        raise ValueError(f"checkpoint {path} was trained with seed {ckpt.seed}, not {options.seed}")
    model.prepare_for_state(ckpt.model_state)
    model.load_state_dict(ckpt.model_state)
    return ckpt


def _save(model: AnomalyModel, optimizers: list[torch.optim.Optimizer], options: TrainOptions,
          step: int, phase: Phase) -> None:
    if options.checkpoint_path is None:
        return
    save_checkpoint(Path(options.checkpoint_path), Checkpoint(
        model.method, model.config.to_dict(), step, phase.name, options.seed,
        model.state_dict(), [opt.state_dict() for opt in optimizers]))


def _saved_message(options: TrainOptions, step: int) -> str:
    where = f"; checkpoint kept at {options.checkpoint_path}" if options.checkpoint_path else ""
    return f"cancelled after step {step}{where}"

