"""The benchmark's tables. Each table is ONE list of columns (key, header); rows are dicts of cells by key and
`render` writes exactly one cell per column, so a row can never be wider or narrower than its header."""

from __future__ import annotations

from typing import Any

from core.bench.floors import BLUR
from core.bench.published import published_for
from core.workflow.evaluate import THRESHOLD_KINDS

NA = "–"
Column = tuple[str, str]  # (key, header)
Row = dict[str, str]

METRICS: list[Column] = [
    ("method", "method"), ("scorer", "scorer"), ("image_auroc", "image AUROC"),
    ("d_image", "Δ image AUROC vs blur (pts)"), ("mean_pool", "mean-pool image AUROC"),
    ("pixel_auroc", "pixel AUROC"), ("d_pixel", "Δ pixel AUROC vs blur (pts)"), ("aupro", "AUPRO"),
    ("f1_max", "image F1-max (oracle)"), ("pixel_f1_max", "pixel F1-max (oracle)"),
    ("train", "train s (epochs)"), ("b1", "ms/img b1"), ("b8", "ms/img b8"), ("onnx_b1", "ONNX ms/img b1"),
    ("onnx_b8", "ONNX ms/img b8"), ("peak", "peak MB")]
ABLATIONS: list[Column] = [c for c in METRICS if c[0] not in ("f1_max", "b1", "b8", "onnx_b1", "onnx_b8", "peak")]
THRESHOLDS: list[Column] = [("method", "method"), ("scorer", "scorer")] + [
    col for kind in THRESHOLD_KINDS for col in ((kind, f"{kind}: P / R / F1"), (f"{kind}_frr", f"{kind}: FRR"))]
AUDIT: list[Column] = [("method", "method"), ("level", "defective share of training"), ("injected", "injected"),
                       ("top_n", "in top N"), ("flagged", "flagged (injected of all)"),
                       ("ranking_auroc", "ranking AUROC")]
OBSERVED: list[Column] = [("method", "method"), ("phase", "phase"), ("losses", "last-epoch losses"),
                          ("memory_slots_used", "slots used"), ("memory_top_weight", "top weight"),
                          ("trust_pulled", "TR pulled"), ("trust_pushed", "TR pushed"),
                          ("trust_ignored", "TR ignored")]
PUBLISHED_MARK = "published"


def render(columns: list[Column], rows: list[Row]) -> list[str]:
    """Markdown lines of a table: header, rule, one line per row (a missing cell reads NA)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return ([line([h for _, h in columns]), "|" + "---|" * len(columns)]
            + [line([row.get(key, NA) for key, _ in columns]) for row in rows])


def _f(value: Any, digits: int = 3) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def _pts(value: Any, floor: float | None) -> str:
    return NA if value is None or floor is None else f"{100 * (value - floor):+.1f}"


def label(run: dict[str, Any]) -> str:
    return run.get("label") or run["method"]


def level_runs(ds: dict[str, Any], level: float = 0.0) -> list[dict[str, Any]]:
    return [r for r in ds["runs"] if r["contamination"] == level]


def blur_floor(ds: dict[str, Any]) -> dict[str, float | None]:
    """The blur floor's best image and pixel AUROC over its maps on the clean level (None without one)."""
    runs = [r for r in level_runs(ds) if r["method"] == BLUR]
    metrics = [m for r in runs for m in r["scorers"].values()]

    def best(key: str) -> float | None:
        values = [m[key] for m in metrics if m.get(key) is not None]
        return max(values) if values else None

    return {"image_auroc": best("image_auroc"), "pixel_auroc": best("pixel_auroc")}


def flag_everything(ds: dict[str, Any]) -> dict[str, float | None]:
    """Image and pixel F1 of flagging everything on the clean level's test set."""
    run = next((r for r in level_runs(ds) if r.get("flag_everything")), None)
    return run["flag_everything"] if run else {"image_f1": None, "pixel_f1": None}


def _train_cell(run: dict[str, Any]) -> str:
    if run["method"] == BLUR:
        return "no training"
    unit = "ep" if run.get("gradient", True) else "pass"
    return f"{run['train_seconds']:.0f} ({run['epochs']:.3g} {unit})"


def onnx_cells(run: dict[str, Any], name: str) -> Row:
    """The exported graph's ms/image at batch 1 and 8 on the default map's row (the graph `defectlab export`
    writes holds that map), or why there is none; {} on other rows and for runs that were not exported."""
    onnx = run.get("onnx")
    if not onnx or name != run["default_map"]:
        return {}
    if onnx["status"] != "exported":
        return {"onnx_b1": onnx["status"], "onnx_b8": onnx["status"]}
    return {"onnx_b1": _f(onnx["ms_per_image_b1"], 1), "onnx_b8": _f(onnx["ms_per_image_b8"], 1)}


def metric_row(run: dict[str, Any], name: str, m: dict[str, Any], floor: dict[str, float | None]) -> Row:
    """All METRICS cells of one (run, scorer); the ablation table shows a subset of them."""
    star = "*" if name == run["default_map"] else ""
    is_floor = run["method"] == BLUR
    return {"method": label(run), "scorer": f"{name}{star}", "image_auroc": _f(m["image_auroc"]),
            "d_image": NA if is_floor else _pts(m["image_auroc"], floor["image_auroc"]),
            "mean_pool": _f(m.get("image_auroc_mean_pool")), "pixel_auroc": _f(m.get("pixel_auroc")),
            "d_pixel": NA if is_floor else _pts(m.get("pixel_auroc"), floor["pixel_auroc"]),
            "aupro": _f(m.get("aupro")), "f1_max": _f(m["f1_max"]), "pixel_f1_max": _f(m.get("pixel_f1_max")),
            "train": _train_cell(run), "b1": _f(m["ms_per_image_b1"], 1), "b8": _f(m["ms_per_image_b8"], 1),
            **onnx_cells(run, name), "peak": f"{run['peak_rss_mb']:.0f}"}


def main_rows(ds: dict[str, Any]) -> list[Row]:
    """Every clean-level (run, scorer), then the floors, the trivial rows and any published results."""
    floor = blur_floor(ds)
    runs = level_runs(ds)
    ordered = [r for r in runs if r["method"] != BLUR] + [r for r in runs if r["method"] == BLUR]
    rows = [metric_row(run, name, m, floor) for run in ordered for name, m in run["scorers"].items()]
    flags = flag_everything(ds)
    rows.append({"method": "floor", "scorer": "flag everything", "image_auroc": "0.500", "pixel_auroc": "0.500",
                 "f1_max": _f(flags["image_f1"]), "pixel_f1_max": _f(flags.get("pixel_f1"))})
    for name, m in ds["trivial"].items():
        rows.append({"method": "trivial", "scorer": name, "f1_max": _f(m["f1_max"]),
                     "image_auroc": f"{m['image_auroc_best_sign']:.3f} ({m['sign']})"})
    for i, result in enumerate(published_for(ds["name"]), 1):
        rows.append({"method": result.method, "scorer": f"{PUBLISHED_MARK} [{i}]",
                     "image_auroc": _f(result.image_auroc), "d_image": _pts(result.image_auroc, floor["image_auroc"])})
    return rows


def _prf(entry: dict[str, Any] | None, threshold: dict[str, Any] | None) -> str:
    if not entry:
        return NA
    cell = f"{entry['precision']:.2f} / {entry['recall']:.2f} / {entry['f1']:.2f}"
    return cell + (" (degenerate)" if (threshold or {}).get("degenerate") else "")


def threshold_rows(ds: dict[str, Any]) -> list[Row]:
    rows = []
    for run in level_runs(ds):
        for name, m in run["scorers"].items():
            at, frr = m["at_label_free_thresholds"], m.get("false_reject_rate", {})
            stored = run.get("thresholds", {}).get(name, {})
            row = {"method": label(run), "scorer": name}
            for kind in THRESHOLD_KINDS:
                row[kind] = _prf(at.get(kind), stored.get(kind))
                row[f"{kind}_frr"] = _f(frr.get(kind), 2)
            rows.append(row)
    return rows


STEPS: list[Column] = [("method", "method"), ("steps", "steps taken"), ("first_step_ms", "first step ms"),
                       ("ms_per_later_step", "ms per later step"), ("total_ms", "total ms")]


def steps_rows(ds: dict[str, Any]) -> list[Row]:
    """Clean-level runs of iterative methods: their inference timed step by step on one test image."""
    return [{"method": label(run), "steps": str(run["steps"]["steps"]),
             **{key: _f(run["steps"].get(key), 1) for key, _ in STEPS[2:]}}
            for run in level_runs(ds) if run.get("steps")]


def observability_rows(ds: dict[str, Any]) -> list[Row]:
    """One row per (clean-level run, gradient phase): mean losses and observability over its last epoch."""
    rows = []
    for run in level_runs(ds):
        for phase, seen in (run.get("observability") or {}).items():
            losses = ", ".join(f"{k} {v:.3g}" for k, v in seen["losses"].items())
            observed = seen["observability"]
            rows.append({"method": label(run), "phase": phase, "losses": losses or NA,
                         **{key: _f(observed.get(key)) for key, _ in OBSERVED[3:]}})
    return rows


def per_type_table(ds: dict[str, Any]) -> tuple[list[Column], list[Row]]:
    runs = level_runs(ds)
    types = sorted({t for r in runs for m in r["scorers"].values() for t in m["per_type"]})
    columns = [("method", "method"), ("scorer", "scorer")] + [(f"type:{t}", t) for t in types]
    rows = [{"method": label(run), "scorer": name, **{f"type:{t}": _f(m["per_type"].get(t)) for t in types}}
            for run in runs for name, m in run["scorers"].items()]
    return (columns if types else []), rows


TEST_TIME = "(test time)"  # the label suffix of a test variant's row
SAME_AS_TRAINED = "(test time, = trained)"  # ... of one whose settings are the trained model's own


def rows_at_test_time(run: dict[str, Any], floor: dict[str, float | None]) -> list[Row]:
    """One row per test variant of a run (its default map), labelled "<run> <variant> (test time)"."""
    rows = []
    for name, entry in (run.get("test_variants") or {}).items():
        for scorer, m in entry["scorers"].items():
            row = metric_row({**run, "onnx": None}, scorer, {"ms_per_image_b1": None, "ms_per_image_b8": None, **m},
                             floor)
            suffix = SAME_AS_TRAINED if entry.get("same_as_trained") else TEST_TIME
            rows.append({**row, "method": f"{label(run)} {name} {suffix}", "train": "not retrained"})
    return rows


def tuned_note(ds: dict[str, Any]) -> str:
    """What training tuned in the clean-level runs that have test variants, e.g. "Tuned in training: i3ad
    u = 0.25."; "" when nothing was."""
    parts = [f"{label(run)} " + ", ".join(f"{key} = {value:.3g}" for key, value in run["tuned"].items())
             for run in level_runs(ds) if run.get("test_variants") and run.get("tuned")]
    return f"Tuned in training: {'; '.join(parts)}." if parts else ""


def ablation_rows(ds: dict[str, Any]) -> list[Row]:
    """Clean-level rows of every method that has ablation or test variants: the full method's maps, then
    each variant's default map and its l1 / l2 map, and each run's test variants after its own rows."""
    clean = level_runs(ds)
    floor = blur_floor(ds)
    with_variants = [m for m in dict.fromkeys(r["method"] for r in clean)
                     if any(r.get("variant") or r.get("test_variants") for r in clean if r["method"] == m)]
    return [row for method in with_variants for run in clean if run["method"] == method
            for row in [metric_row(run, name, m, floor) for name, m in run["scorers"].items()
                        if not run.get("variant") or name in (run["default_map"], "l1", "l2")]
            + rows_at_test_time(run, floor)]


def level_header(level: dict[str, Any]) -> str:
    """A sweep column's title: the defective share of the training set actually reached."""
    total = level["n_normal"] + level["n_moved"]
    return f"{100 * level['achieved']:.1f} % ({level['n_moved']} of {total})"


def sweep_table(ds: dict[str, Any]) -> tuple[list[Column], list[Row]]:
    """Image AUROC / pixel AUROC per level on the common test images, with the image AUROC change against
    the clean run in points."""
    levels = ds["levels"]
    columns = [("method", "method"), ("scorer", "scorer")] + [(f"level{i}", level_header(lv))
                                                              for i, lv in enumerate(levels)]
    swept = [r for r in ds["runs"] if r.get("common")]
    keys = list(dict.fromkeys((label(r), name, r["default_map"]) for r in swept for name in r["common"]))
    rows = []
    for run_label, name, default_map in keys:
        row, clean = {"method": run_label, "scorer": name + ("*" if name == default_map else "")}, None
        for i, level in enumerate(levels):
            run = next((r for r in swept if label(r) == run_label and r["contamination"] == level["target"]), None)
            m = run["common"].get(name) if run else None
            if m is None:
                continue
            clean = m["image_auroc"] if level["target"] == 0 else clean
            delta = "" if level["target"] == 0 or clean is None else f" ({100 * (m['image_auroc'] - clean):+.1f})"
            row[f"level{i}"] = f"{m['image_auroc']:.3f}{delta} / {_f(m.get('pixel_auroc'))}"
        rows.append(row)
    return columns, rows


def audit_rows(ds: dict[str, Any]) -> list[Row]:
    rows = []
    for run in (r for r in ds["runs"] if r.get("audit")):
        a = run["audit"]
        rows.append({"method": label(run), "level": f"{100 * run['contamination_achieved']:.1f} %",
                     "injected": str(a["injected"]),
                     "top_n": f"{a['in_top_n']} ({100 * a['in_top_n'] / max(a['injected'], 1):.0f} %)",
                     "flagged": f"{a['flagged_injected']} of {a['flagged']}", "ranking_auroc": _f(a["ranking_auroc"])})
    return rows
