"""A summary of what training showed beyond the loss curve, for the model file and the benchmark.

Training progress carries each step's losses (`Progress.losses`) and the model's observability values
(`Progress.extra["observability"]`: memory addressing sparsity, trust-region shares, weighted loss terms).
`TrainingSummary` keeps the means over the last `window` steps of every phase (by default its last epoch),
which say where training ended up.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from core.progress import Progress


class TrainingSummary:
    """Means of the losses and observability values over the last `window` steps of each phase."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"the summary window must be at least one step, got {window}")
        self.window = window
        self._steps: dict[str, deque[tuple[dict[str, float], dict[str, float]]]] = {}

    def add(self, progress: Progress) -> None:
        """Take in one training step; progress without losses (resumed, done, non-gradient phases) is skipped."""
        if not progress.losses:
            return
        observed = dict((progress.extra or {}).get("observability", {}))
        steps = self._steps.setdefault(progress.phase, deque(maxlen=self.window))
        steps.append((dict(progress.losses), observed))

    def summary(self) -> dict[str, dict[str, Any]]:
        """{phase: {"steps": n, "losses": {name: mean}, "observability": {name: mean}}}, JSON-friendly."""
        out: dict[str, dict[str, Any]] = {}
        for phase, steps in self._steps.items():
            out[phase] = {"steps": len(steps), "losses": _means([losses for losses, _ in steps]),
                          "observability": _means([observed for _, observed in steps])}
        return out


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    names = list(dict.fromkeys(name for row in rows for name in row))
    means = {}
    for name in names:
        values = [row[name] for row in rows if name in row]
        means[name] = round(sum(values) / len(values), 6)
    return means
