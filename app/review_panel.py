"""Review panel: the images in the review band or at or above the image threshold (the test images when the
folder has a training split: the audit looks at those), most anomalous first; one key marks the image on screen
good (G) or defect (D) and moves on to the next one not reviewed. The verdicts are the session's (saved with
projects, used by F1-optimal and label-free calibration, exported in reports), and this panel measures the
model's precision and recall on them at the current thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from app.session import Session
from app.widgets import shrinkable
from core.review import DEFECT, GOOD, measure, review_queue

SHOWN = 500  # queue entries listed (the queue itself may be longer)
COLOURS = {GOOD: QColor(40, 160, 70, 90), DEFECT: QColor(200, 50, 50, 110)}


class ReviewPanel(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.queue: list[Path] = []
        self._queue_for: tuple[object, ...] = ()
        self._stale = False  # results changed while the panel was hidden: rebuild when it shows

        self.summary = QLabel("Score a folder: the images to review appear here.")
        shrinkable(self.summary).setWordWrap(True)
        self.list = QListWidget()
        self.good_button = QPushButton("Good (G)")
        self.defect_button = QPushButton("Defect (D)")
        self.clear_button = QPushButton("Forget")
        self.clear_button.setToolTip("Forget what was said about the image on screen")
        self.measured = QLabel("")
        self.measured.setWordWrap(True)
        self.measured.setToolTip("The model's verdicts (score at or above the image threshold) against yours")
        buttons = QHBoxLayout()
        for button in (self.good_button, self.defect_button, self.clear_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(self.measured)
        layout.addWidget(self.list, 1)

        self.good_button.clicked.connect(lambda: self.mark(GOOD))
        self.defect_button.clicked.connect(lambda: self.mark(DEFECT))
        self.clear_button.clicked.connect(lambda: self.mark(None))
        self.list.currentItemChanged.connect(self._picked)
        session.resultsChanged.connect(self.refresh)
        session.thresholdsChanged.connect(self._thresholds_changed)
        session.reviewsChanged.connect(self._reviews_changed)
        session.currentChanged.connect(self._select_current)

    # --------------------------------------------------------------------------------------------- queue
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Rebuild the queue from the scores and thresholds (later, when shown, while the panel is hidden)."""
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        self.refresh_now()
        self.list.blockSignals(True)
        self.list.clear()
        for path in self.queue[:SHOWN]:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._reviews_changed()
        self._select_current()

    def refresh_now(self) -> None:
        """Rebuild the queue even while the panel is hidden (a key pressed elsewhere in the window)."""
        t = self.session.thresholds
        table = self.session.table
        shown = ~table.train if not table.train.all() else np.ones(len(table), bool)  # as the threshold panel
        paths = [p for p, keep in zip(table.paths, shown) if keep]
        self.queue = review_queue(paths, self.session.scores()[shown], t.image, t.review)
        self._queue_for = (t.map_name, t.image, t.review)

    def _thresholds_changed(self) -> None:
        t = self.session.thresholds
        if (t.map_name, t.image, t.review) != self._queue_for:
            self.refresh()

    def _reviews_changed(self) -> None:
        if self._stale:
            return
        reviews = self.session.reviews
        scores = self.session.scores()
        rows = self.session.table.rows
        for i in range(self.list.count()):
            item = self.list.item(i)
            path = item.data(Qt.ItemDataRole.UserRole)
            said = reviews.get(path)
            item.setText(f"{self._name(path)} — {scores[rows[path]]:.4g}" + (f" — you: {said}" if said else ""))
            item.setBackground(COLOURS.get(said or "", QColor(0, 0, 0, 0)))
        done = sum(p in reviews for p in self.queue)
        more = f" (the first {SHOWN} listed)" if len(self.queue) > SHOWN else ""
        self.summary.setText(f"<b>{len(self.queue)}</b> images to review{more} — in the review band or at or "
                             f"above the image threshold — <b>{done}</b> reviewed. G: good, D: defect.")
        by_path = {p: float(scores[rows[p]]) for p in reviews if p in rows}
        self.measured.setText(measure(reviews, by_path, self.session.thresholds.image).text())
        self.good_button.setEnabled(self.session.current in rows)
        self.defect_button.setEnabled(self.session.current in rows)

    def _name(self, path: Path) -> str:
        """The image's place in the dataset (test/crack/000.png), or its name."""
        root = self.session.index.root if self.session.index is not None else None
        return path.relative_to(root).as_posix() if root is not None and path.is_relative_to(root) else path.name

    # --------------------------------------------------------------------------------------------- marks
    def mark(self, said: str | None) -> None:
        """Say what the image on screen is (None forgets it), then show the next image of the queue that is
        not reviewed yet."""
        if self._stale:
            self.refresh_now()
        path = self.session.current
        if path is None or path not in self.session.table.rows:
            return
        self.session.set_review(path, said)
        if said is not None:
            following = self.next_unreviewed(path)
            if following is not None:
                self.session.set_current(following)

    def next_unreviewed(self, after: Path | None) -> Path | None:
        """The first image of the queue after `after` (or from the start) that nobody has reviewed."""
        start = self.queue.index(after) + 1 if after in self.queue else 0
        for path in self.queue[start:] + self.queue[:start]:
            if path not in self.session.reviews:
                return path
        return None

    # ----------------------------------------------------------------------------------------- selection
    def _picked(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self.session.set_current(item.data(Qt.ItemDataRole.UserRole))

    def _select_current(self) -> None:
        current = self.session.current
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == current:
                self.list.setCurrentRow(i)
                break
        else:
            self.list.setCurrentRow(-1)
        self.list.blockSignals(False)
        self.good_button.setEnabled(current in self.session.table.rows)
        self.defect_button.setEnabled(current in self.session.table.rows)
