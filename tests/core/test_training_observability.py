"""Model observability: addressing sparsity and trust-region shares by hand, their presence and ranges in
training progress, and the summary stored with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.preprocess import ResizePolicy
from core.models import build_model
from core.models.memory import addressing_stats, trust_region_fractions
from core.progress import Progress
from core.training.batches import TrainingImages
from core.training.engine import TrainOptions, fit
from core.training.observability import TrainingSummary

SMALL = {
    "trustmae": dict(input_size=32, downsamplings=2, base_channels=4, latent_dim=8, residual_blocks=1,
                     memory_slots=6, use_gan=False, weight_feature=0.0, trust_threshold=3.0),
    "memae": dict(input_size=32, downsamplings=2, base_channels=4, latent_dim=8, residual_blocks=1,
                  memory_slots=6, shrink_threshold=1 / 6),
    "cmaae": dict(input_size=32, patch_size=16, base_channels=4, latent_dim=8, memory_slots=6),
}


def test_addressing_stats_by_hand() -> None:
    # Location 1 reads two slots half-half, location 2 reads slot 0 alone; slots 2 and 3 are never read.
    weights = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert addressing_stats(weights) == {"memory_slots_used": 2.0, "memory_top_weight": 0.75, "memory_nonzero": 1.5}


def test_trust_region_fractions_by_hand() -> None:
    # All four locations retrieve slot 0 at distances 1, 3, 5.5, 9.5: delta1 = 19 / 4 = 4.75. delta2 = 6:
    # 1 and 3 are within delta1 (pulled), 5.5 is within delta2 only (pushed), 9.5 is beyond both (ignored).
    distances = torch.tensor([[1.0, 20.0], [3.0, 20.0], [5.5, 20.0], [9.5, 20.0]])
    assert trust_region_fractions(distances, 6.0) == {"trust_pulled": 0.5, "trust_pushed": 0.25,
                                                      "trust_ignored": 0.25, "trust_delta1": 4.75,
                                                      "trust_delta2": 6.0}


def _train(method: str) -> list[Progress]:
    model = build_model(method, "fast", batch_size=2, epochs=2, **SMALL[method])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (1, 32, 32), dtype=np.uint8) for _ in range(4)]
    data = TrainingImages(images, ResizePolicy("resize", 32), augment=False)
    return [p for p in fit(model, data, TrainOptions(device="cpu")) if p.losses]


@pytest.mark.parametrize("method", sorted(SMALL))
def test_memory_methods_report_observability_in_range(method: str) -> None:
    steps = _train(method)
    slots = SMALL[method]["memory_slots"]
    for progress in steps:
        observed = progress.extra["observability"]
        assert 1 <= observed["memory_slots_used"] <= slots
        assert 0 < observed["memory_top_weight"] <= 1 + 1e-6
        assert 1 <= observed["memory_nonzero"] <= slots
        weighted = {k: v for k, v in observed.items() if k.startswith("weighted_")}
        # Every term is a non-negative loss, except the trust term: Eq. 6 counts pushed features (r = -1)
        # negatively.
        assert weighted and all(v >= 0 for k, v in weighted.items() if k != "weighted_trust")
        if method == "trustmae":
            shares = [observed[k] for k in ("trust_pulled", "trust_pushed", "trust_ignored")]
            assert all(0 <= s <= 1 for s in shares) and sum(shares) == pytest.approx(1.0)
            assert observed["memory_nonzero"] <= 3  # top-k, k = 3
            # The weighted terms add up to the minimized total.
            assert sum(weighted.values()) == pytest.approx(progress.losses["total"], rel=1e-4)


def test_summary_keeps_means_of_the_last_window() -> None:
    summary = TrainingSummary(window=2)
    for step, (loss, top) in enumerate([(9.0, 0.1), (2.0, 0.5), (4.0, 0.7)], start=1):
        summary.add(Progress("train", step, 3, {"total": loss}, extra={"observability": {"memory_top_weight": top}}))
    summary.add(Progress("done", 3, 3))  # no losses: skipped
    assert summary.summary() == {"train": {"steps": 2, "losses": {"total": 3.0},
                                           "observability": {"memory_top_weight": 0.6}}}


def test_cmaae_summary_has_both_stages() -> None:
    summary = TrainingSummary(window=2)
    for progress in _train("cmaae"):
        summary.add(progress)
    out = summary.summary()
    assert set(out) == {"stage1", "stage2"}
    for phase in out.values():
        assert phase["steps"] == 2 and {"total", "l1", "entropy"} <= set(phase["losses"])
        assert 1 <= phase["observability"]["memory_slots_used"] <= 6
