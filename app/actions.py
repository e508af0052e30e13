"""What the workbench's action groups (opening, reports) share: the dialog parent, the session, the job runner,
the scoring job, the status bar and the device choice."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from app.scoring_jobs import ScoringJobs
from app.session import Session
from app.status_bar import JobStatus
from app.worker import JobRunner


class Actions(QObject):
    """Base of a group of menu actions; `device()` names the device to score on (the training panel's)."""

    def __init__(self, dialog_parent: QWidget, session: Session, runner: JobRunner, scoring: ScoringJobs,
                 status: JobStatus, device: Callable[[], str]) -> None:
        super().__init__(dialog_parent)
        self.dialog_parent = dialog_parent
        self.session = session
        self.runner = runner
        self.scoring = scoring
        self.status = status
        self.device = device
