"""Tests for core.data.demo: the procedurally generated MVTec-layout demo datasets."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.data import demo
from core.data.demo import DEFECT_TYPES, DEMO_CATEGORIES, ENV_VAR, MARKER, demo_dataset, make_demo_dataset

SMALL = dict(n_train=4, n_test_good=3, n_test_defect=8, size=48)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _small_maker(calls: list[str]):
    """Stand-in for make_demo_dataset with tiny defaults, counting calls (keeps tests fast)."""
    real = make_demo_dataset

    def make(root: Path, category: str) -> Path:
        calls.append(category)
        return real(root, category, **SMALL)

    return make


@pytest.mark.parametrize("category", DEMO_CATEGORIES)
def test_layout_and_counts(tmp_path: Path, category: str) -> None:
    out = make_demo_dataset(tmp_path, category, **SMALL)
    assert out == tmp_path / category
    assert len(list((out / "train/good").glob("*.png"))) == 4
    assert sorted(p.name for p in (out / "test/good").glob("*.png")) == ["000.png", "001.png", "002.png"]
    for kind in DEFECT_TYPES:  # 8 defects spread evenly over 4 types
        images = sorted(p.name for p in (out / "test" / kind).glob("*.png"))
        masks = sorted(p.name for p in (out / "ground_truth" / kind).glob("*.png"))
        assert images == ["000.png", "001.png"]
        assert masks == ["000_mask.png", "001_mask.png"]
    assert (out / "README.md").is_file() and (out / MARKER).is_file()
    # Nothing half-built is left next to the dataset.
    assert [p.name for p in tmp_path.iterdir()] == [category]

    image = cv2.imread(str(out / "test/good/000.png"), cv2.IMREAD_UNCHANGED)
    expected = (48, 48) if category == "metal" else (48, 48, 3)
    assert image.dtype == np.uint8 and image.shape == expected
    mask = cv2.imread(str(out / "ground_truth/crack/000_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.shape == (48, 48)
    assert set(np.unique(mask)) == {0, 255}


def test_manifest(tmp_path: Path) -> None:
    out = make_demo_dataset(tmp_path, "fabric", **SMALL)
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 + 3 + 8
    for row in rows:
        assert (out / row["image"]).is_file()
        assert (row["label"] == "1") == (row["defect_type"] != "good")
        assert (out / row["mask"]).is_file() if row["label"] == "1" else row["mask"] == ""
    assert {r["defect_type"] for r in rows} == {"good", *DEFECT_TYPES}


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    a = _files(make_demo_dataset(tmp_path / "a", "tiles", **SMALL))
    b = _files(make_demo_dataset(tmp_path / "b", "tiles", **SMALL))
    c = _files(make_demo_dataset(tmp_path / "c", "tiles", **{**SMALL, "seed": 1}))
    assert a == b
    assert a.keys() == c.keys()
    assert a["train/good/000.png"] != c["train/good/000.png"]
    assert a["ground_truth/spot/000_mask.png"] != c["ground_truth/spot/000_mask.png"]


@pytest.mark.parametrize("category", ["fabric", "metal"])
def test_saved_masks_match_changed_pixels(tmp_path: Path, category: str) -> None:
    """After 8-bit quantisation, the mask is still exactly the set of changed pixels."""
    out = make_demo_dataset(tmp_path, category, **SMALL)
    make_texture, channels = demo._TEXTURES[category]
    for i in range(SMALL["n_test_defect"]):
        kind, j = DEFECT_TYPES[i % 4], i // 4
        # Same generator stream as the generator uses: the clean image before the defect.
        clean = make_texture((48, 48), demo._rng(0, category, 2, i), channels=channels)
        clean_png = cv2.imdecode(np.frombuffer(demo._png(clean), np.uint8), cv2.IMREAD_UNCHANGED)
        saved = cv2.imread(str(out / f"test/{kind}/{j:03d}.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / f"ground_truth/{kind}/{j:03d}_mask.png"), cv2.IMREAD_UNCHANGED) > 0
        change = np.abs(saved.astype(int) - clean_png.astype(int))
        change = change if change.ndim == 2 else change.max(axis=2)
        assert mask.any()
        assert (change[~mask] == 0).all()
        assert (change[mask] >= 7).all()  # >= 0.03 of the range survives rounding


def test_make_replaces_existing_dataset(tmp_path: Path) -> None:
    make_demo_dataset(tmp_path, "metal", **SMALL)
    (tmp_path / "metal" / "stray.txt").write_text("old")
    out = make_demo_dataset(tmp_path, "metal", **{**SMALL, "n_train": 2})
    assert not (out / "stray.txt").exists()
    assert len(list((out / "train/good").glob("*.png"))) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["metal"]


def test_crash_leaves_no_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo, "_readme", boom)  # fails after all images were written
    with pytest.raises(RuntimeError):
        make_demo_dataset(tmp_path, "fabric", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_unknown_category(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_demo_dataset(tmp_path, "wood")
    with pytest.raises(ValueError):
        demo_dataset("wood", root=tmp_path)


def test_demo_dataset_generates_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(demo, "make_demo_dataset", _small_maker(calls))
    first = demo_dataset("fabric", root=tmp_path)
    assert first == tmp_path / "fabric" and calls == ["fabric"]
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*")}
    second = demo_dataset("fabric", root=tmp_path)
    assert second == first and calls == ["fabric"]
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*")} == stamps


def test_demo_dataset_regenerates_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(demo, "make_demo_dataset", _small_maker(calls))
    (tmp_path / "tiles" / "train").mkdir(parents=True)  # e.g. left by hand, no marker
    out = demo_dataset("tiles", root=tmp_path)
    assert calls == ["tiles"] and (out / MARKER).is_file()


def test_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(demo, "make_demo_dataset", _small_maker(calls))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache"))
    out = demo_dataset("metal")
    assert out == tmp_path / "cache" / "metal" and (out / MARKER).is_file()


def test_default_root_without_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    root = demo.default_demo_root()
    assert root.parts[-2:] == ("demo", "v1") and "defectlab" in str(root)
