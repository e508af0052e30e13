"""Memory modules for memory-augmented autoencoders (TrustMAE, MemAE; later CMA-AE).

A memory is a learned M x Z matrix of feature prototypes. Every location of an encoder feature map
(N,Z,h,w) is replaced by a convex combination of memory items, so the decoder can only draw on what the
memory stores (normal patterns), not on what the encoder saw.

Two addressing schemes, each as small pure functions plus one `nn.Module`:

- TrustMAE (Tan et al.): softmax over negative Euclidean distance (Eq. 1-2), sparse top-k with
  renormalization (Eq. 3), a margin loss between the closest and second-closest item (Eq. 4) and the
  trust-region loss (Eq. 5-6).
- MemAE (Gong et al. 2019): softmax over cosine similarity, hard shrinkage with threshold lambda and
  renormalization, and an entropy loss on the addressing weights.

Addressing temperature (MemAE, CMA-AE). Gong's softmax has none: cosine logits lie in [-1, 1], so even a
feature that sits exactly on one item and is orthogonal to the other N - 1 gives that item only
e / (e + N - 1) of the weight (2 % at N = 128): the read is an average of the memory, not a lookup, and
shrinkage at 1/N leaves about half the slots alive. `address_temperature` tau divides the logits;
tau = 1 is the literal softmax. The default (0 = the rule) is tau = 1 / ln(N - 1), the temperature at
which that feature reads its item with weight 1/2: the softmax can then select, and shrinkage removes what
it did not select. `addressing` "dot" uses the plain dot product z . m_i as logits (its rule: tau =
sqrt(Z), the scaled dot product of attention, which keeps the logits of unit-scale features of size one).

Trust threshold (TrustMAE delta2). The printed delta2 = 20 is a distance on the paper's feature scale,
which depends on the encoder, Z and the stage of training; at DefectLab's fast preset the fixed value
pushes no feature at all at initialisation. `trust_threshold_rule` "quantile" (TrustMAE's default here)
takes delta2 from the data as delta1 is: the `trust_quantile` quantile of this batch's distances to the
closest item, so the farthest 1 - q of the locations are always ignored and those between their item's
delta1 and that quantile are pushed; "fixed" uses `trust_threshold` as printed.

Both modules count how much addressing weight each slot received while training (`memory_usage`), which the
GUI plots and which shows slots that were never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-12


# --- TrustMAE (Euclidean, sparse top-k, margin, trust region) ---------------------------------------------

def pairwise_distances(z: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ||z_p - M_i||_2, (P,Z) x (M,Z) -> (P,M).

    Expanded as |z|^2 + |m|^2 - 2 z.m (one matrix product instead of a (P,M,Z) tensor); the clamp keeps the
    square root's gradient finite when a feature sits exactly on an item.
    """
    squared = (z * z).sum(1, keepdim=True) + (memory * memory).sum(1)[None, :] - 2.0 * z @ memory.t()
    return squared.clamp_min(_EPS).sqrt()


def distance_addressing(distances: torch.Tensor) -> torch.Tensor:
    """Eq. 2: w_i = exp(-d_i) / sum_j exp(-d_j). (P,M) -> (P,M), rows sum to 1."""
    return torch.softmax(-distances, dim=1)


def top_k_addressing(weights: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 3: keep the k largest weights of each row, zero the rest, renormalize to sum 1. (P,M) -> (P,M).

    Gradients flow through the kept weights only.
    """
    k = min(k, weights.shape[1])
    kept, index = weights.topk(k, dim=1)
    return torch.zeros_like(weights).scatter(1, index, kept / kept.sum(1, keepdim=True).clamp_min(_EPS))


def margin_loss(distances: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Eq. 4: mean over locations of [d(z, M^(1)) - d(z, M^(2)) + margin]_+, from (P,M) distances.

    It pushes the second-closest item at least `margin` farther than the closest, so the top-k items of a
    feature are not redundant copies of each other.
    """
    closest_two = distances.topk(2, dim=1, largest=False).values  # (P,2), ascending
    return F.relu(closest_two[:, 0] - closest_two[:, 1] + margin).mean()


def trust_region_weights(distances: torch.Tensor, trust_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 per location, with d = distance to the closest item: r = +1 if d <= delta1, else -1 if
    d <= delta2, else 0.

    delta1 is adaptive and per memory item: the mean distance of this batch's features whose closest item it
    is (the paper's "average distance between M_i and the features that retrieve M_i"). It is a threshold,
    so it carries no gradient. delta2 = `trust_threshold`. As in Eq. 5, the first case wins: a feature
    within delta1 is pulled even when delta1 > delta2 (early in training, when every feature is still far
    from the randomly initialized memory; the paper's delta2 = 0 likewise still pulls).
    Returns (r (P,), delta1 per location (P,)).
    """
    nearest_distance, nearest = distances.detach().min(dim=1)  # (P,), (P,)
    slots = distances.shape[1]
    total = distances.new_zeros(slots).index_add_(0, nearest, nearest_distance)
    count = torch.bincount(nearest, minlength=slots).to(distances.dtype)
    delta1 = (total / count.clamp_min(1.0))[nearest]
    pushed = -(nearest_distance <= trust_threshold).to(distances.dtype)  # -1 within delta2, else 0
    r = torch.where(nearest_distance <= delta1, torch.ones_like(pushed), pushed)
    return r, delta1


TRUST_RULES = ("quantile", "fixed")


@torch.no_grad()
def trust_threshold_for(distances: torch.Tensor, rule: str, fixed: float, quantile: float) -> float:
    """delta2 for one batch of (P,M) distances: `fixed` for rule "fixed", else the `quantile` quantile of
    each location's distance to its closest item. A threshold: no gradient."""
    if rule not in TRUST_RULES:
        raise ValueError(f"unknown trust_threshold_rule {rule!r}; choose one of {', '.join(TRUST_RULES)}")
    if rule == "fixed":
        return float(fixed)
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"trust_quantile must be in (0, 1], got {quantile}")
    return float(torch.quantile(distances.detach().min(dim=1).values.float(), quantile))


def trust_region_loss(distances: torch.Tensor, trust_threshold: float) -> torch.Tensor:
    """Eq. 6: mean over locations of r(z, M^(1)) * ||z - M^(1)||_2, from (P,M) distances.

    Features inside the trust region pull their closest item towards them (and vice versa); features
    outside it, likely defects, push it away; features beyond both delta1 and `trust_threshold` are ignored
    so they are not pushed to infinity.
    """
    r, _ = trust_region_weights(distances, trust_threshold)
    return (r * distances.min(dim=1).values).mean()


@torch.no_grad()
def trust_region_fractions(distances: torch.Tensor, trust_threshold: float) -> dict[str, float]:
    """Shares of locations the trust region pulls (r = +1), pushes (r = -1) and ignores (r = 0), from (P,M)
    distances; they sum to 1. A push share that stays 0 means delta2 never lets the memory move away."""
    r, delta1 = trust_region_weights(distances, trust_threshold)
    return {"trust_pulled": float((r > 0).float().mean()), "trust_pushed": float((r < 0).float().mean()),
            "trust_ignored": float((r == 0).float().mean()), "trust_delta1": float(delta1.mean()),
            "trust_delta2": float(trust_threshold)}


@torch.no_grad()
def addressing_stats(weights: torch.Tensor) -> dict[str, float]:
    """Sparsity of (P,M) addressing weights over one batch.

    memory_slots_used: slots with a nonzero weight at some location (they survived top-k or shrinkage);
    memory_top_weight: mean over locations of the largest weight (1 = each location reads one slot);
    memory_nonzero: mean number of nonzero weights per location.
    """
    nonzero = weights > 0
    return {"memory_slots_used": float(nonzero.any(0).sum()),
            "memory_top_weight": float(weights.max(1).values.mean()),
            "memory_nonzero": float(nonzero.sum(1).float().mean())}


# --- MemAE (cosine similarity, hard shrinkage, entropy) ---------------------------------------------------

ADDRESSINGS = ("cosine", "dot")


def address_temperature_for(addressing: str, temperature: float, slots: int, dim: int) -> float:
    """The softmax temperature tau actually used: `temperature` when > 0, else the rule of `addressing`
    (cosine: 1 / ln(slots - 1); dot: sqrt(dim)). See the module docstring."""
    if addressing not in ADDRESSINGS:
        raise ValueError(f"unknown addressing {addressing!r}; choose one of {', '.join(ADDRESSINGS)}")
    if temperature > 0:
        return float(temperature)
    return 1.0 / math.log(max(slots - 1, 2)) if addressing == "cosine" else math.sqrt(dim)


def cosine_addressing(z: torch.Tensor, memory: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """MemAE: w_i = softmax_i(cos(z, m_i) / tau). (P,Z) x (M,Z) -> (P,M), rows sum to 1; tau = 1 is Gong's."""
    similarity = F.normalize(z, dim=1) @ F.normalize(memory, dim=1).t()
    return torch.softmax(similarity / temperature, dim=1)


def dot_addressing(z: torch.Tensor, memory: torch.Tensor, temperature: float) -> torch.Tensor:
    """w_i = softmax_i(z . m_i / tau). (P,Z) x (M,Z) -> (P,M), rows sum to 1."""
    return torch.softmax(z @ memory.t() / temperature, dim=1)


def hard_shrinkage(weights: torch.Tensor, threshold: float, eps: float = _EPS) -> torch.Tensor:
    """MemAE: w^ = max(w - lambda, 0) * w / (|w - lambda| + eps), then L1-renormalized per row. (P,M) -> (P,M).

    The continuous form of "keep w if w > lambda else 0" that Gong et al. use so gradients still flow.
    """
    shrunk = F.relu(weights - threshold) * weights / ((weights - threshold).abs() + eps)
    return shrunk / shrunk.sum(1, keepdim=True).clamp_min(eps)


def entropy_loss(weights: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """MemAE: mean over locations of -sum_i w_i log w_i, from (P,M) weights; low = sparse addressing."""
    return -(weights * torch.log(weights + eps)).sum(1).mean()


# --- Modules ----------------------------------------------------------------------------------------------

@dataclass
class MemoryReadout:
    """What a memory returns for a feature map (N,Z,h,w), with P = N*h*w locations.

    features: the memory's reconstruction of the map, (N,Z,h,w).
    weights: the (sparse) addressing weights, (P,M).
    distances: Euclidean distances to every item, (P,M), or None for memories that do not compute them.
    """

    features: torch.Tensor
    weights: torch.Tensor
    distances: torch.Tensor | None = None


def _locations(feature_map: torch.Tensor) -> torch.Tensor:
    """(N,Z,h,w) -> (N*h*w, Z): one row per spatial location."""
    return feature_map.permute(0, 2, 3, 1).reshape(-1, feature_map.shape[1])


def _as_map(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N*h*w, Z) -> (N,Z,h,w), the inverse of `_locations`."""
    n, _, h, w = like.shape
    return rows.reshape(n, h, w, -1).permute(0, 3, 1, 2)


class _Memory(nn.Module):
    """M x Z prototypes plus the running per-slot addressing mass (persistent, so a model file keeps it)."""

    def __init__(self, slots: int, dim: int) -> None:
        super().__init__()
        if slots < 2 or dim < 1:
            raise ValueError(f"a memory needs at least 2 slots and 1 dimension, got {slots} x {dim}")
        bound = 1.0 / math.sqrt(dim)  # MemAE's initialization
        self.items = nn.Parameter(torch.empty(slots, dim).uniform_(-bound, bound))
        self.register_buffer("usage", torch.zeros(slots))

    @property
    def slots(self) -> int:
        return self.items.shape[0]

    @torch.no_grad()
    def _record_usage(self, weights: torch.Tensor) -> None:
        # Only while training: inference must not change the model.
        if self.training:
            self.usage += weights.detach().sum(0)

    def memory_usage(self) -> list[float]:
        """Share of all addressing weight each slot received during training so far, M floats summing to 1
        (all zeros before the first training step)."""
        total = float(self.usage.sum())
        return [float(u) / total if total > 0 else 0.0 for u in self.usage]

    def reset_usage(self) -> None:
        self.usage.zero_()


class TrustMemory(_Memory):
    """TrustMAE's memory: Euclidean softmax addressing (Eq. 2) made sparse by top-k (Eq. 3)."""

    def __init__(self, slots: int, dim: int, top_k: int = 3) -> None:
        super().__init__(slots, dim)
        if not 1 <= top_k <= slots:
            raise ValueError(f"top_k must be between 1 and the number of slots ({slots}), got {top_k}")
        self.top_k = top_k

    def forward(self, feature_map: torch.Tensor) -> MemoryReadout:
        """(N,Z,h,w) -> readout with features (N,Z,h,w) = w^ M per location (Eq. 1)."""
        z = _locations(feature_map)
        distances = pairwise_distances(z, self.items)
        weights = top_k_addressing(distance_addressing(distances), self.top_k)
        self._record_usage(weights)
        return MemoryReadout(_as_map(weights @ self.items, feature_map), weights, distances)


class ShrinkageMemory(_Memory):
    """MemAE's memory: softmax addressing (`addressing` "cosine" as Gong's, or "dot") at temperature
    `temperature` (0: the rule of `address_temperature_for`), made sparse by hard shrinkage at
    `shrink_threshold`."""

    def __init__(self, slots: int, dim: int, shrink_threshold: float, addressing: str = "cosine",
                 temperature: float = 1.0) -> None:
        super().__init__(slots, dim)
        if not 0.0 <= shrink_threshold < 1.0:
            raise ValueError(f"shrink_threshold must be in [0, 1), got {shrink_threshold}")
        if temperature < 0:
            raise ValueError(f"address_temperature must be 0 (the rule) or positive, got {temperature}")
        self.shrink_threshold = shrink_threshold
        self.addressing = addressing
        self.temperature = address_temperature_for(addressing, temperature, slots, dim)

    def forward(self, feature_map: torch.Tensor) -> MemoryReadout:
        """(N,Z,h,w) -> readout with features (N,Z,h,w) = w^ M per location."""
        z = _locations(feature_map)
        if self.addressing == "cosine":
            weights = cosine_addressing(z, self.items, self.temperature)
        else:
            weights = dot_addressing(z, self.items, self.temperature)
        if self.shrink_threshold > 0:
            weights = hard_shrinkage(weights, self.shrink_threshold)
        self._record_usage(weights)
        return MemoryReadout(_as_map(weights @ self.items, feature_map), weights)
