"""Reports from results already scored (the GUI's cache) with thresholds set by hand: verdicts, regions at full
size, the thresholds and how they were set, unreadable images skipped, and a partial report after cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.results import CachedResult
from core.data.io import write_png_atomic
from core.modelfile import ModelMeta
from core.progress import CancelToken, last_progress
from core.report import read_report
from core.report.from_session import full_size_map, iter_session_report, session_run_info

META = ModelMeta("ae-ssim", "fast", {}, 1, 64, "ssim", ["ssim", "l2"],
                 thresholds={"ssim": {"image": {"value": 0.5, "how": "label-free: 1% of 10 normals"},
                                      "pixel": {"value": 0.4, "how": "label-free: pixels"}}},
                 training={"data": "/data/tiles"})


def _results(folder: Path, n: int = 4) -> list[CachedResult]:
    """n 128 px images; image k has a bright 32 px square in its (64 px) ssim map when k is odd."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        path = folder / f"{k:02d}.png"
        write_png_atomic(path, np.full((128, 128), 120, np.uint8))
        small = np.zeros((64, 64), np.float16)
        if k % 2:
            small[16:32, 16:32] = 1.0
        out.append(CachedResult(path, "unknown", "unsplit", {"ssim": 0.1 + 0.2 * k, "l2": 0.01 * k}, (128, 128),
                                maps={"ssim": small}))
    return out


def test_hand_set_thresholds_are_named_and_used(tmp_path: Path) -> None:
    results = _results(tmp_path / "lot")
    info = session_run_info(tmp_path / "m.safetensors", META, tmp_path / "lot", "ssim", 0.45, 0.5, "set by hand")
    assert info.image_threshold.value == 0.45 and info.image_threshold.how == "set by hand"
    last = last_progress(iter_session_report(tmp_path / "report", info, results))
    assert last.phase == "done"
    report = read_report(last.result.json)
    assert [r.verdict for r in report.records] == ["good", "good", "defective", "defective"]
    odd = report.records[1]
    assert odd.n_regions == 1 and odd.image_hw == (128, 128)
    x, y, w, h = odd.regions[0].bbox
    assert (x, y) == pytest.approx((32, 32), abs=2) and (w, h) == pytest.approx((32, 32), abs=3)
    assert report.records[0].n_regions == 0
    assert "set by hand" in last.result.html.read_text(encoding="utf-8") and last.result.pdf.is_file()
    assert report.info.dataset == "/data/tiles" and report.info.method == "ae-ssim"


def test_model_thresholds_keep_their_story_and_review_band_is_named(tmp_path: Path) -> None:
    info = session_run_info(tmp_path / "m.safetensors", META, tmp_path, "ssim", 0.5, 0.4, "from the model: x")
    assert info.image_threshold.how == "label-free: 1% of 10 normals"
    assert info.pixel_threshold.how == "label-free: pixels"
    image_moved = session_run_info(tmp_path / "m.safetensors", META, tmp_path, "ssim", 0.7, 0.4, "set by hand")
    assert image_moved.image_threshold.how == "set by hand" and image_moved.pixel_threshold.how == "label-free: pixels"
    banded = session_run_info(tmp_path / "m.safetensors", META, tmp_path, "ssim", 0.5, float("inf"),
                              "set by hand", review=(0.6, 0.4))
    assert "review band 0.4 to 0.6" in banded.image_threshold.how and banded.pixel_threshold is None


def test_unreadable_image_is_skipped_and_cancel_gives_a_partial_report(tmp_path: Path) -> None:
    results = _results(tmp_path / "lot", n=6)
    results[0].path.write_bytes(b"not a png")
    info = session_run_info(tmp_path / "m.safetensors", META, tmp_path / "lot", "ssim", 0.45, 0.5, "set by hand")
    report = read_report(last_progress(iter_session_report(tmp_path / "a", info, results, pdf=False)).result.json)
    assert len(report.records) == 5 and report.skipped[0][0] == results[0].path and not report.partial

    cancel = CancelToken()
    steps = []
    for progress in iter_session_report(tmp_path / "b", info, results, cancel=cancel, pdf=False):
        steps.append(progress)
        if progress.step == 3:
            cancel.cancel()
    assert steps[-1].phase == "cancelled"
    partial = read_report(steps[-1].result.json)
    assert partial.partial and partial.planned == 6 and len(partial.records) == 2  # 00 unreadable, 01 and 02


def test_missing_map_gives_zeros_at_full_size() -> None:
    cached = CachedResult(Path("x.png"), "good", "train", {"ssim": 0.1}, (10, 20))
    assert full_size_map(cached, "ssim", (10, 20)).shape == (10, 20)
    assert not full_size_map(cached, "ssim", (10, 20)).any()
