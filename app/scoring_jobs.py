"""The one scoring job of the workbench (scoring a folder with a model, or inspecting one): a new job supersedes
a running one, Cancel stops it, and its results reach the session in groups so plots are not rebuilt per
image."""

from __future__ import annotations

import gc
import time
from typing import Callable

from PySide6.QtCore import QObject

from app.jobs import Factory
from app.session import Session
from app.status_bar import JobStatus
from app.worker import Job, JobRunner
from core.data.index import DatasetIndex
from core.progress import Progress
from core.results import CachedResult

FLUSH_EVERY_S = 0.7  # scored images reach the panels in groups, so plots are not rebuilt per image


class ScoringJobs(QObject):
    """Runs scoring jobs through `runner` one at a time; `job` is the running one (None when idle)."""

    def __init__(self, session: Session, runner: JobRunner, status: JobStatus,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.status = status
        self.job: Job | None = None
        self._pending: list[CachedResult] = []
        self._last_flush = 0.0

    def start(self, factory: Factory, text: str, on_index: Callable[[DatasetIndex], None] | None = None,
              on_done: Callable[[Progress], None] | None = None) -> Job:
        """Run a scoring job (it replaces a running one); its results reach the session in groups.
        `on_index` gets the folder's index when the job sends one; `on_done` the last Progress."""
        if self.job is not None:
            self.job.cancel()
        self.session.clear_results()
        self._pending = []
        gc.freeze()  # what exists now (modules, widgets, the dataset's index) lives on: no full scans of it
        self.status.started(text)
        holder: dict[str, Job] = {}

        def progress(value: Progress) -> None:
            if holder["job"] is not self.job:
                return  # a cancelled, superseded scoring run
            index = (value.extra or {}).get("index")
            if index is not None:
                self.session.expect_results(len(index.records))
                if on_index is not None:
                    on_index(index)
            self._progress(value)

        def done(last: Progress) -> None:
            if holder["job"] is not self.job:
                return
            self._done(last)
            if on_done is not None:
                on_done(last)
        job = self.runner.start(factory, "predict", on_progress=progress, on_done=done)
        holder["job"] = self.job = job
        return job

    def cancel(self) -> None:
        """Stop the running job; what it scored so far stays (and an inspection writes a partial report)."""
        if self.job is not None:
            self.job.cancel()

    def discard(self) -> None:
        """Stop the running job and ignore anything it still sends (another folder is being opened)."""
        self.cancel()
        self.job = None

    def _progress(self, progress: Progress) -> None:
        self.status.step(progress)
        self._pending += (progress.extra or {}).get("cached", [])
        if self._pending and self._flush_due():
            self._flush()

    def _flush_due(self) -> bool:
        """Panels rebuild their plots on every flush: flush less often as results pile up."""
        interval = FLUSH_EVERY_S + len(self.session.results) / 5000
        return time.perf_counter() - self._last_flush > interval

    def _flush(self) -> None:
        self._last_flush = time.perf_counter()
        pending, self._pending = self._pending, []
        self.session.add_results(pending)
        # Results live as long as the session and hold no reference cycles (reference counting frees them):
        # keep them out of the cycle collector's full scans, which take a second at 10,000 images.
        gc.freeze()
        if self.session.current is None and self.session.scored():
            self.session.set_current(self.session.scored()[-1].path)

    def _done(self, last: Progress) -> None:
        self.job = None
        if self._pending:
            self._flush()
        if (last.extra or {}).get("stored"):
            text = (f"{len(self.session.results)} results kept from an earlier run with this model file; "
                    "Tools > Score again redoes them.")
        else:
            text = f"Scored {len(self.session.results)} images." if last.phase == "done" else "Scoring stopped."
        self.status.finished(text)
