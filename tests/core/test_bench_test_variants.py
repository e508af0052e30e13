"""The benchmark's test variants (MethodRun.test_variants): one trained model scored again under test-time
settings, without training again. A tiny I3AD on a tiny generated dataset, end to end through `run_bench`:
the variants' metrics, an explicit u winning over the tuned one, their ablation-table rows, and the cache key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from test_bench_smoke import _table_widths
from test_models_i3ad import TINY

from core.bench.job import variant_model
from core.bench.profiles import BenchProfile, DatasetRun, MethodRun, get_profile
from core.bench.report import markdown
from core.bench.runner import _plan_dataset, code_version, run_bench
from core.bench.system import machine
from core.models import build_model
from core.progress import CancelToken, Cancelled

# u is tuned between 0.2 and 0.3 on 3 training images; the variants fix it at 0.45, switch the fast preset's
# early stop off, and repeat the preset's own early stop (the trained settings).
I3AD_RUN = MethodRun("i3ad", overrides={**TINY, "tune_u": True, "u_min": 0.2, "u_max": 0.3, "u_step": 0.1,
                                        "tune_images": 3, "tune_iterations": 2, "test_iterations": 2},
                     sweep=False, test_variants=(("u=0.45", {"u": 0.45, "tune_u": False}),
                                                 ("no early stop", {"early_stop": False}),
                                                 ("early stop", {"early_stop": True})))
DEMO = DatasetRun("demo:fabric", demo_size={"n_train": 8, "n_test_good": 2, "n_test_defect": 3, "size": 64})


def _profile(*runs: MethodRun, datasets: tuple[DatasetRun, ...] = (DEMO,), **changes: Any) -> BenchProfile:
    return BenchProfile(name="test", datasets=datasets, methods=runs, timing_repeats=1, **changes)


def _tuned_model(u: float = 0.2) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("i3ad", "fast", **{**TINY, "tune_u": True}).eval()
    model.mask_threshold.fill_(u)  # what the tune_u phase leaves behind
    return model


def test_variant_model_keeps_the_weights_and_an_explicit_u_wins_over_the_tuned_one() -> None:
    model = _tuned_model(0.2)
    fixed = variant_model("i3ad", model, {"u": 0.45, "tune_u": False})
    assert float(fixed.mask_threshold) == pytest.approx(0.45) and fixed.tuned_settings() == {"u": pytest.approx(0.45)}
    assert fixed.config.u == 0.45 and not fixed.config.tune_u and fixed.config.cnum == model.config.cnum
    for name, value in model.generator.state_dict().items():
        assert torch.equal(fixed.generator.state_dict()[name], value)
    # the loop runs with the override: a u inside the untrained generator's anomaly values (0.2 is below all
    # of them, so every pixel is re-inpainted) gives other masks and maps
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    inside = round(float(model._checkerboard(x)[1].median()), 4)
    moved = variant_model("i3ad", model, {"u": inside})
    assert not torch.equal(moved.predict(x)[0]["ssim"], model.predict(x)[0]["ssim"])
    plain = variant_model("i3ad", model, {"early_stop": False})  # u not named: the tuned value stays
    assert float(plain.mask_threshold) == pytest.approx(0.2) and not plain.config.early_stop
    with pytest.raises(ValueError, match="changes the network"):
        variant_model("i3ad", model, {"cnum": 16})
    with pytest.raises(ValueError, match="no setting wobble"):
        variant_model("i3ad", model, {"wobble": 1})


def test_test_variants_score_the_trained_model_and_fill_the_ablation_table(tmp_path: Path) -> None:
    messages: list[str] = []
    result = None
    for progress in run_bench(_profile(I3AD_RUN), tmp_path / "work"):
        messages.append(progress.message)
        result = progress.result if progress.phase == "done" else result
    assert result is not None
    run = result["datasets"][0]["runs"][0]
    tuned = run["tuned"]["u"]
    assert tuned in (pytest.approx(0.2), pytest.approx(0.3))
    variants = run["test_variants"]
    assert list(variants) == ["u=0.45", "no early stop", "early stop"]
    fixed, off, same = variants["u=0.45"], variants["no early stop"], variants["early stop"]
    assert fixed["tuned"] == {"u": pytest.approx(0.45)} != {"u": tuned}  # the override, not the tuned u
    assert off["tuned"] == {"u": pytest.approx(tuned)}  # a variant that does not name u keeps the tuned one
    for entry in (fixed, off):
        assert not entry["same_as_trained"] and list(entry["scorers"]) == ["ssim"]
        metrics = entry["scorers"]["ssim"]
        assert 0 <= metrics["image_auroc"] <= 1 and 0 <= metrics["pixel_auroc"] <= 1 and 0 <= metrics["aupro"] <= 1
        assert set(metrics["false_reject_rate"]) == set(metrics["at_label_free_thresholds"]) == {
            "image", "image_synthetic", "pixel", "pixel_synthetic"}
        assert entry["ms_per_image_b1"] > 0 and entry["thresholds"]["ssim"]["image"]["value"] is not None
    # the fast preset already stops early: that variant is the trained model and repeats the main numbers
    assert same["same_as_trained"] and same["scorers"]["ssim"] == run["scorers"]["ssim"]
    assert any(m.startswith("demo:fabric i3ad 0.0%, test variant u=0.45: scoring 5 test images") for m in messages)
    assert sum(m.startswith("demo:fabric i3ad") and "training" in m for m in messages) == 1  # trained once

    text = markdown({**result, "machine": machine(), "written": "now", "command": "defectlab bench"})
    ablations = text.split("### Ablations")[1]
    for row in ("| i3ad | ssim* |", "| i3ad u=0.45 (test time) | ssim* |", "| i3ad no early stop (test time) | ssim* |",
                "| i3ad early stop (test time, = trained) | ssim* |"):
        assert row in ablations
    assert "not retrained" in ablations and f"Tuned in training: i3ad u = {tuned:.3g}." in ablations
    steps = run["steps"]  # the iterative inference timed step by step, in its own table
    assert 1 <= steps["steps"] <= I3AD_RUN.overrides.get("test_iterations", 10) + 1
    assert steps["first_step_ms"] > 0 and steps["total_ms"] >= steps["first_step_ms"]
    assert "| i3ad | " in text.split("Iterative inference")[1]
    tables = _table_widths(text)
    for header, rows in tables:
        assert rows and all(width == header for width in rows), (header, rows)


def test_a_cancel_during_a_test_variant_stops_the_run(tmp_path: Path) -> None:
    cancel = CancelToken()
    with pytest.raises(Cancelled):
        for progress in run_bench(_profile(I3AD_RUN), tmp_path / "work", cancel):
            if "test variant" in progress.message:
                cancel.cancel()
    assert not list((tmp_path / "work" / "runs").glob("*.json"))  # nothing half-done is cached


def test_the_cache_key_follows_the_test_variants_on_the_clean_level_of_ablation_datasets(tmp_path: Path) -> None:
    versions = {"i3ad": code_version("i3ad")}
    plain = MethodRun("i3ad", sweep=True)
    one = MethodRun("i3ad", sweep=True, test_variants=(("u=0.10", {"u": 0.1, "tune_u": False}),))
    two = MethodRun("i3ad", sweep=True, test_variants=one.test_variants + (("early stop", {"early_stop": True}),))

    def keys(run: MethodRun, dataset: DatasetRun = DEMO) -> list[str]:
        profile = _profile(run, datasets=(dataset,), contamination=(0.0, 0.2))
        return [p.key for p in _plan_dataset(profile, dataset, 0, tmp_path, versions)[1]]

    (clean_plain, swept_plain), (clean_one, swept_one), (clean_two, _) = keys(plain), keys(one), keys(two)
    assert len({clean_plain, clean_one, clean_two}) == 3  # a changed list is a new run
    assert swept_one == swept_plain  # contaminated levels run no test variants
    no_ablations = DatasetRun(DEMO.name, demo_size=DEMO.demo_size, ablations=False)
    assert keys(one, no_ablations) == keys(plain, no_ablations)


def test_full_profile_scores_i3ads_test_time_ablations_on_its_one_trained_model() -> None:
    for gpu in (False, True):
        i3ad = next(m for m in get_profile("full", gpu=gpu).methods if m.method == "i3ad")
        assert dict(i3ad.test_variants) == {
            **{f"u={u:.2f}": {"u": u, "tune_u": False} for u in (0.1, 0.2, 0.3, 0.4, 0.5)},
            "early stop": {"early_stop": True}, "no early stop": {"early_stop": False}}
        assert not i3ad.variant and not i3ad.sweep
