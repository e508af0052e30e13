"""The network an ONNX file holds: a model's `score` (its own maps plus its post-hoc scorers) with the image
score pooled inside, as one `nn.Module` that torch.onnx can trace."""

from __future__ import annotations

import torch
from torch import nn

from core.errors import UserError
from core.models.base import AnomalyModel
from core.scoring.perceptual import built_networks
from core.scoring.pooling import pool_scores

SCORE_OUTPUT = "score"
INPUT_NAME = "images"


def map_output(name: str) -> str:
    """The graph output that carries map `name`."""
    return f"map_{name}"


def choose_maps(model: AnomalyModel, maps: list[str] | None = None, all_maps: bool = False,
                default_map: str | None = None) -> list[str]:
    """The maps to export, the default map first (the model's, or `default_map`): all of the model's maps,
    or the default one plus `maps`. A map the model does not have is a UserError listing the ones it has."""
    known = list(model.all_map_names)
    first = default_map or model.default_map
    wanted = known if all_maps else list(maps or [])
    unknown = [n for n in [first, *wanted] if n not in known]
    if unknown:
        raise UserError(f"{model.method} has no map {', '.join(repr(n) for n in dict.fromkeys(unknown))}; its maps "
                        f"are {', '.join(known)} (or use --all-maps)")
    return [first] + [n for n in dict.fromkeys(wanted) if n != first]


class ExportGraph(nn.Module):
    """images (N,C,S,S) in [0,1] -> (score (N,), map_<default> (N,1,S,S), map_<other> (N,1,S,S), ...).

    The score is the default map pooled with the model's pooling, per tile: inference on larger images pools
    the stitched full-resolution map instead (`core.inference`), as the PyTorch model does.
    """

    def __init__(self, model: AnomalyModel, maps: list[str]) -> None:
        super().__init__()
        self.model = model.eval()
        self.maps = maps
        # Shared networks that scorers build on first use (the perceptual distance) are built now, outside the
        # trace, and held here so their weights become constants of the graph.
        size = model.config.input_size
        model.score(torch.rand(1, model.config.in_channels, size, size))
        self.shared = nn.ModuleList(built_networks())

    @property
    def output_names(self) -> list[str]:
        return [SCORE_OUTPUT] + [map_output(n) for n in self.maps]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        maps, _ = self.model.score(images)
        default = maps[self.maps[0]]
        return (pool_scores(default, self.model.config.pooling), *(maps[n] for n in self.maps))
