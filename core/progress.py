"""Progress values and cooperative cancellation for long work (train, evaluate, predict, bench).

Long work is a generator of `Progress`; callers (CLI bar, GUI worker thread) only consume it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


class Cancelled(Exception):
    """Raised inside long work when its `CancelToken` was cancelled."""


@dataclass(frozen=True)
class Progress:
    """One step of long work. `total` = 0 means unknown length; `result` is set on the last value."""

    phase: str
    step: int
    total: int
    losses: Mapping[str, float] = field(default_factory=dict)
    eta_s: float | None = None
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


class CancelToken:
    """Thread-safe flag checked by long work between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class EtaClock:
    """Estimates remaining seconds from the average time per step so far."""

    def __init__(self, total: int, done: int = 0) -> None:
        self.total = total
        self._start_step = done
        self._start = time.perf_counter()

    def eta(self, step: int) -> float | None:
        done = step - self._start_step
        if done <= 0 or self.total <= 0:
            return None
        per_step = (time.perf_counter() - self._start) / done
        return per_step * max(self.total - step, 0)


def last_progress(values: Iterable[Progress]) -> Progress:
    """Run long work to its end without drawing anything; return its last value."""
    last = None
    for last in values:
        pass
    if last is None:
        raise RuntimeError("the job produced no progress")
    return last
