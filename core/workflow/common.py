"""Helpers shared by the train / evaluate / predict workflows."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from core.data.index import ImageRecord
from core.data.io import ImageReadError, read_image
from core.progress import CancelToken, Progress

LOAD_BATCH = 8  # images read and scored together


def read_batches(records: list[ImageRecord], cancel: CancelToken
                 ) -> Iterator[tuple[list[ImageRecord], list[np.ndarray], list[tuple[Path, str]]]]:
    """Yield (records, images (C,H,W) float32, unreadable [(path, reason)]) in batches of LOAD_BATCH.

    A file that became unreadable after indexing, or too large to decode, is reported, not fatal.
    """
    for start in range(0, len(records), LOAD_BATCH):
        cancel.raise_if_cancelled()
        ok_records, images, failed = [], [], []
        for record in records[start:start + LOAD_BATCH]:
            try:
                images.append(read_image(record.path))
                ok_records.append(record)
            except ImageReadError as exc:
                failed.append((record.path, exc.reason))
            except MemoryError:
                failed.append((record.path, "out of memory while decoding; lower DEFECTLAB_MAX_PIXELS or "
                                            "use a machine with more memory"))
        yield ok_records, images, failed


def skipped_message(failed: list[tuple[Path, str]]) -> str:
    return "; ".join(f"skipped {path.name}: {reason}" for path, reason in failed)


def final(phase: str, total: int, message: str, result: object) -> Progress:
    return Progress(phase, total, total, message=message, result=result)
