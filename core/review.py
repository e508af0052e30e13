"""A person's review of the images the model flags: which images to look at (the queue), and how the model's
verdicts measure against what the person said (precision and recall on the reviewed images). Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

GOOD, DEFECT = "good", "defect"  # what a person can say about an image
REVIEWS = (GOOD, DEFECT)


def review_queue(paths: Sequence[Path], scores: np.ndarray, image_threshold: float,
                 review: tuple[float, float] | None = None) -> list[Path]:
    """The images a person should look at, most anomalous first: those scoring at or above the image threshold
    and, with a review band (low, high), those at or above its low edge."""
    scores = np.asarray(scores, dtype=np.float64)
    low = min(image_threshold, min(review)) if review is not None else image_threshold
    chosen = np.flatnonzero(np.nan_to_num(scores, nan=-np.inf) >= low)
    order = chosen[np.argsort(-scores[chosen], kind="stable")]
    return [paths[i] for i in order]


@dataclass(frozen=True)
class Measured:
    """The model's verdicts (defective iff score >= image threshold) against a person's, on the reviewed images."""

    n: int
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def text(self) -> str:
        """'12 reviewed: precision 0.83, recall 1.00 (10 defects found, 2 false alarms, 0 missed)'."""
        if not self.n:
            return "No image reviewed yet."
        def fmt(value: float | None) -> str:
            return "—" if value is None else f"{value:.2f}"
        return (f"{self.n} reviewed: precision {fmt(self.precision)}, recall {fmt(self.recall)} "
                f"({self.tp} defects found, {self.fp} false alarms, {self.fn} missed)")


def measure(reviews: Mapping[Path, str], scores: Mapping[Path, float], image_threshold: float) -> Measured:
    """Precision and recall of `score >= image_threshold` on the images a person reviewed (and that have a
    score)."""
    pairs = [(scores[p] >= image_threshold, verdict == DEFECT) for p, verdict in reviews.items() if p in scores]
    flagged = np.array([p[0] for p in pairs], bool)
    defect = np.array([p[1] for p in pairs], bool)
    return Measured(len(pairs), int((flagged & defect).sum()), int((flagged & ~defect).sum()),
                    int((~flagged & defect).sum()), int((~flagged & ~defect).sum()))
