"""Which maps the benchmark scores for a trained model, and what each costs: the method's own maps plus
every post-hoc scorer of the registry (`core.scoring.scorers`) that applies."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import torch

from core.models.base import AnomalyModel
from core.scoring.scorers import applicable_scorers, extra_maps


def bench_scorers(model: AnomalyModel, wanted: tuple[str, ...] | None = None) -> list[str]:
    """The model's own maps plus every applicable registered scorer; `wanted` restricts the list (a name
    that is neither is an error)."""
    names = list(model.map_names) + applicable_scorers(model)
    if wanted is None:
        return names
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ValueError(f"unknown scorer(s) {', '.join(unknown)}; for {model.method} choose from {', '.join(names)}")
    return [n for n in names if n in wanted]


def with_scorers(model: AnomalyModel, names: list[str]) -> AnomalyModel:
    """The same trained model, its config adding the registered scorers among `names` to its own maps."""
    model.config = dataclasses.replace(model.config, scorers=tuple(n for n in names if n not in model.map_names))
    return model


@torch.no_grad()
def time_scorers(model: AnomalyModel, scorers: list[str], batch_size: int, repeats: int = 3) -> dict[str, float]:
    """Milliseconds per image at `batch_size` for each scorer: the method's forward pass plus, for post-hoc
    scorers, their own cost. Best of `repeats` after one warm-up (the CPU is shared; the minimum is the
    least disturbed run)."""
    c, s = model.config.in_channels, model.config.input_size
    batch = torch.rand(batch_size, c, s, s, generator=torch.Generator().manual_seed(0))
    model.eval()

    def best(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1000 * min(times) / batch_size

    base = best(lambda: model.predict(batch))
    own, recon = model.predict(batch)
    out: dict[str, float] = {}
    for name in scorers:
        if name in own or recon is None:
            out[name] = base
        else:
            # A scorer that reuses an earlier map (perceptual x MSE) is timed with what it reuses.
            out[name] = base + best(lambda n=name: extra_maps(model, (n,), batch, recon, own))
    return out


@torch.no_grad()
def time_steps(model: AnomalyModel, image: torch.Tensor) -> dict[str, float | int] | None:
    """An iterative inference (`model.steps`) timed step by step on one image (1,C,S,S) in [0,1], after one
    warm-up pass: the steps taken (an early stop ends sooner), the first step's and the mean later step's
    milliseconds, and the total. None for a method whose inference is one pass."""
    model.eval()
    if model.steps(image) is None:
        return None
    for _ in model.steps(image):  # warm-up
        pass
    times = []
    last = time.perf_counter()
    for _ in model.steps(image):
        now = time.perf_counter()
        times.append(1000 * (now - last))
        last = now
    later = times[1:]
    return {"steps": len(times), "first_step_ms": times[0],
            "ms_per_later_step": sum(later) / len(later) if later else None, "total_ms": sum(times)}
