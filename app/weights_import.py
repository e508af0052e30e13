"""Tools > Import weights file…: check a torchvision ImageNet weights file a user brings (VGG, AlexNet,
SqueezeNet) by its SHA-256 and copy it into DefectLab's weights folder, in the background."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from app.status_bar import JobStatus
from app.worker import Job, JobRunner
from core.progress import CancelToken, Progress
from core.workflow.weights import ImportedWeights, import_weights_file, known_weight_files


def import_job(source: Path) -> Callable[[CancelToken], Iterator[Progress]]:
    """One step: result = ImportedWeights (hashing and copying a VGG file takes a second or two)."""
    def run(_cancel: CancelToken) -> Iterator[Progress]:
        yield Progress("weights", 0, 1, message=f"Checking {source.name}…")
        imported = import_weights_file(source)
        yield Progress("done", 1, 1, message=f"{imported.name} imported: used for the {imported.used_for}",
                       result=imported)
    return run


class WeightsImport(QObject):
    """Runs an import through `runner`; `imported` carries the ImportedWeights; failures go to the status."""

    imported = Signal(object)

    def __init__(self, dialog_parent: QWidget, runner: JobRunner, status: JobStatus) -> None:
        super().__init__(dialog_parent)
        self.dialog_parent = dialog_parent
        self.runner = runner
        self.status = status

    def ask(self) -> None:
        names = " ".join(known_weight_files())
        path, _ = QFileDialog.getOpenFileName(self.dialog_parent, "Import a weights file", str(Path.home()),
                                              f"torchvision weights ({names} *.pth);;All files (*)")
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> Job:
        """Import `path` in the background; the status bar says what became of it."""
        self.status.say(f"Importing {path}…")
        return self.runner.start(import_job(Path(path)), "weights import",
                                 on_progress=lambda progress: self.status.say(progress.message),
                                 on_done=self._done, on_error=self.status.show_error)

    def _done(self, last: Progress) -> None:
        if isinstance(last.result, ImportedWeights):
            self.status.finished(f"{last.message} (now in {last.result.path.parent})")
            self.imported.emit(last.result)
