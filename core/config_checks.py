"""Bounds and types of method settings, checked before any network is built or any image is read.

One check serves the command line (`--epochs 0`, `--set lr=nan`), the GUI and model files (whose stored
settings could have been edited or damaged): every refusal names the setting, its value and what to give.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from core.errors import UserError
from core.models.blocks import PADDING_MODES
from core.models.memory import ADDRESSINGS, TRUST_RULES
from core.scoring.perceptual import BORDERS, CALIBRATIONS
from core.scoring.pooling import POOLINGS
from core.scoring.scorers import scorer_names

# Settings that must be whole numbers of at least 1, with the largest value that still fits in memory.
_POSITIVE_INTS = {
    "epochs": 100_000, "batch_size": 4096, "input_size": 4096, "latent_dim": 8192, "base_channels": 4096,
    "memory_slots": 200_000, "patch_size": 4096, "max_bank": 100_000_000, "projection_dim": 8192,
    "top_k": 100_000, "neighbourhood": 31,
}
_SMALL_INTS = {"downsamplings": 10, "residual_blocks": 64, "patch_stride": 4096, "patches_per_image": 1_000_000}
_POSITIVE_FLOATS = {"lr", "tile_scale", "discriminator_lr", "discriminator_width"}
_FRACTIONS = {"tile_overlap": (0.0, 0.95), "stage1_share": (0.0, 1.0), "coreset_ratio": (0.0, 1.0),
              "trust_quantile": (0.01, 1.0)}
_CHOICES = {"resize_mode": ("resize", "tile"), "pooling": POOLINGS, "in_channels": (1, 3),
            "padding_mode": PADDING_MODES, "perceptual_calibration": CALIBRATIONS, "score_border": BORDERS,
            "addressing": ADDRESSINGS, "trust_threshold_rule": TRUST_RULES}
_MAX_NUMBER = 1e9  # any other number (loss weights, margins, ...) beyond this is a typo or damage


_NAME_LISTS = {"scorers": scorer_names}  # settings that list names, with where the valid names come from


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, tuple):
        return "a list of whole numbers"
    return "text"


def _type_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, tuple):
        return isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool)
                                                        for v in value)
    return isinstance(value, type(default))


def setting_problem(name: str, value: Any, default: Any) -> str | None:
    """Why `value` is not acceptable for setting `name` (whose preset value is `default`), or None."""
    if name in _NAME_LISTS:
        known = _NAME_LISTS[name]()
        if not isinstance(value, (tuple, list)) or any(v not in known for v in value):
            return f"must be a list of names from {', '.join(known)}"
        return None
    if not _type_ok(value, default):
        return f"must be {_kind(default)} (like {default!r})"
    if name in _CHOICES and value not in _CHOICES[name]:
        return "must be one of " + ", ".join(str(c) for c in _CHOICES[name])
    numbers = list(value) if isinstance(value, (tuple, list)) else [value]
    for number in numbers if not isinstance(value, (bool, str)) else []:
        if not math.isfinite(number):
            return "must be a finite number"
        if number < 0:
            return "must not be negative"
        if number > _MAX_NUMBER:
            return f"is implausibly large (above {_MAX_NUMBER:.0e})"
    if name in _POSITIVE_INTS and not 1 <= value <= _POSITIVE_INTS[name]:
        return f"must be between 1 and {_POSITIVE_INTS[name]}"
    if name in _SMALL_INTS and value > _SMALL_INTS[name]:
        return f"must be at most {_SMALL_INTS[name]}"
    if name in _POSITIVE_FLOATS and value <= 0:
        return "must be greater than 0"
    if name in _FRACTIONS:
        low, high = _FRACTIONS[name]
        if not low <= value <= high:
            return f"must be between {low} and {high}"
    return None


def check_config(config: Any, where: str = "setting ") -> None:
    """Raise UserError for the first setting of a method config out of its type or bounds.

    `where` prefixes the setting's name in the message ("setting " for options, "field config." for a
    model file)."""
    defaults = type(config)()
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        problem = setting_problem(f.name, value, default)
        if problem:
            raise UserError(f"{where}{f.name} = {value!r} {problem}")


def check_fraction(name: str, value: float, low: float, high: float, inclusive_low: bool = True) -> None:
    """Raise UserError unless `low <= value < high` (or `low < value` when not inclusive_low)."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value < high and (
        value >= low if inclusive_low else value > low)
    if not ok:
        bracket = "[" if inclusive_low else "("
        raise UserError(f"{name} = {value!r} must be in {bracket}{low}, {high}), e.g. 0.01 for 1 %")
