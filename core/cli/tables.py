"""Plain-text metric tables for the terminal."""

from __future__ import annotations

from typing import Any

COLUMNS = (("image_auroc", "image AUROC"), ("pixel_auroc", "pixel AUROC"), ("aupro", "AUPRO@0.3"),
           ("f1_max", "image F1-max"), ("pixel_f1_max", "pixel F1-max"))


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def metrics_table(report: dict[str, Any]) -> str:
    """One row per anomaly map, the model's default map first and marked with *."""
    names = sorted(report["maps"], key=lambda n: (n != report["default_map"], n))
    rows = []
    for name in names:
        m = report["maps"][name]
        at = m.get("at_label_free_thresholds", {}).get("image", {})
        label_free = f"{_prf(at)} ({_pct(at.get('false_reject_rate'))})" if at else "-"
        marker = "*" if name == report["default_map"] else ""
        rows.append([name + marker] + [_fmt(m.get(key)) for key, _ in COLUMNS] + [label_free])
    headers = ["map"] + [title for _, title in COLUMNS] + ["P/R/F1 (FRR) @ label-free thr"]
    return render_table(headers, rows)


def _prf(at: dict[str, Any]) -> str:
    return f"{_fmt(at.get('precision'))}/{_fmt(at.get('recall'))}/{_fmt(at.get('f1'))}"


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "-"


def threshold_table(report: dict[str, Any]) -> str:
    """One row per stored label-free threshold of every map: its precision/recall/F1 on the test set, the
    share of good test parts it rejects (FRR), the share it rejected of the held-out good images, and
    whether its calibration was degenerate."""
    names = sorted(report["maps"], key=lambda n: (n != report["default_map"], n))
    rows = []
    for name in names:
        for kind, at in report["maps"][name].get("at_label_free_thresholds", {}).items():
            status = "DEGENERATE: not usable" if at.get("degenerate") else "usable"
            rows.append([name, kind, f"{at['threshold']:.4g}", _prf(at), _pct(at.get("false_reject_rate")),
                         _pct(at.get("calibration_false_reject_rate")), status])
    headers = ["map", "threshold", "value", "P/R/F1", "FRR good (test)", "FRR good (held-out)", "calibration"]
    return render_table(headers, rows) if rows else "no label-free thresholds stored"


def per_type_table(report: dict[str, Any]) -> str:
    per_type = report["maps"][report["default_map"]].get("per_type", {})
    return render_table(["defect type", "image AUROC"], [[k, _fmt(v)] for k, v in sorted(per_type.items())])
