"""Training images kept in memory at working resolution, and the seeded batches drawn from them.

A batch depends only on (seed, epoch, index), so a resumed training sees exactly the batches that an
uninterrupted one would have seen.
"""

from __future__ import annotations

import numpy as np
import torch

from core.data.preprocess import ResizePolicy


class TrainingImages:
    """uint8 images (C,H,W) at working resolution: all size x size in resize mode, any size >= size in
    tile mode (one random size x size crop per image per epoch). `augment`: random horizontal and vertical
    flips; `rotate90` (with `augment`): also random 90-degree rotations."""

    def __init__(self, images: list[np.ndarray], policy: ResizePolicy, augment: bool, rotate90: bool = False
                 ) -> None:
        if not images:
            raise ValueError("no training images")
        channels = {im.shape[0] for im in images}
        if len(channels) != 1:
            raise ValueError(f"training images mix channel counts {sorted(channels)}")
        self.images = images
        self.policy = policy
        self.augment = augment
        self.rotate90 = rotate90
        self.channels = channels.pop()

    def __len__(self) -> int:
        return len(self.images)

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(len(self.images) // batch_size, 1)

    def batch(self, epoch: int, index: int, batch_size: int, seed: int) -> torch.Tensor:
        """(N,C,S,S) float32 in [0,1], N = min(batch_size, number of images)."""
        order = np.random.default_rng([seed, epoch]).permutation(len(self.images))
        chosen = order[index * batch_size:(index + 1) * batch_size]
        rng = np.random.default_rng([seed, epoch, index, 1])
        size = self.policy.size
        crops = []
        for i in chosen:
            image = self.images[i]
            top = int(rng.integers(0, image.shape[1] - size + 1))
            left = int(rng.integers(0, image.shape[2] - size + 1))
            crop = image[:, top:top + size, left:left + size]
            if self.augment:
                crop = _augment(crop, rng, self.rotate90)
            crops.append(np.ascontiguousarray(crop))
        return torch.from_numpy(np.stack(crops)).float().div_(255.0)


def _augment(crop: np.ndarray, rng: np.random.Generator, rotate90: bool) -> np.ndarray:
    """Random flips, and 90-degree rotations when `rotate90`, (C,S,S) -> (C,S,S). The random draws are the
    same either way, so switching rotations off changes nothing else about a seeded batch."""
    if rng.random() < 0.5:
        crop = crop[:, :, ::-1]
    if rng.random() < 0.5:
        crop = crop[:, ::-1, :]
    turns = int(rng.integers(0, 4))
    return np.rot90(crop, turns, axes=(1, 2)) if rotate90 else crop
