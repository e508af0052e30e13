"""File > Export model…: write the open model (or the last one trained) to an ONNX file with the map and the
thresholds in use inside, in the background (an export traces the network: 10-60 s on a CPU)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from app.session import FROM_MODEL, Session
from app.status_bar import JobStatus
from app.worker import Job, JobRunner
from core.errors import FileError, UserError, user_message
from core.export.metadata import ONNX_SUFFIX, Thresholds
from core.export.onnx_export import ExportResult, check_method_exportable, check_onnx_target, export_onnx
from core.metrics.thresholds import Threshold
from core.modelfile import ModelMeta, read_meta
from core.paths import last_model
from core.progress import CancelToken, Progress

JOB = "model export"


def export_job(model: Path, out: Path, default_map: str | None, thresholds: Thresholds | None
               ) -> Callable[[CancelToken], Iterator[Progress]]:
    """One step (the trace cannot stop halfway): result = ExportResult."""
    def run(_cancel: CancelToken) -> Iterator[Progress]:
        yield Progress("export", 0, 1, message=f"Exporting {model.name} to {out.name} (up to a minute)…")
        result = export_onnx(model, out, default_map=default_map, thresholds=thresholds)
        yield Progress("done", 1, 1, message=f"{model.name} exported to {out}: outputs {', '.join(result.outputs)}",
                       result=result)
    return run


def thresholds_in_use(session: Session, meta: ModelMeta) -> tuple[str | None, Thresholds | None]:
    """(the map the workbench scores with, the thresholds set in the workbench that differ from the stored
    ones) for the session's model; thresholds still as stored give None."""
    t = session.thresholds
    if not t.map_name:
        return None, None
    if t.how.startswith(FROM_MODEL):
        return t.map_name, None
    changed = {kind: Threshold(value, t.how).to_dict() for kind, value in (("image", t.image), ("pixel", t.pixel))
               if math.isfinite(value) and value != getattr(meta, f"{kind}_threshold")(t.map_name)}
    return t.map_name, ({t.map_name: changed} if changed else None)


class ModelExport(QObject):
    """Runs an export through `runner`; `exported` carries the ExportResult; failures go to the status (with
    a dialog)."""

    exported = Signal(object)

    def __init__(self, dialog_parent: QWidget, session: Session, runner: JobRunner, status: JobStatus) -> None:
        super().__init__(dialog_parent)
        self.dialog_parent = dialog_parent
        self.session = session
        self.runner = runner
        self.status = status

    def ask(self) -> None:
        model = self.session.model_path or last_model()
        if model is None:
            self.status.show_error("No model to export: open one (File > Open model…) or train one first.")
            return
        path, _ = QFileDialog.getSaveFileName(self.dialog_parent, f"Export {model.name} to ONNX",
                                              str(model.with_suffix(ONNX_SUFFIX)), f"ONNX model (*{ONNX_SUFFIX})")
        if path:
            self.export_file(model, Path(path))

    def export_file(self, model: Path, out: Path) -> Job | None:
        """Export `model` to `out` in the background. A model whose method cannot export, an unusable model
        file or target is refused at once with a dialog saying why."""
        model, out = Path(model), Path(out)
        if self.runner.running(JOB):
            self.status.show_error("A model is being exported already; wait for it to finish.")
            return None
        try:
            meta = read_meta(model)
            check_method_exportable(meta.method)
            check_onnx_target(out, inputs=[model])
        except (UserError, FileError) as exc:
            self.status.show_error(f"{model.name} cannot be exported: {user_message(exc)}")
            return None
        default_map, thresholds = (thresholds_in_use(self.session, meta) if self.session.model_path == model
                                   else (None, None))
        self.status.started(f"Exporting {model.name} to {out}…", cancellable=False)
        return self.runner.start(export_job(model, out, default_map, thresholds), JOB, on_progress=self.status.step,
                                 on_done=self._done, on_error=self._failed)

    def _failed(self, message: str) -> None:
        self.status.finished("Export stopped.")
        self.status.show_error(message)

    def _done(self, last: Progress) -> None:
        if isinstance(last.result, ExportResult):
            self.status.finished(last.message)
            self.exported.emit(last.result)
