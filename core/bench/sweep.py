"""The noise sweep's training sets, as TrustMAE Sec. 3.2 defines them.

A contamination level is the share of the TRAINING set that is defective: d / (n + d) for n normal and d
defective training images. The defective images come from the labelled test set, in one seeded order, so
every level's moved images are a prefix of the next level's (nested), and the test images that no level
moves are a test set common to all levels.

Declared rule when the defective pool is too small: at most `max_moved_share` (default one half, as in
TrustMAE's noisy setting, which re-samples half of the defect images into training) of the defective test
images may be moved, so the common test set keeps the other half. A level that would need more keeps that
cap and drops normal images instead (a prefix of one seeded order of the normals), as the paper does for its
30-40 % levels. `achieved` is the share actually reached; tables are labelled with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.index import ImageRecord


@dataclass(frozen=True)
class SweepLevel:
    target: float  # the declared share of defective training images
    normals: tuple[ImageRecord, ...]  # the normal training images kept
    moved: tuple[ImageRecord, ...]  # the defective test images moved into training

    @property
    def achieved(self) -> float:
        total = len(self.normals) + len(self.moved)
        return len(self.moved) / total if total else 0.0

    @property
    def train(self) -> list[ImageRecord]:
        return list(self.normals) + list(self.moved)


def plan_levels(normals: list[ImageRecord], test: list[ImageRecord], targets: tuple[float, ...], seed: int,
                max_moved_share: float = 0.5) -> list[SweepLevel]:
    """One SweepLevel per target share in [0, 1); see the module docstring for the rule."""
    if any(not 0 <= t < 1 for t in targets):
        raise ValueError(f"contamination levels must be shares in [0, 1), got {targets}")
    defective = [r for r in test if r.label not in ("good", "unknown")]
    defect_order = [defective[i] for i in np.random.default_rng([seed, 31337]).permutation(len(defective))]
    normal_order = [normals[i] for i in np.random.default_rng([seed, 4242]).permutation(len(normals))]
    cap = int(max_moved_share * len(defective))
    levels = []
    for target in targets:
        n, d = len(normals), int(round(target * len(normals) / (1 - target)))
        if d > cap:  # not enough defective images: keep the cap and fewer normals
            d = cap
            n = min(len(normals), int(round(d * (1 - target) / target))) if d > 0 else n
        kept = sorted(normal_order[:n], key=lambda r: r.path.as_posix()) if n < len(normals) else normals
        moved = sorted(defect_order[:d], key=lambda r: r.path.as_posix())
        levels.append(SweepLevel(target, tuple(kept), tuple(moved)))
    return levels


def common_test(test: list[ImageRecord], levels: list[SweepLevel]) -> list[ImageRecord]:
    """The test images that no level moves into training (every level is scored on them)."""
    moved = {r.path for level in levels for r in level.moved}
    return [r for r in test if r.path not in moved]


def remaining_test(test: list[ImageRecord], level: SweepLevel) -> list[ImageRecord]:
    """The test images of one level: all but the ones it moved into training."""
    moved = {r.path for r in level.moved}
    return [r for r in test if r.path not in moved]
