"""The one registry of methods: name -> spec. Duplicate names are rejected; unknown names list the known ones."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.registry import Registry

if TYPE_CHECKING:
    from core.models.base import AnomalyModel, MethodConfig

PRESETS = ("fast", "paper")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str  # one line shown in the GUI and `--help`
    config_cls: type[MethodConfig]
    model_cls: type[AnomalyModel]

    def config(self, preset: str = "fast", **overrides: Any) -> MethodConfig:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r} for {self.name}; choose one of {', '.join(PRESETS)}")
        base = getattr(self.config_cls, preset)()
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(base)})
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(base))
            raise ValueError(f"{self.name} has no setting {', '.join(unknown)}; its settings are: {known}")
        return dataclasses.replace(base, **overrides)


_METHODS: Registry[MethodSpec] = Registry("method")


def register(spec: MethodSpec) -> MethodSpec:
    return _METHODS.add(spec.name, spec)


def get_method(name: str) -> MethodSpec:
    _load_builtin_methods()
    return _METHODS.get(name)


def list_methods() -> list[MethodSpec]:
    _load_builtin_methods()
    return [_METHODS.get(name) for name in sorted(_METHODS.names())]


def build_model(name: str, preset: str = "fast", **overrides: Any) -> AnomalyModel:
    spec = get_method(name)
    return spec.model_cls(spec.config(preset, **overrides))


def build_from_config(name: str, config: dict[str, Any]) -> AnomalyModel:
    """Rebuild a model from a stored config dict (model files); unknown keys are an error."""
    spec = get_method(name)
    return spec.model_cls(spec.config_cls.from_dict(config))


def _load_builtin_methods() -> None:
    import core.models  # noqa: F401, PLC0415 - importing the package registers the built-in methods
