"""Memory modules (core.models.memory): every equation on small hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from core.models.memory import (ShrinkageMemory, TrustMemory, address_temperature_for, addressing_stats,
                                cosine_addressing, distance_addressing, dot_addressing, entropy_loss, hard_shrinkage,
                                margin_loss, pairwise_distances, top_k_addressing, trust_region_fractions,
                                trust_region_loss, trust_region_weights, trust_threshold_for)


def test_pairwise_distances_by_hand() -> None:
    # z1 = (0,0), z2 = (3,4); items (0,0), (3,0), (0,4):
    #   z1: 0, 3, 4        z2: 5 (3-4-5 triangle), 4, 3
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    items = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    expected = torch.tensor([[0.0, 3.0, 4.0], [5.0, 4.0, 3.0]])
    assert torch.allclose(pairwise_distances(z, items), expected, atol=1e-5)


def test_pairwise_distances_gradient_finite_at_zero_distance() -> None:
    z = torch.zeros(1, 2, requires_grad=True)
    pairwise_distances(z, torch.zeros(2, 2)).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_distance_addressing_matches_hand_softmax() -> None:
    # Eq. 2 for distances (0, 3, 4): exp(0) = 1, exp(-3) = 0.049787, exp(-4) = 0.018316, sum = 1.068103
    #   w = (1 / 1.068103, 0.049787 / 1.068103, 0.018316 / 1.068103) = (0.936240, 0.046613, 0.017148)
    w = distance_addressing(torch.tensor([[0.0, 3.0, 4.0]]))
    assert torch.allclose(w, torch.tensor([[0.936240, 0.046613, 0.017148]]), atol=1e-5)
    assert torch.allclose(w.sum(1), torch.ones(1))


def test_top_k_keeps_k_largest_and_renormalizes() -> None:
    # Eq. 3, k = 3 on (0.1, 0.4, 0.2, 0.3): keep 0.4, 0.3, 0.2 (sum 0.9) -> (0, 4/9, 2/9, 3/9)
    w = top_k_addressing(torch.tensor([[0.1, 0.4, 0.2, 0.3]]), 3)
    assert torch.allclose(w, torch.tensor([[0.0, 4 / 9, 2 / 9, 3 / 9]]))


def test_top_k_rows_sum_to_one_with_exactly_k_nonzeros() -> None:
    torch.manual_seed(0)
    w = top_k_addressing(distance_addressing(torch.rand(10, 8) * 5), 3)
    assert torch.allclose(w.sum(1), torch.ones(10))
    assert ((w > 0).sum(1) == 3).all()


def test_margin_loss_by_hand() -> None:
    # Eq. 4 per location, closest two distances:
    #   (1, 3): [1 - 3 + 1]+ = [-1]+ = 0       (2, 2.5): [2 - 2.5 + 1]+ = 0.5      mean = 0.25
    distances = torch.tensor([[5.0, 1.0, 3.0], [2.5, 9.0, 2.0]])
    assert margin_loss(distances) == pytest.approx(0.25)


def _trust_distances() -> torch.Tensor:
    # 5 locations, 2 items, delta2 = 20.
    #   item 0 is closest for rows 0-2 with d = 1, 3, 5  -> delta1(item 0) = (1 + 3 + 5) / 3 = 3
    #   item 1 is closest for rows 3-4 with d = 10, 30   -> delta1(item 1) = (10 + 30) / 2 = 20
    return torch.tensor([[1.0, 50.0], [3.0, 50.0], [5.0, 50.0], [50.0, 10.0], [50.0, 30.0]])


def test_trust_region_weights_by_hand() -> None:
    # r: d=1 <= 3 -> +1; d=3 <= 3 -> +1; 3 < d=5 <= 20 -> -1; d=10 <= 20 (delta1) -> +1; d=30 > 20 and > 20 -> 0
    r, delta1 = trust_region_weights(_trust_distances(), trust_threshold=20.0)
    assert r.tolist() == [1.0, 1.0, -1.0, 1.0, 0.0]
    assert delta1.tolist() == [3.0, 3.0, 3.0, 20.0, 20.0]


def test_trust_region_loss_by_hand() -> None:
    # Eq. 6: mean of r * d = (1*1 + 1*3 - 1*5 + 1*10 + 0*30) / 5 = 9 / 5 = 1.8
    assert trust_region_loss(_trust_distances(), 20.0) == pytest.approx(1.8)


def test_features_beyond_trust_threshold_contribute_nothing() -> None:
    distances = _trust_distances().requires_grad_(True)
    trust_region_loss(distances, 20.0).backward()
    # d/dd of mean(r * d) is r / 5 on each location's closest item, 0 elsewhere; row 4 (d = 30) gets 0.
    expected = torch.tensor([[0.2, 0.0], [0.2, 0.0], [-0.2, 0.0], [0.0, 0.2], [0.0, 0.0]])
    assert torch.allclose(distances.grad, expected)
    # Moving the far feature even farther does not change the loss of the others... nor its own (it is 0):
    # delta1(item 1) becomes (10 + 40) / 2 = 25, row 3 stays +1, row 4 (40 > 25, > 20) stays 0.
    farther = _trust_distances()
    farther[4, 1] = 40.0
    assert trust_region_loss(farther, 20.0) == pytest.approx(1.8)


def test_trust_region_pulls_within_delta1_even_beyond_delta2() -> None:
    # Early training: every feature is far from the memory. delta1 = (25 + 27) / 2 = 26 > delta2 = 20.
    #   d=25 <= 26 -> +1 (Eq. 5's first case wins); d=27 > 26 and > 20 -> 0.  loss = (25 + 0) / 2 = 12.5
    distances = torch.tensor([[25.0, 50.0], [27.0, 50.0]])
    assert trust_region_weights(distances, 20.0)[0].tolist() == [1.0, 0.0]
    assert trust_region_loss(distances, 20.0) == pytest.approx(12.5)


def test_trust_memory_reads_convex_combination_and_records_usage() -> None:
    memory = TrustMemory(slots=4, dim=2, top_k=3)
    with torch.no_grad():
        memory.items.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    feature_map = torch.tensor([[[[0.0, 1.0]], [[0.0, 0.0]]]])  # (N=1, Z=2, h=1, w=2): z = (0,0) and (1,0)
    memory.eval()
    readout = memory(feature_map)
    assert readout.features.shape == (1, 2, 1, 2)
    assert readout.weights.shape == (2, 4) and readout.distances.shape == (2, 4)
    assert ((readout.weights > 0).sum(1) == 3).all()
    assert readout.weights[:, 3].tolist() == [0.0, 0.0]  # the far item (5,5) is never in the top 3
    z_hat = readout.weights @ memory.items  # Eq. 1, rows in location order (0,0), (1,0)
    assert torch.allclose(readout.features[0, :, 0, :].t(), z_hat)
    assert memory.memory_usage() == [0.0] * 4  # inference does not count
    memory.train()
    memory(feature_map)
    usage = memory.memory_usage()
    assert len(usage) == 4 and sum(usage) == pytest.approx(1.0) and usage[3] == 0.0
    assert usage == pytest.approx((readout.weights.sum(0) / 2).tolist(), abs=1e-6)


def test_trust_memory_rejects_bad_top_k() -> None:
    with pytest.raises(ValueError, match="top_k"):
        TrustMemory(slots=4, dim=2, top_k=5)


def test_cosine_addressing_by_hand() -> None:
    # z = (2,0) against items (1,0), (0,3), (-1,0): cosines 1, 0, -1 (scale does not matter)
    #   softmax: e = 2.718282, 1, 0.367879; sum 4.086161 -> 0.665241, 0.244728, 0.090031
    w = cosine_addressing(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]))
    assert torch.allclose(w, torch.tensor([[0.665241, 0.244728, 0.090031]]), atol=1e-5)


def test_hard_shrinkage_by_hand() -> None:
    # lambda = 0.1 on (0.5, 0.3, 0.15, 0.05): max(w - l, 0) * w / |w - l| = w where w > l, else 0
    #   -> (0.5, 0.3, 0.15, 0), sum 0.95 -> (0.526316, 0.315789, 0.157895, 0)
    w = hard_shrinkage(torch.tensor([[0.5, 0.3, 0.15, 0.05]]), 0.1)
    assert torch.allclose(w, torch.tensor([[0.526316, 0.315789, 0.157895, 0.0]]), atol=1e-5)


def test_entropy_loss_by_hand() -> None:
    # (0.5, 0.5, 0): -2 * 0.5 ln 0.5 = ln 2 = 0.693147; (1, 0, 0): 0; mean = 0.346574
    w = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert entropy_loss(w) == pytest.approx(math.log(2) / 2, abs=1e-6)


def test_shrinkage_memory_shapes_sparsity_and_usage() -> None:
    torch.manual_seed(0)
    memory = ShrinkageMemory(slots=16, dim=8, shrink_threshold=1 / 16)
    memory.train()
    readout = memory(torch.randn(2, 8, 3, 3))
    assert readout.features.shape == (2, 8, 3, 3) and readout.weights.shape == (18, 16)
    assert readout.distances is None
    assert torch.allclose(readout.weights.sum(1), torch.ones(18), atol=1e-5)
    assert (readout.weights == 0).any()  # weights below 1/M were shrunk away
    assert sum(memory.memory_usage()) == pytest.approx(1.0)


def test_address_temperature_rule_and_literal_value() -> None:
    # Cosine rule: tau = 1 / ln(N - 1); N = 101 -> 1 / ln(100) = 0.217147. Dot rule: sqrt(Z) = 8 for Z = 64.
    assert address_temperature_for("cosine", 0.0, 101, 64) == pytest.approx(1 / math.log(100))
    assert address_temperature_for("dot", 0.0, 101, 64) == pytest.approx(8.0)
    assert address_temperature_for("cosine", 1.0, 101, 64) == 1.0  # Gong's literal softmax
    with pytest.raises(ValueError, match="addressing"):
        address_temperature_for("euclid", 0.0, 8, 8)


def test_cosine_addressing_with_temperature_by_hand() -> None:
    # Cosines (1, 0, -1) at tau = 0.5 -> logits (2, 0, -2): e^2 = 7.389056, 1, e^-2 = 0.135335; sum 8.524391
    #   -> 0.866813, 0.117311, 0.015876
    w = cosine_addressing(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]), 0.5)
    assert torch.allclose(w, torch.tensor([[0.866813, 0.117311, 0.015876]]), atol=1e-5)


def test_dot_addressing_by_hand() -> None:
    # z = (1, 2) . items (1, 0), (0, 1), (1, 1) = 1, 2, 3; tau = 1 -> softmax(1, 2, 3) = 0.090031, 0.244728, 0.665241
    w = dot_addressing(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 1.0)
    assert torch.allclose(w, torch.tensor([[0.090031, 0.244728, 0.665241]]), atol=1e-5)


def test_rule_temperature_turns_the_cosine_average_into_a_lookup() -> None:
    """A feature on one of N = 100 mutually orthogonal items: the literal softmax gives that item
    e / (e + 99) = 2.7 % of the weight; at the rule's temperature it gets 99 / (99 + 99) = 1/2."""
    items = torch.eye(100)
    z = items[:1] * 3.0
    assert cosine_addressing(z, items, 1.0)[0, 0] == pytest.approx(math.e / (math.e + 99), rel=1e-5)
    rule = address_temperature_for("cosine", 0.0, 100, 100)
    assert cosine_addressing(z, items, rule)[0, 0] == pytest.approx(0.5, rel=1e-5)


def test_rule_temperature_leaves_fewer_slots_after_shrinkage() -> None:
    """Random features and items (N = 100 > Z = 16): the literal softmax with shrinkage at 1/N reads about
    half the memory at every location with a top weight of ~3 %; the rule's temperature reads fewer slots
    with a larger top weight."""
    g = torch.Generator().manual_seed(0)
    items, z = torch.randn(100, 16, generator=g), torch.randn(50, 16, generator=g)
    literal = addressing_stats(hard_shrinkage(cosine_addressing(z, items, 1.0), 1 / 100))
    rule = addressing_stats(hard_shrinkage(cosine_addressing(z, items, address_temperature_for("cosine", 0.0, 100, 16)),
                                           1 / 100))
    assert literal["memory_nonzero"] > 40 and literal["memory_top_weight"] < 0.05
    assert rule["memory_nonzero"] < 0.75 * literal["memory_nonzero"]
    assert rule["memory_top_weight"] > 2 * literal["memory_top_weight"]


def test_shrinkage_memory_uses_its_addressing_and_temperature() -> None:
    memory = ShrinkageMemory(slots=3, dim=2, shrink_threshold=0.0, addressing="dot", temperature=1.0)
    with torch.no_grad():
        memory.items.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    readout = memory(torch.tensor([1.0, 2.0]).view(1, 2, 1, 1))
    assert torch.allclose(readout.weights, torch.tensor([[0.090031, 0.244728, 0.665241]]), atol=1e-5)
    assert ShrinkageMemory(slots=101, dim=4, shrink_threshold=0.01).temperature == 1.0
    assert ShrinkageMemory(slots=101, dim=4, shrink_threshold=0.01, temperature=0.0).temperature == pytest.approx(
        1 / math.log(100))
    with pytest.raises(ValueError, match="address_temperature"):
        ShrinkageMemory(slots=4, dim=2, shrink_threshold=0.1, temperature=-1.0)


def test_trust_threshold_rules_by_hand() -> None:
    # Distances to the closest item of the five locations of _trust_distances: 1, 3, 5, 10, 30. Their 0.75
    # quantile (linear interpolation, position 0.75 * 4 = 3) is 10; "fixed" returns the given value.
    distances = _trust_distances()
    assert trust_threshold_for(distances, "quantile", 20.0, 0.75) == pytest.approx(10.0)
    assert trust_threshold_for(distances, "fixed", 20.0, 0.75) == 20.0
    # With delta2 = 10: rows 0, 1 pulled (<= delta1 3), row 2 pushed (3 < 5 <= 10), row 3 pulled (10 <= 20 =
    # delta1 of item 1), row 4 ignored.
    r, _ = trust_region_weights(distances, trust_threshold_for(distances, "quantile", 20.0, 0.75))
    assert r.tolist() == [1.0, 1.0, -1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="trust_threshold_rule"):
        trust_threshold_for(distances, "median", 20.0, 0.5)


def test_quantile_rule_pushes_where_the_fixed_threshold_cannot() -> None:
    """Distances far above the printed delta2 (every feature is far from a fresh memory): the fixed value
    pushes nothing; the quantile rule pushes the locations between their item's mean and the quantile and
    ignores the farthest share."""
    d = torch.linspace(40.0, 60.0, 101)[:, None].repeat(1, 2)  # one item closest for all, delta1 = 50
    fixed = trust_region_fractions(d, trust_threshold_for(d, "fixed", 20.0, 0.95))
    assert fixed["trust_pushed"] == 0.0
    by_rule = trust_region_fractions(d, trust_threshold_for(d, "quantile", 20.0, 0.95))
    assert by_rule["trust_pulled"] == pytest.approx(51 / 101)  # 40 .. 50
    assert by_rule["trust_pushed"] == pytest.approx(45 / 101)  # 50.2 .. 59
    assert by_rule["trust_ignored"] == pytest.approx(5 / 101)  # 59.2 .. 60
    assert by_rule["trust_delta2"] == pytest.approx(59.0)
