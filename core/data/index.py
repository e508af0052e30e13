"""Dataset indexing: MVTec layout or a plain (possibly nested) folder of images.

Indexing lists files and, with `verify=True`, decodes each image once so that broken files are
reported up front (in `DatasetIndex.skipped`) instead of failing in the middle of training.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.io import MIN_USEFUL_SIDE, check_image, image_hw, is_image_path
from core.progress import CancelToken, Progress, last_progress

# Files that belong to a dataset's bookkeeping, not to its images: ignored without a word.
_IGNORED_NAMES = {"thumbs.db", "desktop.ini"}
_IGNORED_STEMS = ("readme", "manifest", "license", "licence")
_PROGRESS_EVERY = 64  # files per Progress value: often enough for a GUI bar, cheap to yield


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset. `split` is "train", "test" or "unsplit"; `label` is "good",
    a defect type, or "unknown"; `mask_path` is the pixel ground truth when there is one."""

    path: Path
    split: str
    label: str
    mask_path: Path | None = None

    @property
    def is_defective(self) -> bool | None:
        """True for a defect label, False for "good", None when the label is unknown."""
        if self.label == "unknown":
            return None
        return self.label != "good"


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: Path
    reason: str


@dataclass
class DatasetIndex:
    """All usable images under `root` (layout "mvtec" or "folder"), plus the files left out."""

    root: Path
    layout: str
    records: list[ImageRecord]
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # usable but doubtful images (e.g. tiny ones), by name

    def train_records(self) -> list[ImageRecord]:
        return [r for r in self.records if r.split == "train"]

    def test_records(self) -> list[ImageRecord]:
        return [r for r in self.records if r.split == "test"]

    def defect_types(self) -> list[str]:
        """Sorted labels other than "good" and "unknown"."""
        return sorted({r.label for r in self.records if r.is_defective})

    def counts(self) -> dict[str, dict[str, int]]:
        """split -> label -> number of images."""
        out: dict[str, dict[str, int]] = {}
        for r in self.records:
            by_label = out.setdefault(r.split, {})
            by_label[r.label] = by_label.get(r.label, 0) + 1
        return out

    @property
    def has_labels(self) -> bool:
        """True when at least one image has a known label (good or a defect type)."""
        return any(r.label != "unknown" for r in self.records)


def _is_ignored(path: Path) -> bool:
    name = path.name.lower()
    if name.startswith(".") or name in _IGNORED_NAMES:
        return True
    # README.md / manifest.csv are bookkeeping; an image called "readme.png" is still an image.
    return name.startswith(_IGNORED_STEMS) and not is_image_path(path)


def _walk_files(folder: Path) -> list[Path]:
    """All non-ignored files under `folder`, recursively, sorted; hidden folders are not entered."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames if not _is_ignored(Path(f)))
    return sorted(found, key=lambda p: p.as_posix())


def _not_image_reason(path: Path) -> str:
    suffix = path.suffix.lower()
    return f"not an image file (suffix {suffix})" if suffix else "not an image file (no suffix)"


def _mvtec_candidates(root: Path) -> tuple[list[ImageRecord], list[Skipped]]:
    """Unverified records of an MVTec-layout root, plus files that cannot be records."""
    candidates: list[ImageRecord] = []
    skipped: list[Skipped] = []
    for path in _walk_files(root / "train" / "good"):
        candidates.append(ImageRecord(path, "train", "good"))
    test_dir = root / "test"
    for path in _walk_files(test_dir) if test_dir.is_dir() else []:
        rel = path.relative_to(test_dir)
        if len(rel.parts) < 2:
            skipped.append(Skipped(path, "not inside a test/<defect type>/ folder"))
            continue
        label = rel.parts[0]
        mask: Path | None = None
        if label != "good":
            # ground_truth/<type>/<same subfolders>/<stem>_mask.png
            maybe = root / "ground_truth" / rel.parent / f"{path.stem}_mask.png"
            mask = maybe if maybe.is_file() else None
        candidates.append(ImageRecord(path, "test", label, mask))
    return candidates, skipped


def _folder_label(path: Path, root: Path) -> str:
    """Label from the nearest enclosing folder (below root) named `good`, or whose parent has a
    `good` subfolder (then the folder's name is a defect type); "unknown" otherwise."""
    parts = path.parent.relative_to(root).parts
    for depth in range(len(parts), 0, -1):  # nearest folder first
        folder = root.joinpath(*parts[:depth])
        if folder.name == "good":
            return "good"
        if (folder.parent / "good").is_dir():
            return folder.name
    return "unknown"


def _folder_candidates(root: Path) -> list[ImageRecord]:
    return [ImageRecord(p, "unsplit", _folder_label(p, root)) for p in _walk_files(root)]


def iter_index_dataset(
    root: str | os.PathLike[str], verify: bool = True, cancel: CancelToken | None = None
) -> Iterator[Progress]:
    """Index `root` as a generator of Progress (phase "index"); the last value's `result` is the
    DatasetIndex. Cancelling `cancel` raises `Cancelled` between files."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Dataset folder not found: {root}. Check the path or pick another folder.")
    if not root.is_dir():
        raise NotADirectoryError(f"Dataset path {root} is a file; choose the folder that holds the images.")
    if (root / "train" / "good").is_dir():
        layout = "mvtec"
        candidates, skipped = _mvtec_candidates(root)
    else:
        layout = "folder"
        candidates, skipped = _folder_candidates(root), []

    records: list[ImageRecord] = []
    tiny: list[str] = []
    total = len(candidates)
    for step, record in enumerate(candidates, start=1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        reason = None if is_image_path(record.path) else _not_image_reason(record.path)
        if reason is None and verify:
            reason = check_image(record.path)
        if reason is None:
            records.append(record)
            hw = image_hw(record.path) if verify else None
            if hw is not None and min(hw) < MIN_USEFUL_SIDE:
                tiny.append(f"{record.path.name} ({hw[1]}x{hw[0]})")
        else:
            skipped.append(Skipped(record.path, reason))
        if step % _PROGRESS_EVERY == 0 and step < total:
            yield Progress("index", step, total)

    if not records:
        detail = ""
        if skipped:
            first = skipped[0]
            detail = f" ({len(skipped)} files skipped, first: {first.path.name}: {first.reason})"
        raise ValueError(
            f"no images found in {root}{detail}. Expected image files "
            "(.png .jpg .jpeg .bmp .tif .tiff) or an MVTec layout with train/good/."
        )
    split_rank = {"train": 0, "test": 1, "unsplit": 2}
    records.sort(key=lambda r: (split_rank[r.split], r.path.as_posix()))
    skipped.sort(key=lambda s: s.path.as_posix())
    warnings = []
    if tiny:
        warnings.append(f"{len(tiny)} images are smaller than {MIN_USEFUL_SIDE}x{MIN_USEFUL_SIDE} pixels and too "
                        f"small to show a defect: {', '.join(tiny[:5])}{' ...' if len(tiny) > 5 else ''}; "
                        "check that they are the product images you meant")
    index = DatasetIndex(root=root, layout=layout, records=records, skipped=skipped, warnings=warnings)
    message = "; ".join([f"{len(records)} images, {len(skipped)} skipped"] + warnings)
    yield Progress("index", total, total, message=message, result=index)


def index_dataset(
    root: str | os.PathLike[str], verify: bool = True, cancel: CancelToken | None = None
) -> DatasetIndex:
    """Index `root` (MVTec layout when `root/train/good` exists, else a plain folder)."""
    return last_progress(iter_index_dataset(root, verify=verify, cancel=cancel)).result


def split_normals(
    records: list[ImageRecord], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Deterministic (train, validation) split; both parts come back sorted by path.

    With `val_fraction > 0` and at least 2 records, validation gets at least 1 and at most n-1.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(records, key=lambda r: r.path.as_posix())
    n = len(ordered)
    # Keep at least one image on each side once there are two; a single image stays in train.
    n_val = min(max(round(n * val_fraction), 1), n - 1) if val_fraction > 0 and n >= 2 else 0
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(order[:n_val].tolist())
    train = [r for i, r in enumerate(ordered) if i not in val_idx]
    val = [r for i, r in enumerate(ordered) if i in val_idx]
    return train, val


def default_data_dir() -> Path:
    """`$DEFECTLAB_DATA`, else `<repo>/../shared/data` (repo = the folder above `core/`)."""
    env = os.environ.get("DEFECTLAB_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def resolve_data_root(name_or_path: str) -> Path:
    """An existing path as given, else the dataset of that name in `default_data_dir()`."""
    direct = Path(name_or_path).expanduser()
    if direct.exists():
        return direct
    base = default_data_dir()
    candidate = base / name_or_path
    if candidate.exists():
        return candidate
    if base.is_dir():
        names = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        available = ", ".join(names) if names else "none"
        hint = f"Available datasets in {base}: {available}."
    else:
        hint = f"The data folder {base} does not exist."
    raise FileNotFoundError(
        f"Dataset {name_or_path!r} is neither an existing path nor a dataset in {base}. {hint} "
        "Give a folder path, or set DEFECTLAB_DATA to the folder that holds the datasets."
    )
