"""Threshold tuning: image-score and pixel histograms with draggable thresholds, an optional review band, live
verdict counts, confusion matrix, precision/recall/F1, ROC and PR curves, label-free and F1-optimal buttons.

Everything a threshold move touches is computed from cached arrays (no maps are recomputed)."""

from __future__ import annotations

import numpy as np
from app.pgconfig import pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.histogram import ThresholdHistogram
from app.session import Session
from app.widgets import shrinkable
from core.metrics import f1_at, f1_max, normal_quantile_threshold, pr_curve, roc_curve
from core.result_table import DEFECTIVE, UNKNOWN, ResultTable
from core.results import pixel_sample
from core.verdicts import DEFECTIVE as DEFECTIVE_VERDICT
from core.verdicts import GOOD, REVIEW, verdict_counts, verdicts

PIXEL_FALSE_POSITIVE_RATE = 0.001  # label-free pixel threshold: share of normal pixels flagged
CURVE_POINTS = 800  # ROC / PR curves are drawn with at most this many points (the plot repaints on every move)


def thin(x: np.ndarray, y: np.ndarray, most: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th point of a curve (first and last kept), so that drawing it costs the same at 10,000 images."""
    if len(x) <= most:
        return x, y
    pick = np.unique(np.linspace(0, len(x) - 1, most).round().astype(int))
    return x[pick], y[pick]


class ThresholdPanel(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.scores = np.zeros(0)
        self.labels: np.ndarray | None = None  # bool per image of `scores`, when every one is labelled
        self.known = np.zeros(0, dtype=bool)  # per image of `scores`: labelled, or reviewed by a person
        self.known_labels = np.zeros(0, dtype=bool)  # defective? for the `known` images
        self.pixel_labels = np.zeros(0, dtype=bool)
        self.pixel_values = np.zeros(0, dtype=np.float32)

        self.map_choice = QComboBox()
        self.image_hist = ThresholdHistogram("Image scores")
        self.pixel_hist = ThresholdHistogram("Pixel values (sample)", log_y=True)
        self.image_value = QDoubleSpinBox()
        self.pixel_value = QDoubleSpinBox()
        for box in (self.image_value, self.pixel_value):
            box.setDecimals(6)
            box.setRange(-1e9, 1e9)
            box.setKeyboardTracking(False)
        self.review = QCheckBox("Review band")
        self.review.setToolTip("Images scoring inside the orange band go to a person; drag its edges.")
        self.target_frr = QDoubleSpinBox()
        self.target_frr.setSuffix(" %")
        self.target_frr.setRange(0.01, 50.0)
        self.target_frr.setValue(1.0)
        self.label_free = QPushButton("Label-free calibration")
        self.label_free.setToolTip("Image threshold at the target false-reject rate on held-out normal images; "
                                   f"pixel threshold flagging {100 * PIXEL_FALSE_POSITIVE_RATE:g}% of their pixels.")
        self.f1_button = QPushButton("F1-optimal")
        self.f1_button.setToolTip("Thresholds with the best F1 on the labelled images (needs labels).")
        self.reset = QPushButton("Model's thresholds")
        self.counts = QLabel("No results yet: train or open a model.")
        self.counts.setWordWrap(True)
        self.how = QLabel("")
        shrinkable(self.how).setWordWrap(True)
        self.how.setToolTip("How the thresholds in use were set; saved in projects and reports.")
        self.confusion = QTableWidget(2, 2)
        self.confusion.setHorizontalHeaderLabels(["pred. good", "pred. defect"])
        self.confusion.setVerticalHeaderLabels(["good", "defective"])
        self.confusion.setToolTip("Rows: labels; columns: verdicts at the image threshold.")
        self.confusion.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.confusion.setFixedHeight(82)
        self.confusion.horizontalHeader().setStretchLastSection(True)
        self.metrics = QLabel("")
        self.metrics.setWordWrap(True)
        self.roc = pg.PlotWidget(title="ROC (images)")
        self.roc.setLabels(bottom="false positive rate", left="true positive rate")
        self.pr = pg.PlotWidget(title="Precision-recall (images)")
        self.pr.setLabels(bottom="recall", left="precision")
        self.roc_curve = self.roc.plot(pen=pg.mkPen("#1f77b4", width=2), antialias=False)
        self.pr_curve = self.pr.plot(pen=pg.mkPen("#1f77b4", width=2), antialias=False)
        self.roc_marker = pg.ScatterPlotItem(size=11, brush="#00a5ff", pen="w")
        self.pr_marker = pg.ScatterPlotItem(size=11, brush="#00a5ff", pen="w")
        self.roc.addItem(self.roc_marker)
        self.pr.addItem(self.pr_marker)
        for plot in (self.roc, self.pr):
            plot.setXRange(0, 1)
            plot.setYRange(0, 1.02)
            plot.setMinimumHeight(150)

        top = QHBoxLayout()
        top.addWidget(QLabel("Map"))
        top.addWidget(self.map_choice)
        top.addWidget(QLabel("Image threshold"))
        top.addWidget(self.image_value)
        top.addWidget(QLabel("Pixel threshold"))
        top.addWidget(self.pixel_value)
        top.addWidget(self.review)
        top.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Target false-reject rate"))
        buttons.addWidget(self.target_frr)
        buttons.addWidget(self.label_free)
        buttons.addWidget(self.f1_button)
        buttons.addWidget(self.reset)
        buttons.addStretch(1)
        grid = QGridLayout()
        grid.addWidget(self.image_hist, 0, 0)
        grid.addWidget(self.pixel_hist, 0, 1)
        grid.addWidget(self.roc, 0, 2)
        grid.addWidget(self.pr, 0, 3)
        side_widget = QWidget()
        side = QVBoxLayout(side_widget)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.counts)
        side.addWidget(self.how)
        side.addWidget(self.confusion)
        side.addWidget(self.metrics)
        side.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(grid, 5)
        side_scroll = QScrollArea()  # a short dock scrolls the text instead of piling it onto the table
        side_scroll.setWidget(side_widget)
        side_scroll.setWidgetResizable(True)
        side_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body.addWidget(side_scroll, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addLayout(body, 1)

        self.map_choice.currentTextChanged.connect(self._map_chosen)
        self.image_hist.thresholdMoved.connect(lambda v: session.set_thresholds(image=v))
        self.pixel_hist.thresholdMoved.connect(lambda v: session.set_thresholds(pixel=v))
        self.image_value.valueChanged.connect(lambda v: session.set_thresholds(image=float(v)))
        self.pixel_value.valueChanged.connect(lambda v: session.set_thresholds(pixel=float(v)))
        self.image_hist.reviewMoved.connect(lambda band: session.set_thresholds(review=band))
        self.review.toggled.connect(self._review_toggled)
        self.label_free.clicked.connect(self.calibrate_label_free)
        self.f1_button.clicked.connect(self.f1_optimal)
        self.reset.clicked.connect(self._reset)
        session.modelChanged.connect(self._model_changed)
        # New results rebuild the plots in event-loop turns of their own (coalesced): the image scores in one,
        # the pixel sample in the next, so a group of results arriving, the rebuild and the repaints never make
        # one long stall. Reading the panel (calibration, F1) completes a pending rebuild first.
        self._rebuild_due = False
        self._pixels_due = False
        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.timeout.connect(self._rebuild_scores_if_due)
        self._pixel_timer = QTimer(self)
        self._pixel_timer.setSingleShot(True)
        self._pixel_timer.timeout.connect(self._rebuild_pixels_if_due)
        session.resultsChanged.connect(self._results_changed)
        session.thresholdsChanged.connect(self.update_thresholds)
        session.reviewsChanged.connect(self.rebuild)
        self._enable()

    # ---------------------------------------------------------------------------------------- rebuilding
    def _model_changed(self) -> None:
        meta = self.session.meta
        self.map_choice.blockSignals(True)
        self.map_choice.clear()
        if meta is not None:
            self.map_choice.addItems(list(meta.map_names))
            self.map_choice.setCurrentText(self.session.thresholds.map_name)
        self.map_choice.blockSignals(False)
        self.rebuild()

    def _map_chosen(self, name: str) -> None:
        if name:
            self.session.set_map(name)
            self.rebuild()

    def _results_changed(self) -> None:
        self._rebuild_due = True
        self._rebuild_timer.start(0)

    def _rebuild_if_due(self) -> None:
        if self._rebuild_due or self._pixels_due:
            self.rebuild()

    def _rebuild_scores_if_due(self) -> None:
        if self._rebuild_due:
            self._rebuild_scores()
            self.update_thresholds()
            self._pixels_due = True
            self._pixel_timer.start(0)

    def _rebuild_pixels_if_due(self) -> None:
        if self._pixels_due and not self._rebuild_due:
            self._rebuild_pixels()
            self.update_thresholds()

    def rebuild(self) -> None:
        """Recompute the cached arrays and curves after new results or another map."""
        self._rebuild_scores()
        self._rebuild_pixels()
        self.update_thresholds()

    def _shown(self) -> tuple[str, ResultTable, np.ndarray]:
        """(map name, the session's table, rows shown): test images, or every image of a train-only folder."""
        table = self.session.table
        shown = ~table.train if not table.train.all() else np.ones(len(table), bool)
        return self.session.thresholds.map_name, table, shown

    def _rebuild_scores(self) -> None:
        """Image scores, labels, the image histogram and the curves."""
        self._rebuild_due = False
        name, table, shown = self._shown()
        self.scores = table.scores(name)[shown]
        flags = self.session.label_codes()[shown]
        self.labels = flags == DEFECTIVE if flags.size and (flags != UNKNOWN).all() else None
        self.known = flags != UNKNOWN
        self.known_labels = flags[self.known] == DEFECTIVE
        known_scores = self.scores[self.known]
        self.image_hist.set_groups({"good": known_scores[~self.known_labels],
                                    "defective": known_scores[self.known_labels],
                                    "unlabelled": self.scores[~self.known]})
        self._curves()
        self._enable()

    def _rebuild_pixels(self) -> None:
        """The pixel sample of the shown images and its histogram."""
        self._pixels_due = False
        name, table, shown = self._shown()
        evaluation = shown & (table.labels != UNKNOWN)
        self.pixel_labels, self.pixel_values = table.pixels(name, evaluation)
        if not evaluation.any():  # a folder without labels (an inspection): its pixels, unlabelled
            _, self.pixel_values = table.pixels(name, shown)
            self.pixel_labels = np.zeros(self.pixel_values.size, dtype=bool)
        has_pixel_truth = self.pixel_labels.any()
        if has_pixel_truth:
            self.pixel_hist.set_groups({"good": self.pixel_values[~self.pixel_labels],
                                        "defective": self.pixel_values[self.pixel_labels]})
        else:
            self.pixel_hist.set_groups({"unlabelled": self.pixel_values})

    def _has_both_classes(self) -> bool:
        return bool(self.known_labels.any()) and bool((~self.known_labels).any())

    def _curves(self) -> None:
        if self._has_both_classes():
            scores = self.scores[self.known]
            fpr, tpr, _ = roc_curve(self.known_labels, scores)
            precision, recall, _ = pr_curve(self.known_labels, scores)
            self.roc_curve.setData(*thin(fpr, tpr))
            self.pr_curve.setData(*thin(recall, precision))
            self.roc.setTitle(f"ROC ({scores.size} images)")
        else:
            self.roc_curve.setData([], [])
            self.pr_curve.setData([], [])
            missing = "defective" if not self.known_labels.any() else "good"
            self.roc.setTitle(f"ROC: no {missing} image yet")
            self.roc.setToolTip(f"The ROC needs labelled or reviewed good and defective images; no {missing} one "
                                "is known yet.")

    def _enable(self) -> None:
        has = self.scores.size > 0
        for widget in (self.image_value, self.pixel_value, self.review, self.label_free, self.reset,
                       self.map_choice):
            widget.setEnabled(has)
        self.f1_button.setEnabled(self._has_both_classes())

    # ------------------------------------------------------------------------------------- live updates
    def update_thresholds(self) -> None:
        if self._rebuild_due:
            self.rebuild()  # it updates the thresholds too
            return
        t = self.session.thresholds
        if t.map_name and self.map_choice.currentText() != t.map_name:
            self.map_choice.blockSignals(True)
            self.map_choice.setCurrentText(t.map_name)
            self.map_choice.blockSignals(False)
        self.how.setText(f"Thresholds: {t.how}" if t.how else "")
        for box, value in ((self.image_value, t.image), (self.pixel_value, t.pixel)):
            if np.isfinite(value) and abs(box.value() - value) > 1e-12:
                box.blockSignals(True)
                box.setSingleStep(max(abs(value) / 50, 1e-6))
                box.setValue(value)
                box.blockSignals(False)
        self.image_hist.set_threshold(t.image)
        self.pixel_hist.set_threshold(t.pixel)
        self.image_hist.set_review(t.review)
        self.review.blockSignals(True)
        self.review.setChecked(t.review is not None)
        self.review.blockSignals(False)
        if not self.scores.size:
            self.counts.setText("No results yet: train a model or open one (File > Open model…).")
            self.metrics.setText("")
            return
        counts = verdict_counts(self.scores, t.image, t.review)
        text = (f"<b>{self.scores.size}</b> images — good <b>{counts['good']}</b>, "
                f"defective <b>{counts['defective']}</b>")
        if t.review is not None:
            text += f", review <b>{counts['review']}</b>"
        self.counts.setText(text)
        self._confusion_and_metrics(t.image, t.pixel)

    def _confusion_and_metrics(self, image_t: float, pixel_t: float) -> None:
        lines = []
        if self._has_both_classes():
            scores = self.scores[self.known]
            m = f1_at(self.known_labels, scores, image_t)
            self._fill_confusion(scores)
            normals = m["tn"] + m["fp"]
            frr = m["fp"] / normals if normals else 0.0
            lines.append(f"Images ({scores.size} labelled or reviewed), at the image threshold: precision "
                         f"{m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}, false-reject rate "
                         f"{frr:.1%}")
            fpr = m["fp"] / normals if normals else 0.0
            self.roc_marker.setData([fpr], [m["recall"]])
            self.pr_marker.setData([m["recall"]], [m["precision"]])
        else:
            self.confusion.clearContents()
            self.roc_marker.setData([], [])
            self.pr_marker.setData([], [])
            lines.append("Confusion matrix and precision/recall need labelled good and defective images.")
        if self.pixel_labels.any() and np.isfinite(pixel_t):
            p = f1_at(self.pixel_labels, self.pixel_values, pixel_t)
            lines.append(f"Pixels (sample of {self.pixel_values.size}): precision {p['precision']:.3f}, "
                         f"recall {p['recall']:.3f}, F1 {p['f1']:.3f}")
        self.metrics.setText("<br>".join(lines))

    def _fill_confusion(self, scores: np.ndarray) -> None:
        """Labels (rows) against the verdicts the counts show (columns): with a review band, its images get a
        column of their own, so the matrix and the counts always agree."""
        t = self.session.thresholds
        columns = [GOOD, DEFECTIVE_VERDICT] if t.review is None else [GOOD, REVIEW, DEFECTIVE_VERDICT]
        if self.confusion.columnCount() != len(columns):
            self.confusion.setColumnCount(len(columns))
            self.confusion.setHorizontalHeaderLabels([{GOOD: "pred. good", REVIEW: "review",
                                                       DEFECTIVE_VERDICT: "pred. defect"}[c] for c in columns])
        said = verdicts(scores, t.image, t.review)
        for row, label in enumerate((False, True)):
            for col, column in enumerate(columns):
                item = QTableWidgetItem(str(int(np.count_nonzero((said == column) & (self.known_labels == label)))))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.confusion.setItem(row, col, item)

    # ------------------------------------------------------------------------------------------- buttons
    def _review_toggled(self, on: bool) -> None:
        t = self.session.thresholds
        if not on:
            self.session.set_thresholds(review=None)
            return
        spread = float(np.nanstd(self.scores)) if self.scores.size else 0.0
        width = spread / 2 if spread > 0 else abs(t.image) * 0.1 or 1e-3
        self.session.set_thresholds(review=(t.image - width / 2, t.image + width / 2))

    def calibrate_label_free(self) -> None:
        """Thresholds from normal reference images only (no labels used)."""
        self._rebuild_if_due()
        reference = self.session.reference_normals()
        name = self.session.thresholds.map_name
        scores = np.array([r.scores[name] for r in reference if name in r.scores])
        if not scores.size:
            return
        rate = self.target_frr.value() / 100
        changes: dict[str, object] = {"image": normal_quantile_threshold(scores, rate)}
        how = f"label-free: image threshold at {rate:.2%} false-reject rate on {scores.size} normal images"
        _, pixels = pixel_sample(reference, name, labelled_only=False)
        if pixels.size:
            changes["pixel"] = normal_quantile_threshold(pixels, PIXEL_FALSE_POSITIVE_RATE)
            how += f", pixel threshold flagging {PIXEL_FALSE_POSITIVE_RATE:.1%} of their pixels"
        self.session.set_thresholds(how=how, **changes)

    def f1_optimal(self) -> None:
        self._rebuild_if_due()
        if not self._has_both_classes():
            return
        scores = self.scores[self.known]
        changes: dict[str, object] = {"image": f1_max(self.known_labels, scores)[1]}
        reviewed = sum(self.session.table.rows.get(p) is not None for p in self.session.reviews)
        how = f"F1-optimal on {scores.size} labelled images" + (f" ({reviewed} reviewed by a person)"
                                                                 if reviewed else "")
        if self.pixel_labels.any():
            changes["pixel"] = f1_max(self.pixel_labels, self.pixel_values)[1]
            how += f", pixel threshold F1-optimal on a sample of {self.pixel_values.size} pixels"
        self.session.set_thresholds(how=how, **changes)

    def _reset(self) -> None:
        if self.session.meta is not None:
            t = self.session.model_thresholds(self.session.thresholds.map_name)
            self.session.set_thresholds(image=t.image, pixel=t.pixel, review=None, how=t.how)
