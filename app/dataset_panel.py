"""Dataset browser: a tree by split and label, a lazily loaded thumbnail grid with score and verdict,
filter and sort, the files that were skipped with their reasons, and the grid's context menu (Use as
reference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QListView, QListWidget, QMenu,
                               QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from app.session import Session
from app.widgets import breakable, shrinkable
from app.thumbnails import THUMB_SIZE, ThumbnailLoader
from app.worker import JobRunner
from core.data.index import ImageRecord
from core.data.io import mask_size_problem
from core.review import DEFECT

VERDICT_COLOURS = {"defective": QColor(200, 50, 50, 110), "review": QColor(230, 160, 0, 110),
                   "good": QColor(40, 160, 70, 70)}
FILTERS = ("All images", "Verdict: defective", "Verdict: review", "Verdict: good", "Label: defective",
           "Label: good", "With ground-truth mask", "Not scored")
SORTS = ("Name", "Score: highest first", "Score: lowest first")
Index = QModelIndex | QPersistentModelIndex


class ThumbModel(QAbstractListModel):
    """The visible records, in the chosen order; pixmaps come from the loader."""

    def __init__(self, session: Session, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.session = session
        self.loader = loader
        self.records: list[ImageRecord] = []
        self.rows: dict[Path, int] = {}
        self._mask_notes: dict[Path, str | None] = {}
        loader.ready.connect(self._thumbnail_ready)

    def set_records(self, records: list[ImageRecord]) -> None:
        self.beginResetModel()
        self.records = records
        self.rows = {r.path: i for i, r in enumerate(records)}
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.records)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            warning = "\n⚠ mask size differs" if self._mask_problem(record) else ""
            return f"{record.path.name}\n{self._score_text(record.path)}{warning}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self.loader.get(record.path, record.mask_path)
        if role == Qt.ItemDataRole.BackgroundRole:
            colour = VERDICT_COLOURS.get(self.session.verdict(record.path) or "")
            return colour
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [str(record.path), f"split: {record.split}, label: {record.label}",
                     "ground-truth mask: " + (record.mask_path.name if record.mask_path else "none"),
                     self._score_text(record.path)]
            if self._mask_problem(record):
                lines.append(self._mask_problem(record) or "")
            reason = self.loader.failed.get(record.path)
            if reason:
                lines.append(f"thumbnail failed: {reason}")
            return "\n".join(lines)
        if role == Qt.ItemDataRole.UserRole:
            return record.path
        return None

    def _mask_problem(self, record: ImageRecord) -> str | None:
        """The mask-size note of a record (headers only, cached per path)."""
        if record.mask_path is None:
            return None
        if record.path not in self._mask_notes:
            self._mask_notes[record.path] = mask_size_problem(record.mask_path, record.path)
        return self._mask_notes[record.path]

    def _score_text(self, path: Path) -> str:
        result = self.session.results.get(path)
        if result is None:
            return "not scored"
        score = result.scores.get(self.session.thresholds.map_name)
        return f"{score:.4g} {self.session.verdict(path) or ''}" if score is not None else "not scored"

    def _thumbnail_ready(self, path: Path) -> None:
        row = self.rows.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def refresh_all(self) -> None:
        if self.records:
            self.dataChanged.emit(self.index(0), self.index(len(self.records) - 1))


class DatasetPanel(QWidget):
    """`use_reference` (the grid's context menu) asks, through `referenceRequested`, for the current image to
    become the model's reference image; it is enabled when the model uses one and the image is not known to
    be defective."""

    referenceRequested = Signal(object)  # Path of an image

    def __init__(self, session: Session, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.loader = ThumbnailLoader(runner, self)
        self.model = ThumbModel(session, self.loader)
        self._shown_for: tuple[object, ...] = ()

        self.summary = QLabel("No folder open. File > Open folder…")
        shrinkable(self.summary).setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.sort = QComboBox()
        self.sort.addItems(SORTS)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(500)
        self.grid.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.grid.setGridSize(QSize(THUMB_SIZE + 44, THUMB_SIZE + 44))
        self.grid.setWordWrap(True)
        self.grid.setModel(self.model)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.use_reference = QAction("Use as reference", self)
        self.use_reference.setToolTip("Make this defect-free image the model's reference image (the scores "
                                      "must be made again; File > Save model as… keeps it)")
        self.use_reference.setEnabled(False)
        self.skipped = QListWidget()
        self.skipped_box = QGroupBox("Skipped files (0)")
        box_layout = QVBoxLayout(self.skipped_box)
        box_layout.setContentsMargins(2, 2, 2, 2)
        box_layout.addWidget(self.skipped)

        controls = QHBoxLayout()
        controls.addWidget(self.filter, 1)
        controls.addWidget(self.sort, 1)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.summary)
        top_layout.addWidget(self.tree)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addLayout(controls)
        middle_layout.addWidget(self.grid)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(middle)
        splitter.addWidget(self.skipped_box)
        splitter.setSizes([170, 520, 70])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(splitter)

        self.tree.currentItemChanged.connect(self.apply_filter)
        self.filter.currentIndexChanged.connect(self._order_changed)
        self.sort.currentIndexChanged.connect(self._order_changed)
        self.grid.selectionModel().currentChanged.connect(self._grid_current)
        session.datasetChanged.connect(self._dataset_changed)
        session.resultsChanged.connect(self._results_changed)
        session.thresholdsChanged.connect(self._thresholds_changed)
        session.currentChanged.connect(lambda: self._select_path(session.current))
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.use_reference.triggered.connect(self._use_reference)
        for signal in (session.modelChanged, session.currentChanged, session.reviewsChanged):
            signal.connect(self._update_reference_action)

    # ------------------------------------------------------------------------------------------ dataset
    def _dataset_changed(self) -> None:
        index = self.session.index
        self.loader.clear()
        self.tree.clear()
        self.skipped.clear()
        if index is None:
            return
        counts = index.counts()
        labelled = "labelled" if index.has_labels else "no labels"
        self.summary.setToolTip(str(index.root))
        self.summary.setText(f"{breakable(str(index.root))} — {index.layout} layout, {len(index.records)} images ({labelled}), "
                             f"{len(index.skipped)} skipped")
        root = QTreeWidgetItem(self.tree, [f"All images ({len(index.records)})"])
        root.setData(0, Qt.ItemDataRole.UserRole, None)
        for split, by_label in counts.items():
            split_item = QTreeWidgetItem(root, [f"{split} ({sum(by_label.values())})"])
            split_item.setData(0, Qt.ItemDataRole.UserRole, (split, None))
            for label, n in sorted(by_label.items()):
                item = QTreeWidgetItem(split_item, [f"{label} ({n})"])
                item.setData(0, Qt.ItemDataRole.UserRole, (split, label))
        self.tree.expandAll()
        for s in index.skipped:
            self.skipped.addItem(f"{s.path.name} — {s.reason}")
            self.skipped.item(self.skipped.count() - 1).setToolTip(str(s.path))
        self.skipped_box.setTitle(f"Skipped files ({len(index.skipped)})")
        self.tree.setCurrentItem(root)
        self.apply_filter()

    def _results_changed(self) -> None:
        if self._score_dependent():
            self.apply_filter()
        else:
            self.grid.viewport().update()  # only the visible items ask for their data again

    def _thresholds_changed(self) -> None:
        t = self.session.thresholds
        key = (t.map_name, t.image, t.review)  # what verdicts and scores shown depend on (not the pixel one)
        if key == self._shown_for:
            return
        self._shown_for = key
        if self.filter.currentIndex() in (1, 2, 3):
            self.apply_filter()
        else:
            self.grid.viewport().update()

    def _score_dependent(self) -> bool:
        return self.sort.currentIndex() != 0 or self.filter.currentIndex() in (1, 2, 3, 7)

    # -------------------------------------------------------------------------------------- filter, sort
    def visible_records(self) -> list[ImageRecord]:
        index = self.session.index
        if index is None:
            return []
        item = self.tree.currentItem()
        scope = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        records = index.records
        if scope is not None:
            split, label = scope
            records = [r for r in records if r.split == split and (label is None or r.label == label)]
        verdicts = self.session.verdicts()
        choice = self.filter.currentIndex()
        wanted = {1: "defective", 2: "review", 3: "good"}.get(choice)
        if wanted:
            records = [r for r in records if verdicts.get(r.path) == wanted]
        elif choice == 4:
            records = [r for r in records if r.is_defective]
        elif choice == 5:
            records = [r for r in records if r.is_defective is False]
        elif choice == 6:
            records = [r for r in records if r.mask_path is not None]
        elif choice == 7:
            records = [r for r in records if r.path not in self.session.results]
        if self.sort.currentIndex() != 0:
            name = self.session.thresholds.map_name
            results = self.session.results
            missing = float("-inf") if self.sort.currentIndex() == 1 else float("inf")

            def key(r: ImageRecord) -> float:
                result = results.get(r.path)
                return result.scores.get(name, missing) if result is not None else missing
            records = sorted(records, key=key, reverse=self.sort.currentIndex() == 1)
        return records

    def _order_changed(self, *_args: object) -> None:
        """Another filter or order: show the grid from its top (the highest scores first, say), not scrolled to
        wherever the current image landed."""
        self.apply_filter()
        self.grid.scrollToTop()

    def apply_filter(self, *_args: object) -> None:
        current = self.session.current
        self.model.set_records(self.visible_records())
        if current is not None:
            self._select_path(current)

    # ------------------------------------------------------------------------------------- context menu
    def _context_menu(self, pos: QPoint) -> None:
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        self.grid.setCurrentIndex(index)  # the menu acts on the image under the mouse
        menu = QMenu(self.grid)
        menu.addAction(self.use_reference)
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    def _update_reference_action(self) -> None:
        path = self.session.current
        record = self.session.record(path) if path is not None else None
        defective = record is not None and bool(record.is_defective or self.session.reviews.get(path) == DEFECT)
        self.use_reference.setEnabled(record is not None and not defective and self.session.uses_reference())

    def _use_reference(self) -> None:
        if self.session.current is not None and self.use_reference.isEnabled():
            self.referenceRequested.emit(self.session.current)

    # ---------------------------------------------------------------------------------------- selection
    def _grid_current(self, index: QModelIndex, _previous: QModelIndex) -> None:
        if index.isValid():
            self.session.set_current(self.model.records[index.row()].path)

    def _select_path(self, path: Path | None) -> None:
        row = self.model.rows.get(path) if path is not None else None
        if row is None:
            return
        index = self.model.index(row)
        if self.grid.currentIndex() != index:
            self.grid.setCurrentIndex(index)
        self.grid.scrollTo(index)

    def select_relative(self, delta: int) -> None:
        """Next / previous image in the grid's current order (keyboard)."""
        if not self.model.records:
            return
        row = self.grid.currentIndex().row()
        row = 0 if row < 0 else min(max(row + delta, 0), len(self.model.records) - 1)
        self.grid.setCurrentIndex(self.model.index(row))
