"""Tests for core.result_store: maps on disk at full resolution, the summary saved and reloaded, and every reason
to refuse stale results (another model, another folder, an image changed, an incomplete run)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.data.index import ImageRecord
from core.inference import ImageResult
from core.result_store import SUMMARY, ResultStore, load_maps
from core.results import PIXELS_PER_IMAGE


def scored(tmp_path: Path, n: int = 3) -> tuple[list[ImageRecord], list[ImageResult]]:
    root = tmp_path / "data"
    root.mkdir()
    records, results = [], []
    rng = np.random.default_rng(0)
    for i in range(n):
        path = root / f"{i}.png"
        cv2.imwrite(str(path), np.full((300, 500), i * 20, np.uint8))
        maps = {"l2": rng.random((300, 500)).astype(np.float32), "ssim": rng.random((300, 500)).astype(np.float32)}
        records.append(ImageRecord(path, "unsplit", "unknown"))
        results.append(ImageResult(path, "unknown", float(i), "good", {"l2": float(i), "ssim": 2.0 * i}, maps,
                                   rng.random((1, 300, 500)).astype(np.float32)))
    return records, results


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"model bytes")
    return path


def test_maps_go_to_disk_at_full_resolution_and_come_back(tmp_path: Path, model: Path) -> None:
    records, results = scored(tmp_path)
    store = ResultStore.open(model, tmp_path / "data", base=tmp_path / "store")
    cached = [store.compact(r, rec, keep_maps=True) for r, rec in zip(results, records)]
    assert all(c.maps == {} and c.reconstruction is None and c.maps_file.is_file() for c in cached)
    assert cached[0].pixel_sample["l2"].dtype == np.float16 and cached[0].pixel_sample["l2"].size == PIXELS_PER_IMAGE
    loaded = load_maps(cached[1])
    assert loaded.maps["l2"].shape == (300, 500) and loaded.maps["l2"].dtype == np.float32
    np.testing.assert_allclose(loaded.maps["l2"], results[1].maps["l2"], atol=1e-3)
    assert loaded.reconstruction.shape == (300, 500, 1) and loaded.reconstruction.dtype == np.uint8
    assert oct(cached[0].maps_file.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_summary_reloads_only_for_the_same_model_folder_and_images(tmp_path: Path, model: Path) -> None:
    records, results = scored(tmp_path)
    store = ResultStore.open(model, tmp_path / "data", base=tmp_path / "store")
    cached = [store.compact(r, rec, keep_maps=True) for r, rec in zip(results, records)]
    assert store.load(records) is None  # nothing saved yet
    store.save(cached, complete=False)
    assert store.load(records) is None  # a cancelled run is not reused
    store.save(cached, complete=True)
    assert (store.folder / SUMMARY).is_file() and store.saved_at()
    again = ResultStore.open(model, tmp_path / "data" / ".." / "data", base=tmp_path / "store").load(records)
    assert again is not None and [r.scores for r in again] == [c.scores for c in cached]
    np.testing.assert_array_equal(again[2].pixel_sample["ssim"], cached[2].pixel_sample["ssim"])
    assert load_maps(again[0]).maps["ssim"].shape == (300, 500)
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"other model bytes")
    assert ResultStore.open(other, tmp_path / "data", base=tmp_path / "store").load(records) is None
    cv2.imwrite(str(records[1].path), np.full((300, 500), 255, np.uint8))  # the image changed
    os.utime(records[1].path, ns=(1, 1))
    assert store.load(records) is None


def test_pngs_are_readable_by_others(tmp_path: Path) -> None:
    from core.data.io import write_png_atomic  # noqa: PLC0415

    write_png_atomic(tmp_path / "overlay.png", np.zeros((4, 4, 3), np.uint8))
    assert (tmp_path / "overlay.png").stat().st_mode & 0o777 == 0o666 & ~current_umask()
