"""Pixel maps, SSIM and poolings on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.scoring import POOLINGS, gaussian_window, l1_map, l2_map, pool_map, pool_scores, ssim_map, ssim_residual_map


def test_l1_l2_known_values() -> None:
    x = torch.zeros(1, 3, 4, 4)
    y = x.clone()
    y[0, 0, 1, 2] = 0.6  # one channel of one pixel differs
    assert l1_map(x, y).shape == (1, 1, 4, 4)
    assert torch.isclose(l1_map(x, y)[0, 0, 1, 2], torch.tensor(0.2))
    assert torch.isclose(l2_map(x, y)[0, 0, 1, 2], torch.tensor(0.36 / 3))
    assert l1_map(x, y).sum() == l1_map(x, y)[0, 0, 1, 2]


@pytest.mark.parametrize("channels", [1, 3])
def test_identical_images_give_zero_maps(channels: int) -> None:
    x = torch.rand(2, channels, 32, 32, generator=torch.Generator().manual_seed(0))
    for fn in (l1_map, l2_map, ssim_residual_map):
        out = fn(x, x.clone())
        assert out.shape == (2, 1, 32, 32)
        assert out.abs().max() < 1e-5


def test_gaussian_window_is_normalized_11x11() -> None:
    w = gaussian_window()
    assert w.shape == (1, 1, 11, 11)
    assert torch.isclose(w.sum(), torch.tensor(1.0))
    assert w[0, 0, 5, 5] == w.max()


def test_ssim_constant_images_matches_formula() -> None:
    """Two flat images a and b: variances vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1) everywhere."""
    a, b = 0.2, 0.6
    c1 = (0.01 * 1.0) ** 2
    x, y = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    # float32 rounding of E[x^2] - E[x]^2 (divided by C2 = 9e-4) limits the agreement to ~1e-4
    assert torch.allclose(ssim_map(x, y), torch.full((1, 1, 16, 16), expected), atol=1e-3)


def test_ssim_rgb_is_channel_mean() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 3, 24, 24, generator=g), torch.rand(1, 3, 24, 24, generator=g)
    per_channel = torch.cat([ssim_map(x[:, i:i + 1], y[:, i:i + 1]) for i in range(3)], dim=1).mean(1, True)
    assert torch.allclose(ssim_map(x, y), per_channel, atol=1e-6)


def test_ssim_residual_is_high_where_structure_differs() -> None:
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[..., 20:30, 20:30] = 0.5
    r = ssim_residual_map(x, y)[0, 0]
    assert r[25, 25] > 0.5 and r[55, 55] < 1e-4


def test_poolings_known_values() -> None:
    m = torch.zeros(1, 1, 9, 9)
    m[0, 0, 4, 4] = 9.0
    assert pool_scores(m, "max").item() == 9.0
    assert pool_scores(m, "mean").item() == pytest.approx(9.0 / 81)
    # 3x3 mean filter: the hot pixel is spread over 9 pixels -> max 1.
    assert pool_scores(m, "max_smoothed", kernel=3).item() == pytest.approx(1.0)
    assert pool_map(m[0].numpy(), "max") == 9.0
    assert set(POOLINGS) == {"max", "mean", "max_smoothed", "max_smoothed_padded"}
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_scores(m, "median")


def test_smoothed_pooling_windows_stay_inside_the_map() -> None:
    # A hot pixel in the corner: a full 3x3 window inside the map covers it once -> 9 / 9 = 1. The padded
    # rule also centres a window on the corner, which averages only the 4 pixels inside -> 9 / 4.
    m = torch.zeros(1, 1, 9, 9)
    m[0, 0, 0, 0] = 9.0
    assert pool_scores(m, "max_smoothed", kernel=3).item() == pytest.approx(1.0)
    assert pool_scores(m, "max_smoothed_padded", kernel=3).item() == pytest.approx(9.0 / 4)
    # A map smaller than the kernel is one window: its mean.
    assert pool_scores(m[..., :2, :2], "max_smoothed", kernel=3).item() == pytest.approx(9.0 / 4)


def border_share_of_maxima(maps: torch.Tensor, ring: int) -> tuple[float, float]:
    """(share of maps (N,1,H,W) whose maximum lies within `ring` px of the border, that ring's share of
    the area). On maps of normal texture with no border excess the first is about the second or less."""
    edge = torch.ones(maps.shape[-2:], dtype=torch.bool)
    edge[ring:-ring, ring:-ring] = False
    at_edge = [bool(m[0][edge].max() > m[0][~edge].max()) for m in maps]
    return sum(at_edge) / len(at_edge), float(edge.float().mean())


def _stationary_pair(n: int = 12, size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """Stationary texture (N,1,S,S) and the same plus independent noise: nothing differs at the border."""
    g = torch.Generator().manual_seed(0)
    x = F.avg_pool2d(torch.rand(n, 1, size + 2, size + 2, generator=g), 3, stride=1) * 2 - 0.5
    return x, x + 0.03 * torch.randn(x.shape, generator=g)


def test_ssim_map_border_neutral_has_no_border_excess() -> None:
    x, y = _stationary_pair()
    neutral_share, area = border_share_of_maxima(1 - ssim_map(x, y), 5)
    padded_share, _ = border_share_of_maxima(1 - ssim_map(x, y, border="padded"), 5)
    assert neutral_share <= area < padded_share  # padded windows: fewer distinct pixels, noisier border
    # Inside, both rules agree; the neutral map keeps the input size.
    neutral, padded = ssim_map(x, y), ssim_map(x, y, border="padded")
    assert neutral.shape == padded.shape == (12, 1, 96, 96)
    assert torch.allclose(neutral[..., 5:-5, 5:-5], padded[..., 5:-5, 5:-5], atol=1e-5)
    with pytest.raises(ValueError, match="border"):
        ssim_map(x, y, border="zeros")


def test_max_smoothed_prefers_blobs_over_single_pixels() -> None:
    spike, blob = np.zeros((32, 32), np.float32), np.zeros((32, 32), np.float32)
    spike[5, 5] = 1.0
    blob[10:20, 10:20] = 0.5
    assert pool_map(spike, "max") > pool_map(blob, "max")
    assert pool_map(spike, "max_smoothed") < pool_map(blob, "max_smoothed")
