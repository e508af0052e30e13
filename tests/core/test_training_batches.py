"""Seeded training batches: flips always keep an orientation-fixed texture's orientation, 90-degree
rotations only when asked for."""

from __future__ import annotations

import numpy as np
import torch

from core.data.preprocess import ResizePolicy
from core.features.loss import FeatureLoss, padded_features, reflect_margin
from core.training.batches import TrainingImages


def _striped(n: int = 8, size: int = 16) -> list[np.ndarray]:
    """Horizontal stripes (rows alternate 0 / 255), each image with its own marker pixel."""
    images = []
    for i in range(n):
        image = np.zeros((1, size, size), dtype=np.uint8)
        image[:, ::2, :] = 255
        image[0, 1, 1 + i] = 128
        images.append(image)
    return images


def _horizontal(batch: torch.Tensor) -> list[bool]:
    """Whether each image's stripes still run horizontally: every row is (nearly) constant."""
    return [bool((image[0].std(dim=1) < 0.2).all()) for image in batch]


def test_flips_keep_the_stripes_horizontal_and_rotations_are_opt_in() -> None:
    policy = ResizePolicy("resize", 16)
    flips = TrainingImages(_striped(), policy, augment=True)
    rotating = TrainingImages(_striped(), policy, augment=True, rotate90=True)
    flipped = torch.cat([flips.batch(e, 0, 8, seed=0) for e in range(4)])
    turned = torch.cat([rotating.batch(e, 0, 8, seed=0) for e in range(4)])
    assert all(_horizontal(flipped))
    assert not all(_horizontal(turned)) and any(_horizontal(turned))
    # Same random draws either way: the images drawn with no turn are the identical flipped crops.
    same = [torch.equal(a, b) for a, b in zip(flipped, turned)]
    assert 0 < sum(same) < len(same)
    # Without augment nothing changes.
    plain = TrainingImages(_striped(), policy, augment=False, rotate90=True).batch(0, 0, 8, seed=0)
    assert all(_horizontal(plain))


def test_reflect_margin_is_whole_cells_within_the_image() -> None:
    assert reflect_margin((128, 128), 16) == 32  # two cells of the deepest layer
    assert reflect_margin((20, 128), 16) == 16  # one cell is all a reflection of 20 px can give
    assert reflect_margin((12, 12), 16) == 0


def test_padded_features_cover_exactly_the_image() -> None:
    """A stand-in network of two average-pool stages (strides 2 and 4): the cropped features of the padded
    image have the shapes of the plain ones and equal them away from the border."""
    def net(x: torch.Tensor) -> list[torch.Tensor]:
        a = torch.nn.functional.avg_pool2d(x, 2)
        return [a, torch.nn.functional.avg_pool2d(a, 2)]

    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    plain, padded = net(x), padded_features(net, x, [2, 4])
    assert [f.shape for f in padded] == [f.shape for f in plain]
    assert all(torch.allclose(p, q) for p, q in zip(plain, padded))  # no padding inside this stand-in


def test_feature_loss_with_border_is_zero_for_identical_images_and_positive_otherwise() -> None:
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    loss = FeatureLoss("efficientnet", border=True)
    assert float(loss(x, x)) == 0.0
    assert float(loss(x, x.flip(-1))) > 0.0
