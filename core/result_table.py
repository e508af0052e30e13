"""The scored results as columns (split, label, score per map, sampled pixels), appended group by group, so
that the workbench's plots and metrics over 10,000 images cost array operations, not a loop over results.
Pure numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core.results import PIXEL_BUDGET, CachedResult

UNKNOWN, GOOD, DEFECTIVE = -1, 0, 1  # codes of `labels`


class Growing:
    """A 1-D array that grows by appending (capacity doubles), viewed without copying."""

    def __init__(self, dtype: type) -> None:
        self._data = np.zeros(1024, dtype)
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        end = self.size + values.size
        if end > self._data.size:
            self.reserve(max(end, 2 * self._data.size))
        self._data[self.size:end] = values
        self.size = end

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` values now (a no-op when there is room): one copy while the array is small
        instead of doubling copies of a large one. Unused capacity costs no memory (zeroed pages are lazy)."""
        if capacity > self._data.size:
            grown = np.zeros(capacity, self._data.dtype)
            grown[:self.size] = self._data[:self.size]
            self._data = grown

    def view(self) -> np.ndarray:
        return self._data[:self.size]


class ResultTable:
    """Columns of results in the order they were added: `paths`, `train` (bool), `labels` (UNKNOWN / GOOD /
    DEFECTIVE), image scores per map (NaN where missing) and every image's pixel sample per map."""

    def __init__(self) -> None:
        self.expected_rows = 0  # how many results the running job will add (0: unknown)
        self.clear()

    def clear(self) -> None:
        self.paths: list[Path] = []
        self.rows: dict[Path, int] = {}
        self._train = Growing(bool)
        self._labels = Growing(np.int8)
        self._scores: dict[str, Growing] = {}
        # map -> (values, labels, starts, owners): pixels of row owners[k] begin at starts[k]
        self._pixels: dict[str, tuple[Growing, Growing, Growing, Growing]] = {}
        self._reserved: set[str] = set()

    def expect(self, rows: int) -> None:
        """The job now adding results will add about `rows` in all: the pixel columns are sized for them after
        the first group, so later groups never copy hundreds of megabytes at once (a visible GUI pause)."""
        self.expected_rows = max(int(rows), 0)
        self._reserved.clear()

    def _reserve_pixels(self) -> None:
        if not self.expected_rows or len(self.paths) >= self.expected_rows:
            return
        for name, columns in self._pixels.items():
            if name in self._reserved or not columns[0].size:
                continue
            self._reserved.add(name)
            per_row = columns[0].size / len(self.paths)
            for column in columns[:2]:  # values and labels: one entry per sampled pixel
                column.reserve(int(per_row * self.expected_rows * 1.1))
            for column in columns[2:]:  # starts and owners: one per row at most
                column.reserve(self.expected_rows + 1)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def train(self) -> np.ndarray:
        return self._train.view()

    @property
    def labels(self) -> np.ndarray:
        return self._labels.view()

    def add(self, results: Sequence[CachedResult]) -> bool:
        """Append new results; False (and nothing added) when one of them is already in the table."""
        if any(r.path in self.rows for r in results) or len({r.path for r in results}) != len(results):
            return False
        start = len(self.paths)
        for i, r in enumerate(results):
            self.rows[r.path] = start + i
            self.paths.append(r.path)
        self._train.append(np.array([r.split == "train" for r in results], bool))
        self._labels.append(np.array([UNKNOWN if r.is_defective is None else int(r.is_defective)
                                      for r in results], np.int8))
        names = {name for r in results for name in r.scores} | set(self._scores)
        for name in names:
            column = self._scores.get(name)
            if column is None:
                column = self._scores[name] = Growing(np.float64)
                column.append(np.full(start, np.nan))
            column.append(np.array([r.scores.get(name, np.nan) for r in results], np.float64))
        for name in {name for r in results for name in r.pixel_sample}:
            values, labels, starts, owners = self._pixels.setdefault(
                name, (Growing(np.float16), Growing(bool), Growing(np.int64), Growing(np.int32)))
            kept = [(start + i, r.pixel_sample[name], r.pixel_sample_labels) for i, r in enumerate(results)
                    if name in r.pixel_sample and r.pixel_sample_labels is not None
                    and r.pixel_sample[name].size == r.pixel_sample_labels.size]
            if kept:
                sizes = np.array([k[1].size for k in kept], np.int64)
                starts.append(values.size + np.concatenate([[0], np.cumsum(sizes)[:-1]]))
                owners.append(np.array([k[0] for k in kept], np.int32))
                values.append(np.concatenate([k[1] for k in kept]))
                labels.append(np.concatenate([k[2] for k in kept]))
        self._reserve_pixels()
        return True

    def scores(self, name: str) -> np.ndarray:
        """Image scores of one map, one per row (NaN where the map is missing)."""
        column = self._scores.get(name)
        return column.view() if column is not None else np.full(len(self.paths), np.nan)

    def pixels(self, name: str, rows: np.ndarray | None = None, budget: int = PIXEL_BUDGET
               ) -> tuple[np.ndarray, np.ndarray]:
        """(labels bool, values float32) of the sampled pixels of the rows where `rows` (bool per row) is True
        (every row when None): an even subsample of at most about `budget` pixels."""
        if name not in self._pixels:
            return np.zeros(0, bool), np.zeros(0, np.float32)
        values, labels, starts, owners = (g.view() for g in self._pixels[name])
        if rows is not None:
            chosen = int(np.count_nonzero(rows))
            share = chosen / max(len(rows), 1)
        else:
            share = 1.0
        step = max(1, int(np.ceil(values.size * share / budget)))
        pick = np.arange(0, values.size, step)
        if rows is not None:
            # How many picked pixels fall in each row's run (runs are contiguous): their owner without a search.
            ends = np.append(starts[1:], values.size)
            counts = -(-ends // step) - -(-starts // step)
            pick = pick[rows[np.repeat(owners, counts)]]
        return labels[pick], values[pick].astype(np.float32)
