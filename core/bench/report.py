"""BENCHMARKS.md and the JSON record from a benchmark's results dict."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from core.fileio import write_text_atomic

_NA = "–"


def _f(value: Any, digits: int = 3) -> str:
    return _NA if value is None else f"{value:.{digits}f}"


def _prf(entry: dict[str, Any] | None) -> str:
    if not entry:
        return _NA
    return f"{entry['precision']:.2f} / {entry['recall']:.2f} / {entry['f1']:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _main_rows(ds: dict[str, Any], fraction: float) -> list[list[str]]:
    rows = []
    for run in (r for r in ds["runs"] if r["contamination"] == fraction):
        for name, m in run["scorers"].items():
            star = "*" if name == run["default_map"] else ""
            rows.append([_label(run), f"{name}{star}", _f(m["image_auroc"]), _f(m.get("image_auroc_mean_pool")),
                         _f(m.get("pixel_auroc")),
                         _f(m.get("aupro")), _f(m["f1_max"]), _f(m.get("pixel_f1_max")),
                         f"{run['train_seconds']:.0f} ({run['epochs']:.3g} ep)", _f(m["ms_per_image_b1"], 1),
                         _f(m["ms_per_image_b8"], 1), f"{run['peak_rss_mb']:.0f}"])
    if fraction == 0.0:
        for name, m in ds["trivial"].items():
            rows.append(["trivial", name, f"{m['image_auroc_best_sign']:.3f} ({m['sign']})", _NA, _NA, _NA,
                         _f(m["f1_max"]), _NA, _NA, _NA, _NA, _NA])
    return rows


def _threshold_rows(ds: dict[str, Any], fraction: float) -> list[list[str]]:
    rows = []
    for run in (r for r in ds["runs"] if r["contamination"] == fraction):
        for name, m in run["scorers"].items():
            at = m["at_label_free_thresholds"]
            rows.append([_label(run), name] + [_prf(at.get(k)) for k in
                                                 ("image", "image_synthetic", "pixel", "pixel_synthetic")])
    return rows


def _per_type_rows(ds: dict[str, Any], fraction: float) -> tuple[list[str], list[list[str]]]:
    types = sorted({t for r in ds["runs"] for m in r["scorers"].values() for t in m["per_type"]})
    rows = []
    for run in (r for r in ds["runs"] if r["contamination"] == fraction):
        for name, m in run["scorers"].items():
            rows.append([_label(run), name] + [_f(m["per_type"].get(t)) for t in types])
    return types, rows


def _label(run: dict[str, Any]) -> str:
    return run.get("label") or run["method"]


def _sweep_rows(ds: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Image AUROC / pixel AUROC per contamination level on the test images every level keeps, with the
    image AUROC change against the clean run in points."""
    fractions = sorted({r["contamination"] for r in ds["runs"]})
    swept = [r for r in ds["runs"] if r.get("common")]
    keys = list(dict.fromkeys((_label(r), name, r["default_map"]) for r in swept for name in r["common"]))
    rows = []
    for label, name, default_map in keys:
        cells, clean = [], None
        for fraction in fractions:
            run = next((r for r in swept if _label(r) == label and r["contamination"] == fraction), None)
            m = run["common"].get(name) if run else None
            if m is None:
                cells.append(_NA)
                continue
            clean = m["image_auroc"] if fraction == 0 else clean
            delta = "" if fraction == 0 or clean is None else f" ({100 * (m['image_auroc'] - clean):+.1f})"
            cells.append(f"{m['image_auroc']:.3f}{delta} / {_f(m.get('pixel_auroc'))}")
        rows.append([label, name + ("*" if name == default_map else "")] + cells)
    return [f"{round(100 * f)} %" for f in fractions], rows


def _audit_rows(ds: dict[str, Any]) -> list[list[str]]:
    rows = []
    for run in (r for r in ds["runs"] if r.get("audit")):
        a = run["audit"]
        rows.append([_label(run), f"{round(100 * run['contamination'])} %", str(a["injected"]),
                     f"{a['in_top_n']} ({100 * a['in_top_n'] / max(a['injected'], 1):.0f} %)",
                     f"{a['flagged_injected']} of {a['flagged']}", _f(a["ranking_auroc"])])
    return rows


def _ablation_rows(ds: dict[str, Any]) -> list[list[str]]:
    """Clean-level rows of every method that has ablation variants: the full method's maps, then each
    variant's maps."""
    clean = [r for r in ds["runs"] if r["contamination"] == 0.0]
    with_variants = [m for m in dict.fromkeys(r["method"] for r in clean)
                     if any(r.get("variant") for r in clean if r["method"] == m)]
    rows = []
    for method in with_variants:
        for run in (r for r in clean if r["method"] == method):
            for name, m in run["scorers"].items():
                if run.get("variant") and name not in (run["default_map"], "l1", "l2"):
                    continue
                star = "*" if name == run["default_map"] else ""
                rows.append([_label(run), f"{name}{star}", _f(m["image_auroc"]), _f(m.get("image_auroc_mean_pool")),
                         _f(m.get("pixel_auroc")),
                             _f(m.get("aupro")), _f(m.get("pixel_f1_max")),
                             f"{run['train_seconds']:.0f} ({run['epochs']:.3g} ep)"])
    return rows


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# DefectLab benchmarks", "",
        f"Profile **{results['profile']['name']}**, written {results['written']} by `{results['command']}` "
        f"in {results['total_seconds'] / 60:.1f} minutes.", "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores (torch threads {machine['torch_threads']}), "
        f"GPU: {machine['gpu']}; Python {machine['python']}, torch {machine['torch']}, {machine['os']}",
        f"- Commit: {results['commit']}",
        f"- Perceptual distance network: {results['perceptual_backbone']}",
        f"- Budget: {_budget(results['profile'])}; seed {results['profile']['seed']}; maps and masks compared at "
        f"most at {results['profile']['metric_max_side']} px.",
        "- `*` marks the method's default map. Image AUROC uses the method's pooling (max, mean or max of a "
        "9x9 mean-filtered map); the mean-pool column scores the same maps by their mean. Speed: best-of-3 forward time per image at batch 1 and 8 "
        "(model input size, no file reading). Peak RSS is the process's peak during that run.",
        "- Label-free thresholds (set without any real defect label) and the precision / recall / F1 they give "
        "on the test set: `image` = 99th percentile of held-out normal image scores, `image_synthetic` = "
        "F1-max on held-out normals + synthetic defects; `pixel` / `pixel_synthetic` likewise for pixels.",
        "- Trivial rows score images by compressed file bytes per pixel or mean intensity; (+)/(-) gives the "
        "direction. A high trivial AUROC means image-level numbers on that dataset are confounded.", ""]
    for ds in results["datasets"]:
        c = ds["counts"]
        lines += [f"## {ds['name']}", "",
                  f"{c['train']} normal training images (10 % held out for calibration), test: {c['test_good']} good "
                  f"+ {c['test_defective']} defective.", ""]
        if ds["note"]:
            lines += [f"> {ds['note']}", ""]
        lines += ["### Metrics", ""]
        lines += _table(["method", "scorer", "image AUROC", "mean-pool image AUROC", "pixel AUROC", "AUPRO",
                         "image F1-max",
                         "pixel F1-max", "train s", "ms/img b1", "ms/img b8", "peak MB"],
                        _main_rows(ds, 0.0)) + [""]
        lines += ["Label-free thresholds: test-set precision / recall / F1", ""]
        lines += _table(["method", "scorer", "image", "image_synthetic", "pixel", "pixel_synthetic"],
                        _threshold_rows(ds, 0.0)) + [""]
        types, rows = _per_type_rows(ds, 0.0)
        if types:
            lines += ["Image AUROC per defect type", ""] + _table(["method", "scorer"] + types, rows) + [""]
        rows = _ablation_rows(ds)
        if rows:
            lines += ["### Ablations (clean training set)", "",
                      "TrustMAE: `w/o TR` trains without the trust-region loss; its `l2` map is the paper's "
                      "`w/o PD` (no perceptual distance). CMA-AE (Table IV): `MAM` = memory without the "
                      "repair module, `concat` = one FC layer on [z, ẑ] instead of the gates, `one stage` = no "
                      "stage 2; its `l1` map is `w/o MSFR`, its `perceptual` map the §4.4 comparison.", ""]
            lines += _table(["method", "scorer", "image AUROC", "pixel AUROC", "AUPRO", "pixel F1-max",
                             "train s"], rows) + [""]
        header, rows = _sweep_rows(ds)
        if rows:
            lines += ["### Noise sweep (TrustMAE §3.2, Fig. 4 and 5): image AUROC / pixel AUROC", "",
                      f"A share of the defective test images is moved into training. Every level is scored on "
                      f"the {c['common_test']} test images that no level moves, so the columns compare like "
                      "with like; (±x) is the image AUROC change against the clean run in points. Contaminated runs are "
                      "scored with the default map and `l2` only.", ""]
            lines += _table(["method", "scorer"] + header, rows) + [""]
            lines += ["Training-set audit of the contaminated runs (`defectlab audit`'s ranking): injected "
                      "defective images, how many rank among the top N suspects (N = injected), how many of "
                      "the images above the label-free image threshold are injected ones, and the ranking's "
                      "AUROC.", ""]
            lines += _table(["method", "contamination", "injected", "in top N", "flagged (injected of all)",
                             "ranking AUROC"], _audit_rows(ds)) + [""]
    return "\n".join(lines) + "\n"


def _budget(profile: dict[str, Any]) -> str:
    if profile.get("epochs") is not None:
        return f"{profile['epochs']} epochs per gradient-trained method"
    if profile.get("budget_seconds") is not None:
        return (f"{profile['budget_seconds']:.0f} s of wall-clock training per gradient-trained method (stopped "
                "when spent, at most the preset's epochs); memory-bank methods see every training image once")
    return "each preset's own epochs"


def write_reports(results: dict[str, Any], markdown_path: Path, json_path: Path) -> None:
    results.setdefault("written", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    write_text_atomic(Path(json_path), json.dumps(results, indent=1, default=str))
    write_text_atomic(Path(markdown_path), markdown(results))
