"""`defectlab bench --profile smoke` end to end (this is the CI run of the benchmark), plus its parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.bench.profiles import get_profile
from core.bench.runner import contaminate, trivial_scores
from core.data.index import ImageRecord


def _records(labels: list[str]) -> list[ImageRecord]:
    return [ImageRecord(Path(f"/x/{i}.png"), "test", label) for i, label in enumerate(labels)]


def test_contamination_moves_a_seeded_share_of_defects() -> None:
    train = [ImageRecord(Path("/t/a.png"), "train", "good")]
    test = _records(["good"] * 4 + ["crack"] * 10)
    new_train, rest, moved = contaminate(train, test, 0.2, seed=0)
    assert len(moved) == 2 and all(r.label == "crack" for r in moved)
    assert new_train == train + moved and len(rest) == 12 and not set(moved) & set(rest)
    assert contaminate(train, test, 0.2, seed=0)[2] == moved
    assert contaminate(train, test, 0.0, seed=0)[1] == test


def test_trivial_scores_detect_a_brightness_confound(tmp_path: Path) -> None:
    import cv2

    records = []
    for i, (label, level) in enumerate([("good", 50)] * 3 + [("dent", 200)] * 3):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((8, 8), level + i, np.uint8))
        records.append(ImageRecord(path, "test", label))
    trivial = trivial_scores(records)
    assert trivial["mean_intensity"]["image_auroc"] == 1.0
    assert trivial["mean_intensity"]["sign"] == "+"


def test_profiles() -> None:
    assert get_profile("full", gpu=True).methods[0].preset == "paper"
    assert get_profile("full").budget_seconds and get_profile("smoke").epochs == 2
    with pytest.raises(ValueError, match="unknown bench profile"):
        get_profile("huge")


@pytest.mark.slow
def test_smoke_profile_writes_benchmarks(tmp_path: Path) -> None:
    from core.cli.main import main

    out = tmp_path / "BENCHMARKS.md"
    assert main(["bench", "--profile", "smoke", "--out", str(out), "--work-dir", str(tmp_path / "work")]) == 0
    text = out.read_text()
    results = json.loads(out.with_suffix(".json").read_text())
    assert "| ae-l2 | l2* |" in text and "| patchcore | nn* |" in text and "| trivial | bytes_per_pixel |" in text
    assert "Noise sweep" in text and "Training-set audit" in text and "efficientnet-lite0" in text
    runs = results["datasets"][0]["runs"]
    assert {r["contamination"] for r in runs} == {0.0, 0.5}
    ae = next(r for r in runs if r["method"] == "ae-l2")
    assert {"l2", "ssim", "l1", "perceptual", "perceptual_mse", "msfr"} == set(ae["scorers"])
    for metrics in ae["scorers"].values():
        assert 0 <= metrics["image_auroc"] <= 1 and 0 <= metrics["aupro"] <= 1
        assert metrics["ms_per_image_b1"] > 0 and metrics["ms_per_image_b8"] > 0
        assert 0 <= metrics["image_auroc_mean_pool"] <= 1
        assert {"image", "image_synthetic", "pixel", "pixel_synthetic"} == set(metrics["at_label_free_thresholds"])
    assert ae["peak_rss_mb"] > 0 and ae["train_seconds"] > 0


def test_wall_clock_budget_token() -> None:
    from core.bench.runner import _Deadline
    from core.progress import CancelToken

    outer = CancelToken()
    assert not _Deadline(outer, None).cancelled and not _Deadline(outer, 60).cancelled
    assert _Deadline(outer, 0).cancelled  # budget spent
    outer.cancel()
    assert _Deadline(outer, 60).cancelled  # the user's cancel still stops training


def test_full_profile_has_the_ablations_and_sweeps_magnetic_tile_only() -> None:
    full = get_profile("full")
    labels = {m.label for m in full.methods}
    assert {"trustmae", "trustmae w/o TR", "memae", "cmaae", "cmaae MAM", "cmaae concat", "cmaae one stage"} <= labels
    assert full.contamination == (0.0, 0.1, 0.2, 0.4)
    assert [d.name for d in full.datasets if d.sweep] == ["magnetic_tile"]
    swept = {m.label for m in full.methods if m.sweep}
    assert {"trustmae", "memae", "ae-ssim", "trustmae w/o TR"} == swept


def test_test_scores_subset_keeps_matching_images_and_maps() -> None:
    from core.workflow.evaluate import TestScores

    paths = [Path(f"/t/{i}.png") for i in range(3)]
    maps = [np.full((2, 2), i, np.float32) for i in range(3)]
    masks = [np.zeros((2, 2), bool) for _ in range(3)]
    # image 1 is a defect without a mask: scored at image level, absent from the pixel lists
    scores = TestScores(["good", "dent", "good"], {"l2": [0.0, 1.0, 2.0]}, {"l2": [maps[0], maps[2]]},
                        [masks[0], masks[2]], [], paths, [paths[0], paths[2]])
    sub = scores.subset({paths[1], paths[2]})
    assert sub.labels == ["dent", "good"] and sub.scores == {"l2": [1.0, 2.0]} and sub.paths == paths[1:]
    assert sub.map_paths == [paths[2]] and sub.maps["l2"][0][0, 0] == 2 and len(sub.masks) == 1


def test_sweep_rows_show_the_change_against_the_clean_run() -> None:
    from core.bench.report import _sweep_rows

    def run(fraction: float, image_auroc: float) -> dict:
        return {"method": "trustmae", "label": "trustmae", "default_map": "trustmae", "contamination": fraction,
                "common": {"trustmae": {"image_auroc": image_auroc, "pixel_auroc": 0.5}}}

    header, rows = _sweep_rows({"runs": [run(0.0, 0.80), run(0.2, 0.785), run(0.4, 0.70)]})
    assert header == ["0 %", "20 %", "40 %"]
    assert rows == [["trustmae", "trustmae*", "0.800 / 0.500", "0.785 (-1.5) / 0.500", "0.700 (-10.0) / 0.500"]]
