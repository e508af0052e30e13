"""NDP-Net's reference-based attention module (RBAM, Luo et al. Sec. III-C, Eqs. 3-8): every feature patch
of the input is rebuilt from non-overlapping feature patches of one defect-free reference image (RBFRM, at
patch sizes K = 2 and 4), and a selective-kernel gate (FFM) mixes the two rebuilt maps with the input.

Softmax temperature (Eq. 4). The paper's softmax has none: with cosine logits in [-1, 1] and 64-1024
reference patches that gives nearly uniform weights, so every patch would become about the mean reference
patch, which contradicts the textures its Fig. 3(c) keeps. RBAM is "inspired by contextual attention",
whose softmax scale is 10; `temperature` multiplies the logits, 10 by default, and 1 gives the literal Eq. 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6  # in the patch norms of Eq. 3


def reference_repair(features: torch.Tensor, reference: torch.Tensor, patch: int, temperature: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """RBFRM (Eqs. 3-5). features (N,C,H,W), reference (1,C,H',W'), H, W, H', W' multiples of `patch` ->
    (repaired (N,C,H,W), attention (N,P,Q)): each of the P input patches becomes the softmax(temperature *
    cosine)-weighted sum of the Q reference patches; the attention rows sum to 1."""
    n, c, h, w = features.shape
    if h % patch or w % patch or reference.shape[-2] % patch or reference.shape[-1] % patch:
        raise ValueError(f"RBFRM needs feature sides divisible by K = {patch}, got {h}x{w} and reference "
                         f"{tuple(reference.shape[-2:])}")
    queries = F.unfold(features, patch, stride=patch)  # (N, C*K*K, P)
    bank = F.unfold(reference, patch, stride=patch)[0]  # (C*K*K, Q)
    similarity = torch.einsum("ndp,dq->npq", F.normalize(queries, dim=1, eps=EPS),
                              F.normalize(bank, dim=0, eps=EPS))  # Eq. 3
    attention = torch.softmax(temperature * similarity, dim=-1)  # Eq. 4, scaled
    rebuilt = torch.einsum("npq,dq->ndp", attention, bank)  # Eq. 5
    return F.fold(rebuilt, (h, w), patch, stride=patch), attention


class FeatureFusion(nn.Module):
    """FFM (Eqs. 6-8): F_U = F_ad + sum of the rebuilt maps -> m x m conv to `squeeze` channels (+ BN + ReLU,
    as in SKNet) -> one m x m conv per branch gives per-channel logits; a softmax across the branches weighs
    them. `branches` counts the input and the rebuilt maps (the paper: 3, the input and K = 2 and 4).
    Inputs (N,C,H,W) maps -> (N,C,H,W), plus the gates (N,B,C,H,W) that sum to 1 over dim 1."""

    def __init__(self, channels: int, squeeze: int = 64, kernel: int = 5, branches: int = 3) -> None:
        super().__init__()
        pad = kernel // 2
        self.branches = branches
        self.squeeze = nn.Sequential(nn.Conv2d(channels, squeeze, kernel, 1, pad, bias=False),
                                     nn.BatchNorm2d(squeeze), nn.ReLU(inplace=True))
        # One conv with B*C outputs is the paper's per-branch m x m convs side by side.
        self.logits = nn.Conv2d(squeeze, branches * channels, kernel, 1, pad)

    def gates(self, ad: torch.Tensor, *repaired: torch.Tensor) -> torch.Tensor:
        """(N,B,C,H,W): the weights of (rebuilt maps, largest K first, then the input), softmax over B (Eq. 7).
        `repaired` are the rebuilt maps in increasing K."""
        n, c, h, w = ad.shape
        if len(repaired) + 1 != self.branches:
            raise ValueError(f"FFM built for {self.branches} branches got {len(repaired) + 1}")
        logits = self.logits(self.squeeze(ad + sum(repaired)))  # Eq. 6, then the convs
        return torch.softmax(logits.view(n, self.branches, c, h, w), dim=1)

    def forward(self, ad: torch.Tensor, *repaired: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.gates(ad, *repaired)
        branches = (*reversed(repaired), ad)
        return sum(gates[:, i] * b for i, b in enumerate(branches)), gates  # Eq. 8


class ReferenceAttention(nn.Module):
    """RBAM on one encoder level: RBFRM at each patch size of `patches` (the paper's 2 and 4; one size for the
    K ablations), then FFM. (N,C,H,W) features and (1,C,H,W) reference features -> (N,C,H,W) F_out. `last`
    keeps what the last call saw (mean top attention weight per K, mean gate per branch) for the training
    observability."""

    def __init__(self, channels: int, temperature: float, patches: tuple[int, ...] = (2, 4),
                 squeeze: int = 64, kernel: int = 5) -> None:
        super().__init__()
        self.temperature = temperature
        self.patches = tuple(sorted(patches))
        self.fusion = FeatureFusion(channels, squeeze, kernel, branches=len(self.patches) + 1)
        self.last: dict[str, float] = {}

    def forward(self, features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        rebuilt = [reference_repair(features, reference, k, self.temperature) for k in self.patches]
        out, gates = self.fusion(features, *(r for r, _ in rebuilt))
        if torch.compiler.is_exporting():  # observability reads values, which an exported graph cannot
            return out
        with torch.no_grad():
            share = gates.mean(dim=(0, 2, 3, 4))
            last = {f"attention_top_k{k}": float(a.amax(-1).mean()) for k, (_, a) in zip(self.patches, rebuilt)}
            last.update({f"gate_k{k}": float(share[i]) for i, k in enumerate(reversed(self.patches))})
            last["gate_input"] = float(share[-1])
            self.last = last
        return out


def medoid_index(descriptors: torch.Tensor) -> int:
    """Index of the row of (M,D) descriptors nearest to their mean (a feature-space medoid)."""
    if descriptors.shape[0] == 0:
        raise ValueError("no descriptors to choose a reference from")
    return int((descriptors - descriptors.mean(dim=0)).norm(dim=1).argmin())
