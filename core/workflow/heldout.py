"""The held-out calibration images of a model: the normal training images its label-free thresholds were
set on. Training stores their list in the model file, so the GUI, evaluate and audit use exactly those images
and never re-derive the split with another rule."""

from __future__ import annotations

from pathlib import Path

from core.data.index import DatasetIndex, ImageRecord, split_normals
from core.modelfile import ModelMeta

LEGACY_VAL_FRACTION = 0.1  # what training used before the fraction and the list were stored


def held_out_list(index: DatasetIndex, held_out: list[ImageRecord]) -> list[str]:
    """The held-out images as paths relative to the dataset root, '/'-separated (stored in the model file)."""
    return [record.path.relative_to(index.root).as_posix() for record in held_out]


def held_out_records(meta: ModelMeta, root: Path, normals: list[ImageRecord]) -> list[ImageRecord]:
    """Which of `normals` (normal training records of the dataset at `root`) the model never trained on.

    On the model's own training data (same folder, or a moved copy holding all the stored images) these are
    exactly the stored held-out images; an older file without the list gets the split rebuilt with its
    stored fraction and seed (0.1 and 0 when it stored none). On any other dataset, every normal is unseen."""
    stored = meta.training.get("held_out")
    relative = {r.path: _relative(r.path, root) for r in normals}
    trained_on = meta.training.get("data")
    same_folder = bool(trained_on) and Path(root).resolve() == Path(trained_on).resolve()
    if isinstance(stored, list):
        wanted = set(stored)
        if same_folder or (wanted and wanted <= set(relative.values())):
            return [r for r in normals if relative[r.path] in wanted]
        return list(normals)
    if not same_folder:
        return list(normals)
    fraction = float(meta.training.get("val_fraction", LEGACY_VAL_FRACTION))
    _, held = split_normals(normals, fraction, int(meta.training.get("seed", 0)))
    return held


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None
