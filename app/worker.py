"""The one worker used for every long job: a QObject moved to a QThread that runs a core generator of
`Progress` with a `CancelToken` and reports through typed signals."""

from __future__ import annotations

import sys
import traceback
from typing import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.errors import is_expected, user_message
from core.progress import Cancelled, CancelToken, Progress

JobFactory = Callable[[CancelToken], Iterator[Progress]]
GIL_SWITCH_S = 0.001  # a worker running Python code hands the GIL back to the GUI thread this often (default 5 ms)


def readable_error(exc: BaseException) -> str:
    """One or two lines a quality engineer can act on: the same message the command line prints."""
    return user_message(exc)


class Worker(QObject):
    """Runs `factory(cancel)` to the end in its thread. Exactly one of `finished` / `failed` is emitted."""

    progress = Signal(object)  # Progress
    finished = Signal(object)  # the last Progress (phase "done" or "cancelled")
    failed = Signal(str)  # a readable message

    def __init__(self, factory: JobFactory, name: str) -> None:
        super().__init__()
        self.factory = factory
        self.name = name
        self.token = CancelToken()

    @Slot()
    def run(self) -> None:
        last = Progress("cancelled", 0, 0, message=f"{self.name} cancelled")
        try:
            for value in self.factory(self.token):
                last = value
                self.progress.emit(value)
        except Cancelled:
            last = Progress("cancelled", last.step, last.total, message=f"{self.name} cancelled",
                            result=last.result)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            if not is_expected(exc):  # a bug: keep its traceback on the console for the report
                traceback.print_exc()
            self.failed.emit(f"{self.name} failed: {readable_error(exc)}")
            return
        self.finished.emit(last)

    def cancel(self) -> None:
        self.token.cancel()


class Job(QObject):
    """A Worker in its own QThread. The Job lives in the GUI thread and re-emits the worker's signals there,
    so every slot connected to a Job runs in the GUI thread."""

    progress = Signal(object)  # Progress
    failed = Signal(str)  # a readable message
    done = Signal(object)  # after the thread has stopped: the last Progress (phase "failed" after a failure)

    def __init__(self, factory: JobFactory, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.worker = Worker(factory, name)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.thread.finished.connect(self._on_thread_finished)
        self.last = Progress("failed", 0, 0)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.worker.cancel()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, ms: int = 10000) -> bool:
        return self.thread.wait(ms)

    @Slot(object)
    def _on_progress(self, value: Progress) -> None:
        self.progress.emit(value)

    @Slot(object)
    def _on_finished(self, last: Progress) -> None:
        self.last = last
        self.thread.quit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.last = Progress("failed", 0, 0, message=message)
        self.failed.emit(message)
        self.thread.quit()

    @Slot()
    def _on_thread_finished(self) -> None:
        self.thread.wait()  # `finished` comes just before the thread really ends; let it end first
        self.done.emit(self.last)


class JobRunner(QObject):
    """Starts jobs and keeps them alive until their thread has stopped; cancels all on shutdown.
    Failures go to `error` (the main window shows them) unless the caller handles `failed` itself."""

    error = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs: set[Job] = set()
        # Every Qt call from Python releases and re-takes the GIL; with the default 5 ms switch interval a busy
        # worker makes each of those wait, and a repaint of the plots stalls for hundreds of milliseconds.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))

    def start(self, factory: JobFactory, name: str, on_progress: Callable[[Progress], None] | None = None,
              on_done: Callable[[Progress], None] | None = None,
              on_error: Callable[[str], None] | None = None) -> Job:
        """Connect the callbacks (run in the GUI thread), then start the job."""
        job = Job(factory, name)  # no Qt parent: Python owns it, the set keeps it alive while it runs
        self.jobs.add(job)
        if on_progress is not None:
            job.progress.connect(on_progress)
        job.failed.connect(on_error if on_error is not None else self.error.emit)
        if on_done is not None:
            job.done.connect(on_done)
        job.done.connect(lambda _last, job=job: self._forget(job))
        job.start()
        return job

    def _forget(self, job: Job) -> None:
        self.jobs.discard(job)

    def running(self, name: str) -> bool:
        return any(job.name == name and job.is_running() for job in self.jobs)

    def shutdown(self, ms: int = 15000) -> None:
        for job in list(self.jobs):
            job.cancel()
        for job in list(self.jobs):
            job.wait(ms)
