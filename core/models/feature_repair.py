"""CMA-AE's feature repair module (FRM, Luo et al. Sec. 3.4): the forget/input gates that merge the
encoder's code with the memory's code, and the "Cat" fusion of the ablation.

The paper's clear memory-augmented module (CMAM) is MAM + FRM. The MAM (memory-augmented module, Eq. 2-5)
is exactly MemAE's memory: cosine-similarity softmax addressing, hard shrinkage at 1/N with L1
renormalization and the addressing-entropy loss. It is reused from `core.models.memory`
(`ShrinkageMemory(slots, dim, 1 / slots)`, `entropy_loss`).

This file holds what CMA-AE adds on top: the feature repair module (FRM, Eq. 6-10), which merges the
encoder's code z (detailed, but carries the defect) with the memory's code z^ (defect-free, but blurry),
and the "Cat" fusion of the paper's ablation (Table IV, column C).

Reading of Eq. 6-10 (the printed equations are inconsistent; this is the LSTM-cell reading the text
describes):
    x  = [z, z^]                          (P, 2D)   both codes, concatenated
    f  = sigma(W_f x + b_f)               (P, D)    forget gate, Eq. 6
    i  = sigma(W_i x + b_i)               (P, D)    input gate, Eq. 7 (printed "[z_k, z]" and "b_c": typos)
    C  = tanh(W_c x + b_c)                (P, D)    candidate, Eq. 8
    z'' = f * z + i * C                   (P, D)    Eq. 9-10
- The forget gate acts on the encoder code z, not on z^: the text says it "erases anomalous foregrounds in
  the coding", and only z can hold them (z^ is built from normal memory items). This is the LSTM
  analogy: z plays the cell state, the memory read-out feeds the candidate.
- FC sizes: Table I lists three FCs of "1024, 512", i.e. each maps [z, z^] (2 x 512) to 512 = D.
- sigma: the paper calls it softmax (text and Table I). A softmax over D = 512 gate units sums to 1, so
  each gate would be ~1/512 and f * z would all but erase every code, details included, which contradicts
  the module's purpose; LSTM gates (the cited inspiration) use the logistic sigmoid, conventionally written
  sigma. Default: sigmoid. `gate_activation="softmax"` gives the literal reading for comparison.
"""

from __future__ import annotations

import torch
from torch import nn

GATE_ACTIVATIONS = ("sigmoid", "softmax")


def gate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """Gate values from logits (P,D): logistic sigmoid per unit, or softmax over the D units."""
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    if activation == "softmax":
        return torch.softmax(logits, dim=1)
    raise ValueError(f"unknown gate activation {activation!r}; choose one of {', '.join(GATE_ACTIVATIONS)}")


class FeatureRepair(nn.Module):
    """FRM (Eq. 6-10): z'' = f * z + i * C with gates computed from [z, z^]. (P,D) x2 -> (P,D)."""

    def __init__(self, dim: int, activation: str = "sigmoid") -> None:
        super().__init__()
        gate(torch.zeros(1, 1), activation)  # fail early on an unknown activation
        self.activation = activation
        self.forget = nn.Linear(2 * dim, dim)  # W_f, b_f
        self.input = nn.Linear(2 * dim, dim)  # W_i, b_i
        self.candidate = nn.Linear(2 * dim, dim)  # W_c, b_c

    def gates(self, z: torch.Tensor, z_memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(f, i, C), each (P,D), from the encoder code z (P,D) and the memory code z^ (P,D)."""
        both = torch.cat([z, z_memory], dim=1)
        return (gate(self.forget(both), self.activation), gate(self.input(both), self.activation),
                torch.tanh(self.candidate(both)))

    def forward(self, z: torch.Tensor, z_memory: torch.Tensor) -> torch.Tensor:
        f, i, candidate = self.gates(z, z_memory)
        return f * z + i * candidate


class ConcatFusion(nn.Module):
    """Ablation "Cat" (Table IV, C): one FC on [z, z^] instead of the gates. (P,D) x2 -> (P,D).

    A single 2D -> D layer: the same input as the FRM with a third of its parameters, so a gain of the FRM
    over it is not a matter of size.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.merge = nn.Linear(2 * dim, dim)

    def forward(self, z: torch.Tensor, z_memory: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([z, z_memory], dim=1))
