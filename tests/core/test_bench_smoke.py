"""`defectlab bench --profile smoke` end to end (this is the CI run of the benchmark), plus its parts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from core.bench.floors import BLUR, trivial_scores
from core.bench.profiles import get_profile
from core.bench.sweep import common_test, plan_levels, remaining_test
from core.data.index import ImageRecord


def _records(labels: list[str], folder: str = "x") -> list[ImageRecord]:
    return [ImageRecord(Path(f"/{folder}/{i:03d}.png"), "test", label) for i, label in enumerate(labels)]


def test_contamination_level_is_the_defective_share_of_the_training_set() -> None:
    normals = _records(["good"] * 80, "train")
    test = _records(["good"] * 10 + ["crack"] * 40)
    levels = plan_levels(normals, test, (0.0, 0.1, 0.2, 0.4), seed=0)
    assert [len(lv.moved) for lv in levels] == [0, 9, 20, 20]  # 9/89, 20/100; 40 % needs 53 > half of 40
    assert [len(lv.normals) for lv in levels] == [80, 80, 80, 30]  # ... so 20 defective + 30 normals
    assert [round(lv.achieved, 3) for lv in levels] == [0.0, 0.101, 0.2, 0.4]
    assert set(levels[1].moved) <= set(levels[2].moved) <= set(levels[3].moved)  # nested, one seeded order
    assert all(r.label == "crack" for r in levels[3].moved) and set(levels[3].normals) <= set(normals)
    common = common_test(test, levels)
    assert len(common) == 30 and not set(common) & set(levels[3].moved)
    assert len(remaining_test(test, levels[1])) == 41 and remaining_test(test, levels[0]) == test
    assert plan_levels(normals, test, (0.1,), seed=0)[0].moved == levels[1].moved  # seeded
    no_defects = plan_levels(normals, _records(["good"] * 5), (0.0, 0.2), seed=0)[1]
    assert len(no_defects.normals) == 80 and not no_defects.moved and no_defects.achieved == 0.0


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
    assert get_profile("full").epochs == 25 and get_profile("smoke").epochs == 2
    with pytest.raises(ValueError, match="unknown bench profile"):
        get_profile("huge")


GUI_RECORD = {"machine": {"machine": "x86_64", "cpus": 2, "load": 0.4, "shared": False, "python": "3.11.7",
                           "date": "2026-12-02"},
              "runs": [{"images": 10020, "scoring_s": 24.2, "images_per_s": 413.5, "longest_stall_ms": 86.2,
                        "longest_stall_gui_cpu_ms": 51.1, "stalls_over_100ms": 0, "most_gui_cpu_in_one_stall_ms": 59.3,
                        "rss_before_mb": 457, "rss_after_mb": 688, "rss_peak_during_mb": 729,
                        "memory_per_image_kb": 23.6, "reload_from_store_s": 2.0,
                        **{key: {"median": 0.4, "max": 15.9} for key in (
                            "image_threshold_move_ms", "image_threshold_move_gui_cpu_ms", "pixel_threshold_move_ms",
                            "pixel_threshold_move_gui_cpu_ms")}}]}


def test_gui_benchmark_tables_have_the_header_width() -> None:
    from core.bench.report import gui_tables

    text = "\n".join(gui_tables(GUI_RECORD))
    tables = _table_widths(text)
    assert len(tables) == 2 and "load average 0.4 at the start;" in text and "| 0 | 59.3 |" in text
    for header, rows in tables:
        assert rows and all(width == header for width in rows), (header, rows)


def _table_widths(text: str) -> list[tuple[int, list[int]]]:
    """(header width, row widths) of every markdown table in `text` (cells split on unescaped pipes)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(len(re.split(r"(?<!\\)\|", line.strip())) - 2)
        elif current:
            tables.append((current[0], current[1:]))
            current = []
    return tables


@pytest.mark.slow
def test_smoke_profile_writes_benchmarks(tmp_path: Path) -> None:
    from core.cli.main import main

    out = tmp_path / "BENCHMARKS.md"
    (tmp_path / "BENCHMARKS-gui.json").write_text(json.dumps(GUI_RECORD))  # the workbench's benchmark beside it
    args = ["bench", "--profile", "smoke", "--out", str(out), "--work-dir", str(tmp_path / "work")]
    assert main(args) == 0
    text = out.read_text()
    assert "## Workbench (GUI)" in text and "| 10020 | 24.2 |" in text
    results = json.loads(out.with_suffix(".json").read_text())
    assert "| ae-l2 | l2* |" in text and "| patchcore | nn* |" in text and "| trivial | bytes_per_pixel |" in text
    assert f"| {BLUR} | l2* |" in text and "| floor | flag everything |" in text and "(oracle)" in text
    assert "Noise sweep" in text and "Training-set audit" in text and "efficientnet-lite0" in text
    assert "capped at 640 px" in text and "image: FRR" in text
    tables = _table_widths(text)
    assert len(tables) >= 5  # metrics, thresholds, per type, sweep, audit
    for header, rows in tables:
        assert rows and rows[0] == header and all(width == header for width in rows), (header, rows)
    runs = results["datasets"][0]["runs"]
    assert {r["contamination"] for r in runs} == {0.0, 0.2}
    assert {round(lv["achieved"], 2) for lv in results["datasets"][0]["levels"]} == {0.0, 0.2}
    ae = next(r for r in runs if r["method"] == "ae-l2")
    assert {"l2", "ssim", "l1", "perceptual", "perceptual_mse", "msfr"} == set(ae["scorers"])
    for metrics in ae["scorers"].values():
        assert 0 <= metrics["image_auroc"] <= 1 and 0 <= metrics["aupro"] <= 1
        assert metrics["ms_per_image_b1"] > 0 and metrics["ms_per_image_b8"] > 0
        assert 0 <= metrics["image_auroc_mean_pool"] <= 1
        kinds = {"image", "image_synthetic", "pixel", "pixel_synthetic"}
        assert kinds == set(metrics["at_label_free_thresholds"]) == set(metrics["false_reject_rate"])
        assert all(0 <= v <= 1 for v in metrics["false_reject_rate"].values())
    assert ae["peak_rss_mb"] > 0 and ae["train_seconds"] > 0 and ae["epochs"] == 2
    blur = next(r for r in runs if r["method"] == BLUR)
    assert set(blur["scorers"]) == {"l2", "ssim"} and 0 <= blur["scorers"]["l2"]["pixel_auroc"] <= 1
    # the exported graph of each method's clean run, timed in the same run; floors and swept runs are not
    header = next(line for line in text.splitlines() if line.startswith("| method | scorer | image AUROC |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    for method, default in (("ae-l2", "l2"), ("patchcore", "nn")):
        run = next(r for r in runs if r["method"] == method and r["contamination"] == 0)
        assert run["onnx"]["status"] == "exported"
        row = next(line for line in text.splitlines() if line.startswith(f"| {method} | {default}* |"))
        cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|"))))
        for batch in (1, 8):
            assert run["onnx"][f"ms_per_image_b{batch}"] > 0
            assert cells[f"ONNX ms/img b{batch}"] == f"{run['onnx'][f'ms_per_image_b{batch}']:.1f}"
    assert blur["onnx"] is None and all(r["onnx"] is None for r in runs if r["contamination"] > 0)
    assert results["dirty"] in (True, False, None) and results["commit"]

    # the same results as the DifferNet split with an ablation variant: published rows and the ablation
    # table come out well-formed too
    from core.bench.report import markdown

    variant = {**ae, "label": "ae-l2 x", "variant": "x"}
    results["datasets"].append({**results["datasets"][0], "name": "mtd_differnet", "runs": runs + [variant]})
    text = markdown(results)
    assert "| PatchCore (WideResNet-50, 10 % coreset) | published [1] | 0.979 |" in text and "### Ablations" in text
    for header, rows in _table_widths(text):
        assert all(width == header for width in rows), (header, rows)

    # --resume assembles the same report from the run cache without training again
    assert main(args + ["--resume"]) == 0
    again = json.loads(out.with_suffix(".json").read_text())
    assert again["runs_from_cache"] == len(runs) and all(r["from_cache"] for r in again["datasets"][0]["runs"])
    assert again["datasets"][0]["runs"][0]["scorers"] == runs[0]["scorers"]

    # --report-only with one cached run removed: a partial report that names what is missing, still well-formed
    removed = next(p for p in (tmp_path / "work" / "runs").glob("*.json") if "ae-l2" in p.name and "20.0" in p.name)
    removed.unlink()
    assert main(args + ["--report-only"]) == 0
    partial = json.loads(out.with_suffix(".json").read_text())
    assert len(partial["missing_runs"]) == 1 and "ae-l2" in partial["missing_runs"][0]
    text = out.read_text()
    assert "**Partial report**" in text and partial["missing_runs"][0] in text
    for header, rows in _table_widths(text):
        assert all(width == header for width in rows), (header, rows)


def test_bench_refuses_to_write_the_committed_reports_from_a_dirty_tree(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import core.cli.bench as bench_cli
    from core.bench.system import is_committed_report, repo_root
    from core.cli.main import main

    assert is_committed_report(repo_root() / "BENCHMARKS.json") and not is_committed_report(Path("/tmp/B.md"))
    monkeypatch.setattr(bench_cli, "git_state", lambda: {"commit": "abc1234", "dirty": True, "changes": "x"})
    monkeypatch.setattr(bench_cli, "run_bench", lambda *a, **k: pytest.fail("must not run"))
    assert main(["bench", "--profile", "full", "--out", str(repo_root() / "BENCHMARKS.md")]) == 2
    assert "uncommitted changes" in capsys.readouterr().err


def test_full_profile_has_the_ablations_and_sweeps_magnetic_tile_only() -> None:
    full = get_profile("full")
    labels = {m.label for m in full.methods}
    assert {"trustmae", "trustmae w/o TR", "memae", "cmaae", "cmaae MAM", "cmaae concat", "cmaae one stage",
            BLUR} <= labels
    assert full.contamination == (0.0, 0.1, 0.2, 0.4)
    assert [d.name for d in full.datasets if d.sweep] == ["magnetic_tile"]
    assert "mtd_differnet" in [d.name for d in full.datasets]
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


def test_mean_pool_auroc_counts_defect_images_without_a_mask() -> None:
    from core.workflow.evaluate import TestScores, map_metrics

    paths = [Path(f"/t/{i}.png") for i in range(3)]
    maps = [np.full((2, 2), v, np.float32) for v in (0.0, 0.9, 0.2)]
    masks = [np.zeros((2, 2), bool) for _ in range(3)]
    # the defect (image 1) has no mask; mean pooling still ranks it above both good images
    scores = TestScores(["good", "dent", "good"], {"l2": [0.5, 0.1, 0.3]}, {"l2": [maps[0], maps[2]]},
                        [masks[0], masks[2]], [], paths, [paths[0], paths[2]],
                        mean_scores={"l2": [0.0, 0.9, 0.2]})
    metrics = map_metrics(scores, "l2", {})
    assert metrics["image_auroc"] == 0.0 and metrics["image_auroc_mean_pool"] == 1.0
    assert scores.subset({paths[1], paths[2]}).mean_scores == {"l2": [0.9, 0.2]}


def test_sweep_columns_are_labelled_with_the_achieved_share() -> None:
    from core.bench.tables import render, sweep_table

    def run(fraction: float, image_auroc: float) -> dict:
        return {"method": "trustmae", "label": "trustmae", "default_map": "trustmae", "contamination": fraction,
                "common": {"trustmae": {"image_auroc": image_auroc, "pixel_auroc": 0.5}}}

    levels = [{"target": 0.0, "achieved": 0.0, "n_normal": 80, "n_moved": 0},
              {"target": 0.2, "achieved": 0.2, "n_normal": 80, "n_moved": 20},
              {"target": 0.4, "achieved": 0.4, "n_normal": 30, "n_moved": 20}]
    columns, rows = sweep_table({"levels": levels, "runs": [run(0.0, 0.80), run(0.2, 0.785), run(0.4, 0.70)]})
    assert [h for _, h in columns] == ["method", "scorer", "0.0 % (0 of 80)", "20.0 % (20 of 100)",
                                       "40.0 % (20 of 50)"]
    assert render(columns, rows)[2] == ("| trustmae | trustmae* | 0.800 / 0.500 | 0.785 (-1.5) / 0.500 "
                                        "| 0.700 (-10.0) / 0.500 |")


def test_table_rows_always_have_the_header_width() -> None:
    from core.bench.tables import NA, render

    lines = render([("a", "A"), ("b", "B"), ("c", "C")], [{"a": "1"}, {"a": "x|y", "b": "2", "c": "3", "z": "9"}])
    assert lines == ["| A | B | C |", "|---|---|---|", f"| 1 | {NA} | {NA} |", "| x\\|y | 2 | 3 |"]
    assert all(width == 3 for header, rows in _table_widths("\n".join(lines)) for width in [header, *rows])


def test_blur_floor_reconstructs_by_blurring_and_needs_no_training() -> None:
    import torch

    from core.bench.floors import BlurConfig, BlurReconstruction, gaussian_blur

    model = BlurReconstruction(BlurConfig.fast())
    assert model.phases() == () and not list(model.parameters())
    flat = torch.full((2, 1, 32, 32), 0.3)
    assert torch.allclose(gaussian_blur(flat, 4.0), flat, atol=1e-6)
    x = flat.clone()
    x[:, :, 16, 16] = 1.0  # a one-pixel defect: blurred away, so its residual is the largest
    maps, recon = model.predict(x)
    assert set(maps) == {"l2", "ssim", "l1"} and recon is not None and recon.shape == x.shape
    assert all(m.shape == (2, 1, 32, 32) for m in maps.values())
    assert maps["l2"][0, 0].argmax().item() == 16 * 32 + 16


def test_run_cache_round_trip_and_key(tmp_path: Path) -> None:
    from core.bench.cache import RunCache, run_key

    key = run_key({"method": "ae-l2", "epochs": 25, "code": "abc"})
    assert key == run_key({"code": "abc", "epochs": 25, "method": "ae-l2"})
    assert key != run_key({"method": "ae-l2", "epochs": 26, "code": "abc"})
    cache = RunCache(tmp_path)
    assert cache.load("ds ae-l2 0%", key) is None
    cache.save("ds ae-l2 0%", key, {"method": "ae-l2"}, {"scorers": {"l2": {"image_auroc": np.float64(0.5)}}})
    assert cache.load("ds ae-l2 0%", key) == {"scorers": {"l2": {"image_auroc": 0.5}}}


def test_progress_bar_shows_where_the_whole_bench_is() -> None:
    from core.cli.progressbar import format_progress
    from core.progress import Progress

    line = format_progress(Progress("train", 1, 4, extra={"overall": "run 2/41, bench ETA 1:02:03"}))
    assert line.endswith("[run 2/41, bench ETA 1:02:03]") and "1/4" in line


def test_source_version_follows_result_code_only(tmp_path: Path) -> None:
    from core.bench.system import source_version

    (tmp_path / "core" / "bench").mkdir(parents=True)
    (tmp_path / "core" / "cli").mkdir()
    model = tmp_path / "core" / "model.py"
    model.write_text("A = 1\n")
    (tmp_path / "core" / "bench" / "tables.py").write_text("W = 1\n")
    (tmp_path / "core" / "cli" / "main.py").write_text("X = 1\n")
    before = source_version(tmp_path)
    (tmp_path / "core" / "bench" / "tables.py").write_text("W = 2\n")
    (tmp_path / "core" / "cli" / "main.py").write_text("X = 2\n")
    assert source_version(tmp_path) == before  # presentation only
    model.write_text("A = 2\n")
    assert source_version(tmp_path) != before


def test_source_version_of_a_method_ignores_other_methods_files(tmp_path: Path) -> None:
    from core.bench.system import method_exclusive_files, source_version

    models = tmp_path / "core" / "models"
    models.mkdir(parents=True)
    (models / "base.py").write_text("B = 1\n")
    (models / "shared_block.py").write_text("from core.models.base import B\n")
    (models / "own_block.py").write_text("C = 1\n")
    (models / "first.py").write_text("from core.models.shared_block import B\nfrom core.models import own_block\n"
                                     "register(1)\n")
    (models / "second.py").write_text("from core.models.shared_block import B\nregister(2)\n")
    assert method_exclusive_files(tmp_path) == {
        "first": {"core/models/first.py", "core/models/own_block.py"}, "second": {"core/models/second.py"}}
    first, second, floor = (source_version(tmp_path, m) for m in ("first", "second", None))
    (models / "own_block.py").write_text("C = 2\n")  # only the first method depends on it
    assert source_version(tmp_path, "first") != first
    assert (source_version(tmp_path, "second"), source_version(tmp_path, None)) == (second, floor)
    (models / "shared_block.py").write_text("from core.models.base import B\nD = 1\n")
    assert source_version(tmp_path, "second") != second and source_version(tmp_path, None) != floor


def test_methods_option_keeps_a_profiles_variants_and_adds_plain_runs() -> None:
    from core.bench.profiles import get_profile
    from core.cli.bench import select_methods

    chosen = select_methods(get_profile("full"), ["patchcore", "blur-floor", "ae-l2x"], "fast")
    labels = [m.label for m in chosen.methods]
    assert labels == [BLUR, "patchcore", "patchcore paper-literal", "patchcore w/o position norm",
                      "patchcore Lite1", "patchcore Lite2", "patchcore stages 2+3", "ae-l2x"]
    assert not next(m for m in chosen.methods if m.method == "patchcore").sweep


def test_a_variant_runs_on_a_dataset_without_ablations_only_where_it_says_so(tmp_path: Path) -> None:
    from core.bench.profiles import BenchProfile, DatasetRun, MethodRun
    from core.bench.runner import _plan_dataset

    demo = DatasetRun("demo:fabric", demo_size={"n_train": 6, "n_test_good": 2, "n_test_defect": 2, "size": 32},
                      ablations=False)
    runs = (MethodRun("patchcore"), MethodRun("patchcore", variant="a", overrides={"neighbourhood": 1}),
            MethodRun("patchcore", variant="b", overrides={"neighbourhood": 5}, also_on=("demo:fabric",)))
    profile = BenchProfile(name="test", datasets=(demo,), methods=runs)
    planned = _plan_dataset(profile, demo, 0, tmp_path, {"patchcore": "src-x"})[1]
    assert [p.run.label for p in planned] == ["patchcore", "patchcore b"]
    full = get_profile("full")
    on_differnet = [m.label for m in full.methods if m.variant and "mtd_differnet" in m.also_on]
    assert on_differnet == ["patchcore paper-literal", "patchcore w/o position norm", "patchcore Lite1",
                            "patchcore Lite2", "patchcore stages 2+3"]
