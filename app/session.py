"""What the panels share: the open dataset, the model, the cached results and the thresholds.

Panels read from the session and call its setters; the session tells everyone through signals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.data.index import DatasetIndex, ImageRecord
from core.modelfile import ModelMeta
from core.models.registry import get_method
from core.result_table import DEFECTIVE, GOOD, ResultTable
from core.review import DEFECT, REVIEWS
from core.results import CachedResult
from core.verdicts import verdicts
from core.workflow.heldout import held_out_records


@dataclass(frozen=True)
class Thresholds:
    map_name: str = ""
    image: float = float("inf")
    pixel: float = float("inf")
    review: tuple[float, float] | None = None  # (low, high) band a person should look at
    how: str = ""  # how the image / pixel thresholds were set ("set by hand", "label-free: ...", ...)


HAND = "set by hand"
FROM_MODEL = "from the model"


class Session(QObject):
    datasetChanged = Signal()
    modelChanged = Signal()
    resultsChanged = Signal()
    thresholdsChanged = Signal()
    currentChanged = Signal()  # read `current`
    reviewsChanged = Signal()  # read `reviews`
    referenceChanged = Signal()  # read `reference`, `reference_source`, `reference_unsaved`

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.index: DatasetIndex | None = None
        self.model_path: Path | None = None
        self.meta: ModelMeta | None = None
        self.results: dict[Path, CachedResult] = {}
        self.thresholds = Thresholds()
        self.current: Path | None = None
        self.reviews: dict[Path, str] = {}  # what a person said about an image: "good" or "defect"
        self.reference: np.ndarray | None = None  # (C,S,S) in [0,1]: the model's reference image, when it has one
        self.reference_source = ""  # the image file it was set from ("": chosen in training)
        self.reference_unsaved = False  # set here and not written yet: the model file holds another one
        self._records: dict[Path, ImageRecord] = {}
        self.table = ResultTable()  # the results as columns, in the order of `scored()`
        self._verdicts: dict[Path, str] | None = None
        self._verdicts_key: tuple[object, ...] = ()  # the map, image threshold and review band they are for
        self.resultsChanged.connect(self._forget_verdicts)

    # ------------------------------------------------------------------------------------------- dataset
    def set_index(self, index: DatasetIndex) -> None:
        self.index = index
        self._records = {r.path: r for r in index.records}
        self.clear_results()
        self.current = None
        self.reviews = {}
        self.datasetChanged.emit()
        self.reviewsChanged.emit()

    def record(self, path: Path) -> ImageRecord | None:
        return self._records.get(path)

    # --------------------------------------------------------------------------------------------- model
    def set_model(self, path: Path, meta: ModelMeta) -> None:
        self.model_path, self.meta = path, meta
        self.reference, self.reference_source, self.reference_unsaved = None, "", False
        self.clear_results()
        self.thresholds = self.model_thresholds(meta.default_map)
        self.modelChanged.emit()
        self.thresholdsChanged.emit()

    def uses_reference(self) -> bool:
        """Whether the open model's method compares images with a reference image."""
        return self.meta is not None and get_method(self.meta.method).model_cls.uses_reference

    def set_reference(self, image: np.ndarray | None, source: str, unsaved: bool) -> None:
        """The open model's reference image (C,S,S) in [0,1], the file it came from, and whether the model
        file still holds another one."""
        self.reference, self.reference_source, self.reference_unsaved = image, source, unsaved
        self.referenceChanged.emit()

    @property
    def results_stale(self) -> bool:
        """The results shown were made with another reference image than the open model's."""
        return self.reference_unsaved and bool(self.results)

    def model_thresholds(self, map_name: str) -> Thresholds:
        """The thresholds stored in the model for one map (inf when it has none)."""
        assert self.meta is not None
        image = self.meta.image_threshold(map_name)
        pixel = self.meta.pixel_threshold(map_name)
        stored = self.meta.threshold(map_name, "image")
        how = f"{FROM_MODEL}: {stored.how}" if stored is not None else f"{FROM_MODEL}: none stored"
        notes = self.meta.threshold_notes(map_name)
        if notes:
            how += f" ({notes})"
        return Thresholds(map_name, float("inf") if image is None else image,
                          float("inf") if pixel is None else pixel, None, how)

    # ------------------------------------------------------------------------------------------- results
    def clear_results(self) -> None:
        self.results = {}
        self.table.clear()
        self.resultsChanged.emit()

    def expect_results(self, count: int) -> None:
        """A scoring job will add about `count` results: the table makes room for them early."""
        self.table.expect(count)

    def add_results(self, results: list[CachedResult]) -> None:
        for result in results:
            self.results[result.path] = result
        if not self.table.add(results):  # a result replaced an earlier one of the same image
            self.table.clear()
            self.table.add(list(self.results.values()))
        self.resultsChanged.emit()

    def scored(self) -> list[CachedResult]:
        return [self.results[p] for p in self.table.paths]

    def scores(self, map_name: str | None = None) -> np.ndarray:
        """Image scores of all results for a map, in the order of `scored()`."""
        return self.table.scores(map_name or self.thresholds.map_name)

    def label_codes(self) -> np.ndarray:
        """Label per row of `table` (UNKNOWN / GOOD / DEFECTIVE): a person's review where there is one, else
        the dataset's label."""
        codes = self.table.labels
        if not self.reviews:
            return codes
        codes = codes.copy()
        for path, said in self.reviews.items():
            row = self.table.rows.get(path)
            if row is not None:
                codes[row] = DEFECTIVE if said == DEFECT else GOOD
        return codes

    # ------------------------------------------------------------------------------------------- reviews
    def set_review(self, path: Path, said: str | None) -> None:
        """Record what a person said about an image ("good" / "defect"; None forgets it)."""
        if said is not None and said not in REVIEWS:
            raise ValueError(f"a review is one of {REVIEWS}, got {said!r}")
        if self.reviews.get(path) == said:
            return
        if said is None:
            self.reviews.pop(path, None)
        else:
            self.reviews[path] = said
        self.reviewsChanged.emit()

    def set_reviews(self, reviews: dict[Path, str]) -> None:
        """Replace every review (a project being opened)."""
        self.reviews = {Path(p): v for p, v in reviews.items() if v in REVIEWS}
        self.reviewsChanged.emit()

    def evaluation_results(self) -> list[CachedResult]:
        """The images metrics are computed on: the test split (MVTec) or every labelled image."""
        return [r for r in self.scored() if r.split != "train" and r.is_defective is not None]

    def reference_normals(self) -> list[CachedResult]:
        """Images to calibrate label-free thresholds on: the model's held-out training images when the
        dataset is the model's own MVTec training data, else every scored image (mostly good, by premise);
        without the images a person reviewed as defects."""
        train = [r for r in self.scored() if r.split == "train"]
        if train and self.meta is not None and self.index is not None:
            records = [self._records[r.path] for r in train if r.path in self._records]
            held = {r.path for r in held_out_records(self.meta, self.index.root, records)}
            chosen = [r for r in train if r.path in held]
            if chosen:
                return self._not_said_defect(chosen)
        return self._not_said_defect([r for r in self.scored() if r.split != "train"] or self.scored())

    def _not_said_defect(self, results: list[CachedResult]) -> list[CachedResult]:
        """A person's word counts: images reviewed as defects are no reference for normal."""
        return [r for r in results if self.reviews.get(r.path) != DEFECT] if self.reviews else results

    def verdicts(self) -> dict[Path, str]:
        """Verdict of every scored image at the current thresholds (computed once per change of the results,
        the map, the image threshold or the review band: moving the pixel threshold keeps them)."""
        t = self.thresholds
        key = (t.map_name, t.image, t.review)
        if self._verdicts is None or key != self._verdicts_key:
            self._verdicts_key = key
            scores = self.scores()
            values = verdicts(scores, self.thresholds.image, self.thresholds.review) if scores.size else []
            self._verdicts = dict(zip(self.table.paths, (str(v) for v in values)))
        return self._verdicts

    def verdict(self, path: Path) -> str | None:
        """The verdict of one image at the current thresholds (None when it is not scored)."""
        row = self.table.rows.get(path)
        if row is None:
            return None
        t = self.thresholds
        return str(verdicts(self.scores()[row:row + 1], t.image, t.review)[0])

    def _forget_verdicts(self) -> None:
        self._verdicts = None

    # ---------------------------------------------------------------------------------------- thresholds
    def set_thresholds(self, **changes: object) -> None:
        """Change some thresholds. Moving the image threshold moves an active review band with it.
        A new image or pixel value without `how` is recorded as set by hand."""
        old = self.thresholds
        moved = any(key in changes and changes[key] != getattr(old, key) for key in ("image", "pixel"))
        if moved and "how" not in changes:
            changes["how"] = HAND
        if "image" in changes and "review" not in changes and old.review is not None and np.isfinite(old.image):
            shift = float(changes["image"]) - old.image  # type: ignore[arg-type]
            changes["review"] = (old.review[0] + shift, old.review[1] + shift)
        updated = replace(self.thresholds, **changes)  # type: ignore[arg-type]
        if updated != self.thresholds:
            self.thresholds = updated
            self.thresholdsChanged.emit()

    def set_map(self, map_name: str) -> None:
        if self.meta is None or map_name == self.thresholds.map_name:
            return
        self.thresholds = self.model_thresholds(map_name)
        self.thresholdsChanged.emit()

    # ------------------------------------------------------------------------------------------- current
    def set_current(self, path: Path | None) -> None:
        if path != self.current:
            self.current = path
            self.currentChanged.emit()
