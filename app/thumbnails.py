"""Thumbnails loaded in the background on demand: the grid asks for what it paints, the loader reads the most
recent requests first in small jobs, and keeps a bounded cache of pixmaps."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPixmap

from app.worker import JobRunner
from core.thumbnails import iter_thumbnails
from core.progress import Progress

THUMB_SIZE = 96
BATCH = 32  # thumbnails per background job
CACHE_LIMIT = 4000  # pixmaps kept in memory


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the QImage must not keep pointing at numpy memory


class ThumbnailLoader(QObject):
    ready = Signal(object)  # Path

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.cache: OrderedDict[Path, QPixmap] = OrderedDict()
        self.failed: dict[Path, str] = {}
        self.pending: OrderedDict[Path, Path | None] = OrderedDict()  # path -> mask path, newest last
        self.busy = False
        self.placeholder = QPixmap(THUMB_SIZE, THUMB_SIZE)
        self.placeholder.fill(QColor("#3a3a3a"))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._start)

    def get(self, path: Path, mask_path: Path | None) -> QPixmap:
        pixmap = self.cache.get(path)
        if pixmap is not None:
            return pixmap
        if path not in self.failed:
            self.pending.pop(path, None)
            self.pending[path] = mask_path
            if not self.busy:
                self._timer.start()
        return self.placeholder

    def clear(self) -> None:
        self.cache.clear()
        self.failed.clear()
        self.pending.clear()

    def _start(self) -> None:
        if self.busy or not self.pending:
            return
        items = list(self.pending.items())[-BATCH:][::-1]  # what was painted last is on screen now
        self.pending.clear()  # older requests come back if their rows are painted again
        self.busy = True
        self.runner.start(lambda cancel: iter_thumbnails(items, THUMB_SIZE, cancel), "thumbnails",
                          on_progress=self._loaded, on_done=self._finished, on_error=self._error)

    def _loaded(self, progress: Progress) -> None:
        path, rgb, reason = progress.result
        if rgb is None:
            self.failed[path] = reason
        else:
            self.cache[path] = to_pixmap(rgb)
            while len(self.cache) > CACHE_LIMIT:
                self.cache.popitem(last=False)
        self.ready.emit(path)

    def _finished(self, _last: Progress) -> None:
        self.busy = False
        if self.pending:
            self._timer.start()

    def _error(self, _message: str) -> None:
        self.busy = False
