"""Artificial anomalies: exact masks, seeding, channels; timing is measured, not asserted."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.synth.anomalies import MASK_DOWNSCALE, ANOMALIES, TextureBank, cutpaste, draem, gaaga, make_anomaly
from core.synth.noise import perlin_mask

BANK = TextureBank(size=128, count=3, seed=0)


def _image(channels: int, size: int = 128) -> np.ndarray:
    return np.random.default_rng(5).uniform(0.2, 0.8, (channels, size, size)).astype(np.float32)


@pytest.mark.parametrize("kind", list(ANOMALIES))
@pytest.mark.parametrize("channels", [1, 3])
def test_mask_is_exactly_the_changed_region(kind: str, channels: int) -> None:
    image = _image(channels)
    for seed in range(5):
        out, mask = ANOMALIES[kind](image, np.random.default_rng(seed), BANK)
        assert out.shape == image.shape and out.dtype == np.float32
        assert mask.shape == image.shape[1:] and mask.dtype == bool and mask.any()
        assert np.array_equal(out[:, ~mask], image[:, ~mask])  # outside: bit-identical
        changed = np.abs(out - image).max(axis=0) > 0
        # Inside: (almost) every pixel changed; equality only by chance of the random content.
        assert changed[mask].mean() > 0.95
        assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("kind", list(ANOMALIES))
def test_anomalies_are_seeded(kind: str) -> None:
    image = _image(3)
    a = ANOMALIES[kind](image, np.random.default_rng(3), BANK)
    b = ANOMALIES[kind](image, np.random.default_rng(3), BANK)
    c = ANOMALIES[kind](image, np.random.default_rng(4), BANK)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_gaaga_uses_other_normals_and_mixed_dispatch() -> None:
    image, other = _image(1), np.zeros((3, 96, 96), np.float32)
    out, mask = gaaga(image, np.random.default_rng(0), BANK, normals=[other])
    assert np.array_equal(out[:, ~mask], image[:, ~mask])
    kinds = {make_anomaly(image, np.random.default_rng(s), "mixed", BANK)[2] for s in range(20)}
    assert kinds == set(ANOMALIES)
    with pytest.raises(ValueError, match="unknown anomaly"):
        make_anomaly(image, np.random.default_rng(0), "scribble", BANK)


def test_perlin_mask_never_empty_on_tiny_images() -> None:
    for seed in range(10):
        assert perlin_mask((9, 13), np.random.default_rng(seed), downscale=MASK_DOWNSCALE).any()


def test_speed_is_reported_for_256px(capsys: pytest.CaptureFixture[str]) -> None:
    image, bank = _image(3, 256), TextureBank(size=256, count=2)
    rng = np.random.default_rng(0)
    timings = {}
    for name, fn in (("draem", draem), ("gaaga", gaaga), ("cutpaste", cutpaste)):
        start = time.perf_counter()
        for _ in range(20):
            fn(image, rng, bank)
        timings[name] = 1000 * (time.perf_counter() - start) / 20
    with capsys.disabled():
        print("\nanomaly ms per 256x256 RGB image: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))


def test_training_stores_synthetic_f1max_thresholds_beside_the_quantile_rule(tiny_demo, tmp_path) -> None:
    """Label-free calibration: the normal-quantile thresholds stay, synthetic F1-max ones are added."""
    from core.modelfile import read_meta
    from core.training.engine import TrainOptions
    from core.workflow import TrainRequest, train_model

    out = tmp_path / "m.safetensors"
    request = TrainRequest(tiny_demo, "ae-l2", "fast", {"epochs": 1, "batch_size": 4}, out, val_fraction=0.25,
                           options=TrainOptions(device="cpu"))
    for _ in train_model(request):
        pass
    thresholds = read_meta(out).thresholds
    for name in ("l2", "ssim", "l1"):
        kinds = thresholds[name]
        assert {"image", "pixel", "image_synthetic", "pixel_synthetic"} <= set(kinds)
        assert "percentile" in kinds["image"]["how"]
        assert kinds["image_synthetic"]["how"].startswith("label-free synthetic validation: image F1-max")
        assert "3 held-out normal images + 3 synthetic defects" in kinds["pixel_synthetic"]["how"]
