"""Running a trained model on images of any size: resize or tile, predict, stitch back to full resolution."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from core.data.preprocess import ResizePolicy, extract_tiles, stitch, tile_grid, to_full_resolution, working_image
from core.models.base import AnomalyModel
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


def infer_images(model: AnomalyModel, images: list[np.ndarray], policy: ResizePolicy,
                 device: torch.device) -> list[tuple[dict[str, np.ndarray], np.ndarray | None]]:
    """Full-resolution maps {name: (H,W)} and reconstruction (C,H,W) or None for each image (C,H,W) in [0,1].

    Resize mode treats the whole working image as one tile, so both modes share one path.
    """
    size = policy.size
    layouts = []
    tiles = []
    for image in images:
        work = working_image(match_channels(image, model.config.in_channels), policy)
        corners = tile_grid(work.shape[1], work.shape[2], size, policy.overlap)
        layouts.append((work.shape[1:], corners, image.shape[1:]))
        tiles.append(extract_tiles(work, corners, size))
    all_tiles = np.concatenate(tiles).astype(np.float32, copy=False)
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
    for (work_hw, corners, full_hw) in layouts:
        part = slice(offset, offset + len(corners))
        offset += len(corners)
        full_maps = {name: to_full_resolution(stitch(values[part], corners, *work_hw), policy, full_hw)[0]
                     for name, values in stacked.items()}
        recon = None
        if recon_all is not None:
            recon = to_full_resolution(stitch(recon_all[part], corners, *work_hw), policy, full_hw)
        results.append((full_maps, recon))
    return results


def image_scores(maps: dict[str, np.ndarray], pooling: str) -> dict[str, float]:
    return {name: pool_map(value, pooling) for name, value in maps.items()}
