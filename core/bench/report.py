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
            rows.append([run["method"], f"{name}{star}", _f(m["image_auroc"]), _f(m.get("pixel_auroc")),
                         _f(m.get("aupro")), _f(m["f1_max"]), _f(m.get("pixel_f1_max")),
                         f"{run['train_seconds']:.0f} ({run['epochs']:.3g} ep)", _f(m["ms_per_image_b1"], 1),
                         _f(m["ms_per_image_b8"], 1), f"{run['peak_rss_mb']:.0f}"])
    if fraction == 0.0:
        for name, m in ds["trivial"].items():
            rows.append(["trivial", name, f"{m['image_auroc_best_sign']:.3f} ({m['sign']})", _NA, _NA,
                         _f(m["f1_max"]), _NA, _NA, _NA, _NA, _NA])
    return rows


def _threshold_rows(ds: dict[str, Any], fraction: float) -> list[list[str]]:
    rows = []
    for run in (r for r in ds["runs"] if r["contamination"] == fraction):
        for name, m in run["scorers"].items():
            at = m["at_label_free_thresholds"]
            rows.append([run["method"], name] + [_prf(at.get(k)) for k in
                                                 ("image", "image_synthetic", "pixel", "pixel_synthetic")])
    return rows


def _per_type_rows(ds: dict[str, Any], fraction: float) -> tuple[list[str], list[list[str]]]:
    types = sorted({t for r in ds["runs"] for m in r["scorers"].values() for t in m["per_type"]})
    rows = []
    for run in (r for r in ds["runs"] if r["contamination"] == fraction):
        for name, m in run["scorers"].items():
            rows.append([run["method"], name] + [_f(m["per_type"].get(t)) for t in types])
    return types, rows


def _contamination_rows(ds: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    fractions = sorted({r["contamination"] for r in ds["runs"]})
    keys = sorted({(r["method"], name) for r in ds["runs"] for name in r["scorers"]})
    rows = []
    for method, name in keys:
        cells = []
        for fraction in fractions:
            run = next((r for r in ds["runs"] if r["method"] == method and r["contamination"] == fraction), None)
            m = run["scorers"].get(name) if run else None
            cells.append(_NA if m is None else f"{m['image_auroc']:.3f} / {_f(m.get('pixel_auroc'))}")
        rows.append([method, name] + cells)
    return [f"{round(100 * f)} %" for f in fractions], rows


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
        "- `*` marks the method's default map. Speed: best-of-3 forward time per image at batch 1 and 8 "
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
        for fraction in sorted({r["contamination"] for r in ds["runs"]}):
            title = "" if fraction == 0 else f" — {round(100 * fraction)} % of defective test images in training"
            lines += [f"### Metrics{title}", ""]
            lines += _table(["method", "scorer", "image AUROC", "pixel AUROC", "AUPRO", "image F1-max",
                             "pixel F1-max", "train s", "ms/img b1", "ms/img b8", "peak MB"],
                            _main_rows(ds, fraction)) + [""]
            lines += ["Label-free thresholds: test-set precision / recall / F1", ""]
            lines += _table(["method", "scorer", "image", "image_synthetic", "pixel", "pixel_synthetic"],
                            _threshold_rows(ds, fraction)) + [""]
            types, rows = _per_type_rows(ds, fraction)
            if types:
                lines += ["Image AUROC per defect type", ""] + _table(["method", "scorer"] + types, rows) + [""]
        if len({r["contamination"] for r in ds["runs"]}) > 1:
            header, rows = _contamination_rows(ds)
            lines += ["### Contamination (TrustMAE §3.2): image AUROC / pixel AUROC on the remaining test images",
                      ""] + _table(["method", "scorer"] + header, rows) + [""]
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
