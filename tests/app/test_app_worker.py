"""The one worker class: progress, results, cancellation and readable failures, all in the GUI thread."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

from app.worker import JobRunner
from core.progress import CancelToken, Progress

pytestmark = pytest.mark.gui


def counting(n: int, fail_at: int | None = None, wait: threading.Event | None = None):
    def run(cancel: CancelToken) -> Iterator[Progress]:
        for step in range(1, n + 1):
            if wait is not None:
                wait.wait(5)
            cancel.raise_if_cancelled()
            if step == fail_at:
                raise ValueError(f"bad value {step}: use a smaller one")
            yield Progress("count", step, n)
        yield Progress("done", n, n, result="finished")
    return run


def test_worker_reports_progress_and_result_in_gui_thread(qtbot) -> None:
    runner = JobRunner()
    seen: list[int] = []
    threads: set[int] = set()

    def on_progress(p: Progress) -> None:
        seen.append(p.step)
        threads.add(threading.get_ident())

    job = runner.start(counting(5), "count", on_progress=on_progress)
    with qtbot.waitSignal(job.done, timeout=5000) as blocker:
        pass
    assert blocker.args[0].phase == "done" and blocker.args[0].result == "finished"
    assert seen == [1, 2, 3, 4, 5, 5]
    assert threads == {threading.get_ident()}


def test_worker_failure_becomes_a_message(qtbot) -> None:
    runner = JobRunner()
    messages: list[str] = []
    job = runner.start(counting(5, fail_at=3), "counting", on_error=messages.append)
    with qtbot.waitSignal(job.done, timeout=5000) as blocker:
        pass
    assert blocker.args[0].phase == "failed"
    assert messages == ["counting failed: bad value 3: use a smaller one"]


def test_worker_cancel_stops_between_steps(qtbot) -> None:
    runner = JobRunner()
    gate = threading.Event()
    job = runner.start(counting(1000, wait=gate), "slow")
    job.cancel()
    gate.set()
    with qtbot.waitSignal(job.done, timeout=5000) as blocker:
        pass
    assert blocker.args[0].phase == "cancelled"
