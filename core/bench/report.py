"""BENCHMARKS.md and the JSON record from a benchmark's results dict (tables in tables.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from core.bench import tables as t
from core.bench.cache import dumps
from core.bench.published import published_for
from core.fileio import write_text_atomic


def _budget(profile: dict[str, Any]) -> str:
    if profile.get("epochs") is not None:
        rule = f"{profile['epochs']} epochs for every gradient-trained method"
    else:
        rule = "each preset's own epochs"
    return (f"{rule} (the same at every contamination level; never a wall-clock limit, so the rows do not "
            "depend on what else the machine was doing); memory-bank methods see every training image once; "
            "the train column is the wall time it took")


def _provenance(results: dict[str, Any]) -> str:
    commit = results.get("commit", "unknown")
    if results.get("dirty"):
        return f"{commit} **with uncommitted changes** (not reproducible from the commit)"
    return f"{commit} (clean tree)" if results.get("dirty") is False else commit


def _legend(results: dict[str, Any]) -> list[str]:
    profile = results["profile"]
    side = results.get("metric_max_side")
    cached = results.get("runs_from_cache", 0)
    runs = [r for ds in results["datasets"] for r in ds["runs"]]
    run_minutes = sum(r["train_seconds"] + r["eval_seconds"] for r in runs) / 60
    return [
        f"- Commit: {_provenance(results)}" + (f"; {cached} of {len(runs)} runs assembled from the run cache "
                                               f"(their training and evaluation took {run_minutes:.0f} minutes in "
                                               "all)" if cached else ""),
        f"- Perceptual distance network: {results['perceptual_backbone']}",
        f"- Budget: {_budget(profile)}; seed {profile['seed']}.",
        f"- Resolution: every pixel metric compares maps and masks at the image's own size with the long side "
        f"capped at {side} px (area-averaged), the same code and size as `defectlab evaluate`.",
        "- `*` marks the method's default map. Image AUROC uses the method's pooling (max, mean or max of a "
        "9x9 mean-filtered map); the mean-pool column scores the same maps by their mean.",
        "- **Oracle columns**: image and pixel F1-max pick the best threshold with the test labels; no deployed "
        "system can. Compare them with the `flag everything` row: its F1 (precision = share of defective "
        "images or pixels, recall 1) is what an F1-max at the worst possible score reaches.",
        f"- **Floors**: `{t.BLUR}` reconstructs each image by a Gaussian blur of itself (no learning) and is "
        "scored like every reconstruction method (same maps, pooling, calibration and metrics). The Δ columns "
        "are each row's margin in AUROC points over the best blur-floor map; a method at or below 0 learnt "
        "nothing a blur does not give. Trivial rows score images by compressed file bytes per pixel or mean "
        "intensity; (+)/(-) gives the direction; a high trivial AUROC means image-level numbers are confounded.",
        "- Label-free thresholds (set without any real defect label): `image` = 99th percentile of held-out "
        "normal image scores, `image_synthetic` = F1-max on held-out normals + synthetic defects; `pixel` / "
        "`pixel_synthetic` likewise for pixels. P / R / F1 are measured on the test set; FRR is the share of "
        "good test parts the threshold rejects (pixel thresholds: a part is rejected when any pixel of its map "
        "is flagged).",
        "- Speed: best-of-3 forward time per image at batch 1 and 8 (model input size, no file reading). Peak "
        "RSS is the process's peak during that run.",
        "- Exported: the `ONNX` columns time the graph `defectlab export` writes for the trained model (the "
        "default map and the image score, any batch) through ONNX Runtime on the CPU, in the same run right "
        "after the PyTorch timing and the same way (`core.export.speed`), on each method's `*` row; that row's "
        "PyTorch columns time the forward pass with all the method's own maps. `not exportable`: the method's "
        "inference is not one forward pass. Floors, ablation variants and contaminated runs are not exported.",
        ""]


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# DefectLab benchmarks", "",
        f"Profile **{results['profile']['name']}**, written {results['written']} by `{results['command']}` "
        f"in {results['total_seconds'] / 60:.1f} minutes.", "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores (torch threads {machine['torch_threads']}), "
        f"GPU: {machine['gpu']}; Python {machine['python']}, torch {machine['torch']}, {machine['os']}"]
    missing = results.get("missing_runs") or []
    if missing:
        lines += ["", f"> **Partial report**: {results.get('runs_planned', 0) - len(missing)} of "
                      f"{results.get('runs_planned', 0)} planned runs are finished; the tables hold only those "
                      f"(`defectlab bench --profile {results['profile']['name']} --resume` runs the rest). "
                      f"Not run yet: {', '.join(missing)}.", ""]
    lines += _legend(results)
    for ds in results["datasets"]:
        lines += _dataset(ds, results.get("metric_max_side"))
    if results.get("gui"):
        lines += ["## Workbench (GUI)", "",
                  f"From `{results['gui']['file']}`, written by `scripts/gui_bench.py` (the real window offscreen at "
                  "1600×1000, fed generated results through the scoring job's own code; no model is run), measured "
                  "apart from the runs above.", ""] + gui_tables(results["gui"]) + [""]
    return "\n".join(lines) + "\n"


GUI_GOALS = ("Goals: every threshold move under 30 ms at 10,000 images; no GUI stall over 100 ms while scoring; "
             "under 1 GB at 10,000 images. Before this benchmark existed, the same window measured by hand took "
             "122–170 ms per threshold move (585 to 9,945 images), froze five times for over 1 s while scoring "
             "10,000 images, and grew by about 0.4 MB per image (4.4 GB at 10k). RSS includes Python, Qt and "
             "PyTorch (the 'before' column).")


def gui_tables(record: dict[str, Any]) -> list[str]:
    """The GUI benchmark's (`scripts/gui_bench.py`) tables from its JSON record {"machine", "runs"}."""
    m = record["machine"]
    lines = [f"Machine: {m['machine']}, {m['cpus']} CPUs, load average {m['load']} at the start"
             f"{' (shared with other work: timings are noisy)' if m['shared'] else ''}; Python {m['python']}, "
             f"{m['date']}.", "",
             "| images | scoring s | images/s | longest GUI stall ms (GUI CPU in it) | stalls > 100 ms "
             "| most GUI CPU in one stall ms | RSS before → after MB | peak during MB | KB per image "
             "| reopen from store s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["runs"]:
        lines.append(f"| {r['images']} | {r['scoring_s']} | {r['images_per_s']} | {r['longest_stall_ms']} "
                     f"({r['longest_stall_gui_cpu_ms']}) | {r['stalls_over_100ms']} | "
                     f"{r['most_gui_cpu_in_one_stall_ms']} | {r['rss_before_mb']:.0f} → {r['rss_after_mb']:.0f} | "
                     f"{r['rss_peak_during_mb']:.0f} | {r['memory_per_image_kb']} | {r['reload_from_store_s']} |")
    lines += ["", "| images | image threshold move ms, wall (median / max) | GUI CPU ms (median / max) "
              "| pixel threshold move ms, wall (median / max) | GUI CPU ms (median / max) |", "|---|---|---|---|---|"]
    for r in record["runs"]:
        lines.append(" | ".join([f"| {r['images']}"] + [
            f"{r[key]['median']} / {r[key]['max']}" for key in (
                "image_threshold_move_ms", "image_threshold_move_gui_cpu_ms", "pixel_threshold_move_ms",
                "pixel_threshold_move_gui_cpu_ms")]) + " |")
    return lines + ["", GUI_GOALS]


def _dataset(ds: dict[str, Any], side: int | None) -> list[str]:
    c = ds["counts"]
    flags = t.flag_everything(ds)
    where = f"maps at most {side} px; " if side else ""
    lines = [f"## {ds['name']}", "",
             f"{c['train']} normal training images ({c.get('validation', '10 %')} held out for calibration), "
             f"test: {c['test_good']} good + {c['test_defective']} defective.", ""]
    if ds["note"]:
        lines += [f"> {ds['note']}", ""]
    lines += ["### Metrics", "",
              f"{where}oracle F1-max columns; flag everything gives image F1 {t._f(flags['image_f1'])}, "
              f"pixel F1 {t._f(flags.get('pixel_f1'))}.", ""]
    lines += t.render(t.METRICS, t.main_rows(ds)) + [""]
    published = published_for(ds["name"])
    if published:
        lines += [f"[{i}] {r.method}: {r.source}. Published rows are the papers' numbers (image AUROC only), "
                  "beside ours on the same split." for i, r in enumerate(published, 1)] + [""]
    lines += [f"Label-free thresholds: test-set precision / recall / F1 and false-reject rate of good parts "
              f"({where.rstrip('; ')})", ""]
    lines += t.render(t.THRESHOLDS, t.threshold_rows(ds)) + [""]
    lines += _optional_table(
        "Training observability (means over each phase's last epoch): memory slots with a nonzero addressing "
        "weight, the mean largest addressing weight, and the shares of TrustMAE's trust-region loss that pull, "
        "push or ignore a feature (– where a method has none).", t.OBSERVED, t.observability_rows(ds))
    lines += _optional_table(
        "Iterative inference, timed step by step on the first test image at batch 1 (after a warm-up; an early "
        "stop ends sooner on some images): the first step (I3AD: the four checkerboards), each later "
        "iteration, and the whole inference.", t.STEPS, t.steps_rows(ds))
    columns, rows = t.per_type_table(ds)
    if columns:
        lines += ["Image AUROC per defect type", ""] + t.render(columns, rows) + [""]
    rows = t.ablation_rows(ds)
    if rows:
        lines += ["### Ablations (clean training set)", "",
                  "TrustMAE: `w/o TR` trains without the trust-region loss; its `l2` map is the paper's `w/o PD` "
                  "(no perceptual distance). CMA-AE (Table IV): `MAM` = memory without the repair module, "
                  "`concat` = one FC layer on [z, ẑ] instead of the gates, `one stage` = no stage 2; its `l1` "
                  "map is `w/o MSFR`, its `perceptual` map the §4.4 comparison. PatchCore: `paper-literal` = uniform "
                  "patch sampling and raw distances, `w/o position norm` = raw distances, `Lite1` / `Lite2` = the "
                  "larger EfficientNet-Lite backbones, `stages 2+3` = strides 4 and 8 instead of 8 and 16. "
                  "Rows marked `(test time)` score "
                  "the method's one trained model with a test-time setting changed, calibrated on the same "
                  "held-out normals, default map only (I3AD: `u=…` a fixed mask threshold instead of the tuned "
                  "one, `early stop` on or off); `(test time, = trained)` rows are the trained settings again. "
                  f"{where}Δ against the blur floor. {t.tuned_note(ds)}".rstrip(), ""]
        lines += t.render(t.ABLATIONS, rows) + [""]
    columns, rows = t.sweep_table(ds)
    if rows:
        lines += ["### Noise sweep (TrustMAE §3.2, Fig. 4 and 5): image AUROC / pixel AUROC", "",
                  "Each column is the share of the training set that is defective (d of n + d training images; "
                  "the defective images come from the test set, nested in one seeded order). At most half of "
                  "the defective test images are moved; a level that needs more keeps that half and trains on "
                  "fewer normal images, as the paper does for its 30–40 % levels. Every level trains the same "
                  f"epochs and is scored on the {c['common_test']} test images that no level moves, so the "
                  "columns compare like with like; (±x) is the image AUROC change against the clean run in "
                  f"points. Contaminated runs are scored with the default map and `l2` only; {where.rstrip('; ')}.",
                  ""]
        lines += t.render(columns, rows) + [""]
        lines += ["Training-set audit of the contaminated runs (`defectlab audit`'s ranking): injected defective "
                  "images, how many rank among the top N suspects (N = injected), how many of the images above "
                  "the label-free image threshold are injected ones, and the ranking's AUROC.", ""]
        lines += t.render(t.AUDIT, t.audit_rows(ds)) + [""]
    return lines


def _optional_table(intro: str, columns: list[t.Column], rows: list[t.Row]) -> list[str]:
    """An introduced table, or nothing when it has no rows."""
    return [intro, ""] + t.render(columns, rows) + [""] if rows else []


def write_reports(results: dict[str, Any], markdown_path: Path, json_path: Path) -> None:
    results.setdefault("written", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    write_text_atomic(Path(json_path), dumps(results))
    write_text_atomic(Path(markdown_path), markdown(results))
