"""Scorers the benchmark can put on top of any method: the method's own maps plus post-hoc maps computed
from the input and its reconstruction (perceptual distance, TrustMAE's perceptual x MSE, CMA-AE's MSFR)."""

from __future__ import annotations

import time
from typing import Callable

import torch

from core.models.base import AnomalyModel
from core.scoring.msfr import msfr_map, supports_msfr
from core.scoring.perceptual import perceptual_map

# name -> fn(model, x (N,C,S,S), recon (N,C,S,S)) -> (N,1,S,S)
ExtraScorer = Callable[[AnomalyModel, torch.Tensor, torch.Tensor], torch.Tensor]


def _perceptual(model: AnomalyModel, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    return perceptual_map(x, recon)


def _perceptual_mse(model: AnomalyModel, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    return perceptual_map(x, recon) * ((x - recon) ** 2).mean(dim=1, keepdim=True)


def _msfr(model: AnomalyModel, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    return msfr_map(model, x, recon)


EXTRA_SCORERS: dict[str, ExtraScorer] = {"perceptual": _perceptual, "perceptual_mse": _perceptual_mse,
                                         "msfr": _msfr}


def applicable_scorers(model: AnomalyModel, wanted: tuple[str, ...] | None = None) -> list[str]:
    """The model's own maps plus every extra scorer that applies (reconstruction methods only; MSFR only
    with an encoder). `wanted` restricts the list (unknown names are an error)."""
    probe = torch.rand(1, model.config.in_channels, model.config.input_size, model.config.input_size)
    _, recon = model.eval().predict(probe)
    names = list(model.map_names)
    if recon is not None:
        names += [n for n in EXTRA_SCORERS if n not in names and (n != "msfr" or supports_msfr(model))]
    if wanted is None:
        return names
    unknown = [w for w in wanted if w not in names and w not in EXTRA_SCORERS]
    if unknown:
        raise ValueError(f"unknown scorer(s) {', '.join(unknown)}; for {model.method} choose from {', '.join(names)}")
    return [n for n in names if n in wanted]


class ScoredModel(AnomalyModel):
    """Wraps a trained model so `predict` returns its maps plus the extra scorers' maps, all (N,1,S,S).
    It looks like the wrapped method to inference and calibration (same config, channels, pooling)."""

    def __init__(self, inner: AnomalyModel, scorers: list[str]) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.scorers = scorers
        self.method = inner.method
        self.map_names = tuple(scorers)  # type: ignore[misc]  # instance attribute on purpose
        self.default_map = inner.default_map if inner.default_map in scorers else scorers[0]  # type: ignore[misc]

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        maps, recon = self.inner.predict(batch)
        out = {name: maps[name] for name in self.scorers if name in maps}
        for name in self.scorers:
            if name == "perceptual_mse" and "perceptual" in out:  # reuse the perceptual map: half the cost
                out[name] = out["perceptual"] * ((batch - recon) ** 2).mean(dim=1, keepdim=True)
            elif name not in out:
                out[name] = EXTRA_SCORERS[name](self.inner, batch, recon)
        return out, recon


@torch.no_grad()
def time_scorers(model: AnomalyModel, scorers: list[str], batch_size: int, repeats: int = 3) -> dict[str, float]:
    """Milliseconds per image at `batch_size` for each scorer: the method's forward pass plus, for extra
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
    _, recon = model.predict(batch)
    out: dict[str, float] = {}
    for name in scorers:
        if name in model.map_names or recon is None:
            out[name] = base
        elif name == "perceptual_mse" and "perceptual" in out:
            out[name] = out["perceptual"]  # ScoredModel reuses the perceptual map; the product is negligible
        else:
            out[name] = base + best(lambda n=name: EXTRA_SCORERS[n](model, batch, recon))
    return out
