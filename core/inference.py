"""Running a trained model on images of any size: resize or tile, predict, stitch back to full resolution;
and, for methods whose inference is iterative, the intermediate steps of one image (`image_steps`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from core.data.preprocess import ResizePolicy, extract_tiles, stitch, tile_grid, to_full_resolution, working_image
from core.models.base import AnomalyModel, Step
from core.progress import CancelToken, EtaClock, Progress
from core.scoring.pooling import pool_map

TILE_BATCH = 8  # tiles (or whole images in resize mode) per forward pass


@dataclass
class ImageResult:
    """One scored image. Maps are (H,W) float32 at the image's own resolution."""

    path: Path
    label: str
    score: float  # the model's default map, pooled
    verdict: str  # "defective" | "good" (score >= image threshold)
    scores: dict[str, float] = field(default_factory=dict)  # every map, pooled
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    reconstruction: np.ndarray | None = None  # (C,H,W) in [0,1], or None
    mask: np.ndarray | None = None  # (H,W) bool ground truth, when known


def match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(C,H,W) -> (channels,H,W): grayscale replicated to RGB, RGB reduced to luma for grayscale models."""
    if image.shape[0] == channels:
        return image
    if channels == 3:
        return np.repeat(image[:1], 3, axis=0)
    luma = cv2.cvtColor(np.ascontiguousarray(image.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY)
    return luma[None]


@dataclass(frozen=True)
class _Layout:
    """Where an image's tiles lie: working-image size, tile corners, original size."""

    work_hw: tuple[int, int]
    corners: list[tuple[int, int]]
    full_hw: tuple[int, int]

    def full(self, tiles: np.ndarray, policy: ResizePolicy) -> np.ndarray:
        """Tile values (T,C,S,S) -> (C,H,W) at the image's own resolution."""
        return to_full_resolution(stitch(tiles, self.corners, *self.work_hw), policy, self.full_hw)


def _tiles(model: AnomalyModel, image: np.ndarray, policy: ResizePolicy) -> tuple[_Layout, np.ndarray]:
    """An image (C,H,W) in [0,1] -> its layout and tiles (T,C',S,S) float32 at the model's channels."""
    work = working_image(match_channels(image, model.config.in_channels), policy)
    corners = tile_grid(work.shape[1], work.shape[2], policy.size, policy.overlap)
    tiles = extract_tiles(work, corners, policy.size).astype(np.float32, copy=False)
    return _Layout(tuple(work.shape[1:]), corners, tuple(image.shape[1:])), tiles


def infer_images(model: AnomalyModel, images: list[np.ndarray], policy: ResizePolicy,
                 device: torch.device) -> list[tuple[dict[str, np.ndarray], np.ndarray | None]]:
    """Full-resolution maps {name: (H,W)} and reconstruction (C,H,W) or None for each image (C,H,W) in [0,1].

    Resize mode treats the whole working image as one tile, so both modes share one path.
    """
    layouts = []
    tiles = []
    for image in images:
        layout, image_tiles = _tiles(model, image, policy)
        layouts.append(layout)
        tiles.append(image_tiles)
    all_tiles = np.concatenate(tiles)
    maps_out: dict[str, list[np.ndarray]] = {}
    recon_out: list[np.ndarray] = []
    model.eval()
    for start in range(0, len(all_tiles), TILE_BATCH):
        batch = torch.from_numpy(all_tiles[start:start + TILE_BATCH]).to(device)
        maps, recon = model.score(batch)
        for name, value in maps.items():
            maps_out.setdefault(name, []).append(value.float().cpu().numpy())
        if recon is not None:
            recon_out.append(recon.float().clamp(0, 1).cpu().numpy())
    stacked = {name: np.concatenate(parts) for name, parts in maps_out.items()}
    recon_all = np.concatenate(recon_out) if recon_out else None
    results = []
    offset = 0
    for layout in layouts:
        part = slice(offset, offset + len(layout.corners))
        offset += len(layout.corners)
        full_maps = {name: layout.full(values[part], policy)[0] for name, values in stacked.items()}
        recon = layout.full(recon_all[part], policy) if recon_all is not None else None
        results.append((full_maps, recon))
    return results


@dataclass
class StepImage:
    """One step of an iterative inference of one image, at the image's own resolution: `mask` (H,W) in
    [0,1] (the share of the step's pixels generated afresh; tiles that overlap average), `reconstruction`
    (C,H,W) in [0,1] and `maps` {name: (H,W)}; `index` from 0, `total` the most steps there can be."""

    name: str
    index: int
    total: int
    mask: np.ndarray
    reconstruction: np.ndarray
    maps: dict[str, np.ndarray]


def image_steps(model: AnomalyModel, image: np.ndarray, policy: ResizePolicy, device: torch.device,
                cancel: CancelToken | None = None) -> Iterator[Progress]:
    """The intermediate steps of `model`'s inference of one image (C,H,W) in [0,1] (`AnomalyModel.steps`).

    One Progress per step (phase "step", result = its StepImage, with an ETA), honouring `cancel` between
    steps (Cancelled); the last value (phase "done") has the list of StepImage. All tiles of the image go
    through the model together, TILE_BATCH at a time; a group of tiles that stops early shows its last step
    in the later ones. A method without intermediate steps is a ValueError.
    """
    cancel = cancel or CancelToken()
    layout, tiles = _tiles(model, image, policy)
    model.eval()
    groups = []
    for start in range(0, len(tiles), TILE_BATCH):
        steps = model.steps(torch.from_numpy(tiles[start:start + TILE_BATCH]).to(device))
        if steps is None:
            raise ValueError(f"{model.method} has no intermediate steps to show: its inference is one pass")
        groups.append(steps)
    current: list[Step | None] = [None] * len(groups)
    running = [True] * len(groups)
    out: list[StepImage] = []
    clock: EtaClock | None = None
    while True:
        cancel.raise_if_cancelled()
        for i, steps in enumerate(groups):
            if running[i]:
                step = next(steps, None)
                running[i] = step is not None
                current[i] = step if step is not None else current[i]
        if not any(running):
            break
        steps_now = [s for s in current if s is not None]
        lead = next(s for i, s in enumerate(current) if running[i] and s is not None)
        clock = clock or EtaClock(lead.total)
        out.append(_full_step(steps_now, lead, layout, policy))
        yield Progress("step", lead.index + 1, lead.total, eta_s=clock.eta(lead.index + 1),
                       message=lead.name, result=out[-1])
    yield Progress("done", len(out), len(out), message=f"{len(out)} steps", result=out)


def _full_step(groups: list[Step], lead: Step, layout: _Layout, policy: ResizePolicy) -> StepImage:
    """The steps of every tile group, stitched to the image's resolution; named after the `lead` group."""
    def full(values: list[torch.Tensor]) -> np.ndarray:
        return layout.full(torch.cat(values).float().cpu().numpy(), policy)

    maps = {name: full([g.maps[name] for g in groups])[0] for name in lead.maps}
    recon = full([g.reconstruction.clamp(0, 1) for g in groups])
    return StepImage(lead.name, lead.index, lead.total, full([g.mask for g in groups])[0], recon, maps)


def image_scores(maps: dict[str, np.ndarray], pooling: str) -> dict[str, float]:
    return {name: pool_map(value, pooling) for name, value in maps.items()}
