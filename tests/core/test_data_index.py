"""Tests for core.data.index: MVTec and plain-folder layouts, skipped files, splits, data roots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.index import (
    DatasetIndex,
    ImageRecord,
    index_dataset,
    iter_index_dataset,
    resolve_data_root,
    split_normals,
)
from core.progress import Cancelled, CancelToken


def _img(path: Path, size: tuple[int, int] = (8, 6)) -> Path:
    """Write a small grayscale image (W,H = size), creating folders as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0]), 100, np.uint8)).save(path)
    return path


def _mvtec(root: Path) -> Path:
    _img(root / "train" / "good" / "a.png")
    _img(root / "train" / "good" / "b.jpg")
    _img(root / "test" / "good" / "c.png")
    _img(root / "test" / "crack" / "d.png")
    _img(root / "test" / "crack" / "e.png")  # defective without a mask: kept, mask None
    _img(root / "test" / "dent" / "f.bmp")
    _img(root / "ground_truth" / "crack" / "d_mask.png")
    _img(root / "ground_truth" / "dent" / "f_mask.png")
    (root / "README.md").write_text("about")
    (root / "manifest.csv").write_text("image,split")
    return root


def test_mvtec_layout(tmp_path: Path) -> None:
    root = _mvtec(tmp_path / "ds")
    index = index_dataset(root)
    assert index.layout == "mvtec" and index.skipped == []
    rel = [(r.path.relative_to(root).as_posix(), r.split, r.label) for r in index.records]
    assert rel == [
        ("train/good/a.png", "train", "good"),
        ("train/good/b.jpg", "train", "good"),
        ("test/crack/d.png", "test", "crack"),
        ("test/crack/e.png", "test", "crack"),
        ("test/dent/f.bmp", "test", "dent"),
        ("test/good/c.png", "test", "good"),
    ]
    masks = {r.path.name: r.mask_path for r in index.records}
    assert masks["d.png"] == root / "ground_truth" / "crack" / "d_mask.png"
    assert masks["f.bmp"] == root / "ground_truth" / "dent" / "f_mask.png"
    assert masks["e.png"] is None and masks["c.png"] is None
    assert index.counts() == {"train": {"good": 2}, "test": {"crack": 2, "dent": 1, "good": 1}}
    assert index.defect_types() == ["crack", "dent"]
    assert len(index.train_records()) == 2 and len(index.test_records()) == 4
    assert index.has_labels


def test_broken_and_foreign_files_are_skipped(tmp_path: Path) -> None:
    root = _mvtec(tmp_path / "ds")
    (root / "train" / "good" / "empty.png").write_bytes(b"")
    good_jpeg = (root / "train" / "good" / "b.jpg").read_bytes()
    (root / "test" / "good" / "cut.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 3])
    (root / "test" / "crack" / "notes.txt").write_text("x")
    (root / "test" / "crack" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "test" / "stray.png").write_bytes((root / "test" / "good" / "c.png").read_bytes())
    index = index_dataset(root)
    reasons = {s.path.name: s.reason for s in index.skipped}
    assert reasons == {
        "empty.png": "empty file",
        "cut.jpg": "not a decodable image (corrupt or unsupported format)",
        "notes.txt": "not an image file (suffix .txt)",
        "stray.png": "not inside a test/<defect type>/ folder",
    }
    assert len(index.records) == 6
    # Without verification the broken-but-named-like-images files are kept; foreign ones still not.
    unverified = index_dataset(root, verify=False)
    assert {s.path.name for s in unverified.skipped} == {"notes.txt", "stray.png"}
    assert len(unverified.records) == 8


def test_plain_folder_nested_without_labels(tmp_path: Path) -> None:
    root = tmp_path / "line3"
    _img(root / "b.png")
    _img(root / "lot1" / "a.png")
    _img(root / "lot1" / "deeper" / "прокат_ü.png")
    index = index_dataset(root)
    assert index.layout == "folder"
    assert [r.path.relative_to(root).as_posix() for r in index.records] == [
        "b.png",
        "lot1/a.png",
        "lot1/deeper/прокат_ü.png",
    ]
    assert {(r.split, r.label) for r in index.records} == {("unsplit", "unknown")}
    assert not index.has_labels and index.defect_types() == []
    assert index.records[0].is_defective is None


def test_plain_folder_with_good_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "inspect"
    _img(root / "good" / "g1.png")
    _img(root / "good" / "sub" / "g2.png")  # nearest labelled folder is good/
    _img(root / "scratch" / "s1.png")
    _img(root / "loose.png")
    _img(root / "lotB" / "good" / "g3.png")
    _img(root / "lotB" / "dent" / "d1.png")
    _img(root / "lotC" / "x.png")  # lotC's parent has good/, so lotC counts as a defect type
    labels = {r.path.name: r.label for r in index_dataset(root).records}
    assert labels == {
        "g1.png": "good",
        "g2.png": "good",
        "s1.png": "scratch",
        "loose.png": "unknown",
        "g3.png": "good",
        "d1.png": "dent",
        "x.png": "lotC",
    }
    index = index_dataset(root)
    assert index.has_labels and index.defect_types() == ["dent", "lotC", "scratch"]
    assert index.counts()["unsplit"]["good"] == 3


def test_missing_root_file_root_and_empty(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        index_dataset(tmp_path / "nowhere")
    _img(tmp_path / "one.png")
    with pytest.raises(NotADirectoryError):
        index_dataset(tmp_path / "one.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("nothing here")
    with pytest.raises(ValueError, match="no images found in"):
        index_dataset(empty)


def test_index_progress_and_cancel(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(70):
        _img(root / f"{i:03d}.png", size=(2, 2))
    values = list(iter_index_dataset(root))
    assert values[-1].step == values[-1].total == 70
    assert isinstance(values[-1].result, DatasetIndex) and len(values) == 2
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        index_dataset(root, cancel=token)


def _records(n: int) -> list[ImageRecord]:
    return [ImageRecord(Path(f"/d/{i:02d}.png"), "train", "good") for i in range(n)]


def test_split_normals_deterministic_and_disjoint() -> None:
    records = _records(20)
    train, val = split_normals(records, val_fraction=0.2, seed=3)
    assert len(val) == 4 and len(train) == 16
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(records)
    # Input order does not matter, the seed does.
    assert split_normals(list(reversed(records)), 0.2, seed=3) == (train, val)
    assert split_normals(records, 0.2, seed=4) != (train, val)


def test_split_normals_small_sets() -> None:
    assert [len(part) for part in split_normals(_records(2), 0.1)] == [1, 1]
    assert [len(part) for part in split_normals(_records(1), 0.1)] == [1, 0]
    assert [len(part) for part in split_normals(_records(5), 0.0)] == [5, 0]
    with pytest.raises(ValueError, match="val_fraction"):
        split_normals(_records(5), 1.0)


def test_resolve_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiles").mkdir()
    monkeypatch.setenv("DEFECTLAB_DATA", str(tmp_path))
    assert resolve_data_root("tiles") == tmp_path / "tiles"
    assert resolve_data_root(str(tmp_path / "tiles")) == tmp_path / "tiles"
    with pytest.raises(FileNotFoundError, match="tiles") as info:
        resolve_data_root("no_such_dataset_xyz")
    assert "DEFECTLAB_DATA" in str(info.value)


def _real_root(name: str) -> Path:
    try:
        return resolve_data_root(name)
    except FileNotFoundError:
        pytest.skip(f"real dataset {name} is not available")


def test_real_magnetic_tile() -> None:
    index = index_dataset(_real_root("magnetic_tile"))
    assert index.layout == "mvtec" and index.skipped == []
    assert index.counts() == {
        "train": {"good": 759},
        "test": {"good": 193, "blowhole": 115, "break": 85, "crack": 57, "fray": 32, "uneven": 103},
    }
    defective = [r for r in index.test_records() if r.is_defective]
    assert len(defective) == 392 and all(r.mask_path is not None and r.mask_path.is_file() for r in defective)


def test_real_bsdata_pitting() -> None:
    index = index_dataset(_real_root("bsdata_pitting"))
    assert index.skipped == []
    assert index.counts() == {"train": {"good": 530}, "test": {"good": 140, "pitting": 167}}
    assert all(r.mask_path is not None for r in index.test_records() if r.is_defective)
