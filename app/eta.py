"""Time left for a job, from its own pace after a warm-up: the first steps (loading, compiling, the first batch)
are slow and would make an early estimate far too long."""

from __future__ import annotations

import time

WARMUP_S = 5.0  # no estimate during the first seconds after the first step
WARMUP_STEPS = 3  # ... nor before this many steps after it


class Eta:
    """Seconds left, measured from the first step on (None while warming up)."""

    def __init__(self, clock=time.perf_counter) -> None:  # noqa: ANN001 - any callable giving seconds
        self.clock = clock
        self._anchor: tuple[float, int] | None = None

    def reset(self) -> None:
        self._anchor = None

    def update(self, step: int, total: int) -> float | None:
        now = self.clock()
        if self._anchor is None or step < self._anchor[1]:
            self._anchor = (now, step)  # a job resumed from a checkpoint starts counting where it is
            return None
        since, first = self._anchor
        done = step - first
        if now - since < WARMUP_S or done < WARMUP_STEPS or total <= step:
            return None if total > step else 0.0
        return (total - step) * (now - since) / done
