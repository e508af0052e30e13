"""The scorer registry: anomaly maps computed after the fact from an input and its reconstruction, on top
of the maps a method returns itself. One registry serves training (the maps a model file carries), inference,
the CLI, the workbench and the benchmark.

A method's config lists the scorers it adds (`MethodConfig.scorers`, e.g. ("perceptual", "msfr")); the
model's `score` runs `predict` and then `extra_maps`. Every scorer is fn(model, x, recon) -> (N,1,H,W) with
x and recon (N,C,H,W) in [0,1]; higher is more anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from core.registry import Registry
from core.scoring.msfr import msfr_map, supports_msfr
from core.scoring.perceptual import perceptual_mse_map

ScorerFn = Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Scorer:
    name: str
    description: str
    fn: ScorerFn
    applies: Callable[[Any], bool] = lambda model: True  # beyond needing a reconstruction


_SCORERS: Registry[Scorer] = Registry("scorer")


def register_scorer(scorer: Scorer) -> Scorer:
    return _SCORERS.add(scorer.name, scorer)


def scorer_names() -> list[str]:
    return _SCORERS.names()


def get_scorer(name: str) -> Scorer:
    return _SCORERS.get(name)


def applicable_scorers(model: Any) -> list[str]:
    """Registered scorers that can score this model: it reconstructs, and the scorer's own condition holds
    (MSFR needs the model's encoder features)."""
    if not model.reconstructs:
        return []
    return [name for name in _SCORERS.names() if name not in model.map_names and _SCORERS.get(name).applies(model)]


def check_scorers(model: Any, names: tuple[str, ...]) -> None:
    """A clear error for a scorer that is unknown or cannot score this model."""
    usable = applicable_scorers(model)
    for name in names:
        get_scorer(name)
        if name not in usable and name not in model.map_names:
            raise ValueError(f"scorer {name!r} cannot score a {model.method} model; it can use "
                             f"{', '.join(usable) or 'none'}")


@torch.no_grad()
def extra_maps(model: Any, names: tuple[str, ...], x: torch.Tensor, recon: torch.Tensor | None,
               own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The maps of `names` that the model did not return itself. `own` is predict's maps: a scorer reuses
    one of them when it can (perceptual x MSE reuses a perceptual map)."""
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name in own:
            continue
        if recon is None:
            raise ValueError(f"scorer {name!r} needs a reconstruction; {model.method} returns none")
        known = {**own, **out}
        if name == "perceptual_mse" and "perceptual" in known:
            out[name] = perceptual_mse_map(x, recon, perceptual=known["perceptual"])
        else:
            out[name] = get_scorer(name).fn(model, x, recon)
    return out


# The model's own border rule and per-layer calibration (AnomalyModel.perceptual_distance).
register_scorer(Scorer("perceptual", "spatial perceptual distance between input and reconstruction",
                       lambda model, x, recon: model.perceptual_distance(x, recon)))
register_scorer(Scorer("perceptual_mse", "perceptual distance x per-pixel MSE (TrustMAE's map)",
                       lambda model, x, recon: perceptual_mse_map(x, recon,
                                                                  perceptual=model.perceptual_distance(x, recon))))
register_scorer(Scorer("msfr", "multi-scale feature residual on the model's own encoder (CMA-AE Eq. 14)",
                       lambda model, x, recon: msfr_map(model, x, recon), applies=supports_msfr))
