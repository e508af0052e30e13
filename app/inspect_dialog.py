""""Inspect folder…": choose a trained model, a folder of new images and where the report goes."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QVBoxLayout, QWidget)

from core.paths import models_dir


def reports_dir() -> Path:
    """`<models dir>/../reports`: where reports go unless the user says otherwise."""
    return models_dir().parent / "reports"


def default_report_folder(folder: Path, suffix: str = "") -> Path:
    """`<reports dir>/<folder name>-<timestamp>[-suffix]`, new for every run."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return reports_dir() / f"{Path(folder).name or 'images'}-{stamp}{'-' + suffix if suffix else ''}"


class InspectDialog(QDialog):
    def __init__(self, model: Path | None, folder: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Inspect a folder")
        self.setMinimumWidth(640)
        self.model = QLineEdit(str(model) if model else "")
        self.model.setPlaceholderText("trained model (.safetensors)")
        self.folder = QLineEdit(str(folder) if folder else "")
        self.folder.setPlaceholderText("folder of images to inspect")
        self.out = QLineEdit()
        self.out.setPlaceholderText("report folder (default: a new folder under the reports folder)")
        self._out_edited = False
        self.out.textEdited.connect(lambda _text: setattr(self, "_out_edited", True))
        self.folder.textChanged.connect(self._suggest_out)
        self._suggest_out()

        form = QFormLayout()
        form.addRow("Model", self._with_button(self.model, self._browse_model))
        form.addRow("Images", self._with_button(self.folder, self._browse_folder))
        form.addRow("Report", self._with_button(self.out, self._browse_out))
        note = QLabel("Every image is scored with the model's thresholds; the report (HTML, PDF, CSV, JSON) is "
                      "written to the report folder, also when you cancel (marked partial).")
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Inspect")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        self.message = QLabel("")
        self.message.setStyleSheet("color: #c0392b")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def _with_button(self, edit: QLineEdit, slot: object) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(slot)
        layout.addWidget(button)
        return row

    def _suggest_out(self) -> None:
        text = self.folder.text().strip()
        if not self._out_edited and text:
            self.out.setText(str(default_report_folder(Path(text))))

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", self.model.text() or str(models_dir()),
                                              "DefectLab models (*.safetensors)")
        if path:
            self.model.setText(path)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to inspect", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Report folder", str(reports_dir()))
        if folder:
            self._out_edited = True
            self.out.setText(folder)

    def values(self) -> tuple[Path, Path, Path]:
        """(model, images folder, report folder)."""
        return Path(self.model.text().strip()), Path(self.folder.text().strip()), Path(self.out.text().strip())

    def _accept(self) -> None:
        model, folder, out = self.values()
        if not model.is_file():
            self.message.setText(f"Model not found: {model}")
        elif not folder.is_dir():
            self.message.setText(f"Folder not found: {folder}")
        elif not self.out.text().strip():
            self.message.setText("Choose a report folder.")
        else:
            self.accept()
