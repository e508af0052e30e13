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
    """FFM (Eqs. 6-8): F_U = F_ad + F_rep2 + F_rep4 -> m x m conv to `squeeze` channels (+ BN + ReLU, as in
    SKNet) -> three m x m convs give per-channel logits; a softmax across the three branches weighs them.
    Inputs three (N,C,H,W) maps -> (N,C,H,W), plus the gates (N,3,C,H,W) that sum to 1 over dim 1."""

    def __init__(self, channels: int, squeeze: int = 64, kernel: int = 5) -> None:
        super().__init__()
        pad = kernel // 2
        self.squeeze = nn.Sequential(nn.Conv2d(channels, squeeze, kernel, 1, pad, bias=False),
                                     nn.BatchNorm2d(squeeze), nn.ReLU(inplace=True))
        # One conv with 3C outputs is the three m x m convs of the paper side by side.
        self.logits = nn.Conv2d(squeeze, 3 * channels, kernel, 1, pad)

    def gates(self, ad: torch.Tensor, rep2: torch.Tensor, rep4: torch.Tensor) -> torch.Tensor:
        """(N,3,C,H,W): the weights of (rep4, rep2, ad), softmax over the branch axis (Eq. 7)."""
        n, c, h, w = ad.shape
        logits = self.logits(self.squeeze(ad + rep2 + rep4))  # Eq. 6, then the convs
        return torch.softmax(logits.view(n, 3, c, h, w), dim=1)

    def forward(self, ad: torch.Tensor, rep2: torch.Tensor, rep4: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.gates(ad, rep2, rep4)
        return gates[:, 0] * rep4 + gates[:, 1] * rep2 + gates[:, 2] * ad, gates  # Eq. 8


class ReferenceAttention(nn.Module):
    """RBAM on one encoder level: RBFRM at each patch size of `patches` (the paper's 2 and 4), then FFM.
    (N,C,H,W) features and (1,C,H,W) reference features -> (N,C,H,W) F_out. `last` keeps what the last call
    saw (mean top attention weight per K, mean gate per branch) for the training observability."""

    def __init__(self, channels: int, temperature: float, patches: tuple[int, int] = (2, 4),
                 squeeze: int = 64, kernel: int = 5) -> None:
        super().__init__()
        self.temperature = temperature
        self.patches = patches
        self.fusion = FeatureFusion(channels, squeeze, kernel)
        self.last: dict[str, float] = {}

    def forward(self, features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        small, large = (reference_repair(features, reference, k, self.temperature) for k in self.patches)
        out, gates = self.fusion(features, small[0], large[0])
        if torch.compiler.is_exporting():  # observability reads values, which an exported graph cannot
            return out
        with torch.no_grad():
            share = gates.mean(dim=(0, 2, 3, 4))
            self.last = {f"attention_top_k{self.patches[0]}": float(small[1].amax(-1).mean()),
                         f"attention_top_k{self.patches[1]}": float(large[1].amax(-1).mean()),
                         "gate_large": float(share[0]), "gate_small": float(share[1]), "gate_input": float(share[2])}
        return out


def medoid_index(descriptors: torch.Tensor) -> int:
    """Index of the row of (M,D) descriptors nearest to their mean (a feature-space medoid)."""
    if descriptors.shape[0] == 0:
        raise ValueError("no descriptors to choose a reference from")
    return int((descriptors - descriptors.mean(dim=0)).norm(dim=1).argmin())
