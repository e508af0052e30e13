"""The benchmark's export speed: a trained model exported the way `defectlab export` does and timed through
ONNX Runtime beside its PyTorch timing, in the metrics table on the method's default-map row; a method that
cannot export reads "not exportable"; floors are not exported."""

from __future__ import annotations

from typing import Any

import pytest
from test_bench_smoke import _table_widths
from test_export_onnx import tiny_model

from core.bench.floors import BLUR
from core.bench.scorers import time_scorers
from core.bench.tables import METRICS, NA, main_rows, render
from core.export.speed import EXPORTED, NOT_EXPORTABLE, export_and_time
from core.modelfile import ModelMeta
from core.models.base import AnomalyModel
from core.models.patchcore import PatchCore


def meta_of(model: AnomalyModel) -> ModelMeta:
    return ModelMeta(method=model.method, preset="fast", config=model.config.to_dict(),
                     in_channels=model.config.in_channels, input_size=model.config.input_size,
                     default_map=model.default_map, map_names=list(model.all_map_names))


def bench_run(model: AnomalyModel, label: str, onnx: dict[str, Any] | None) -> dict[str, Any]:
    """A run as `run_job` records it, with only the fields the metrics table reads (no metrics: not scored)."""
    b1, b8 = (time_scorers(model, list(model.map_names), n, repeats=2) for n in (1, 8))
    scorers = {name: {"image_auroc": None, "f1_max": None, "ms_per_image_b1": b1[name],
                      "ms_per_image_b8": b8[name]} for name in model.map_names}
    return {"method": model.method, "label": label, "default_map": model.default_map, "contamination": 0.0,
            "gradient": False, "epochs": 1, "train_seconds": 0.0, "peak_rss_mb": 0.0, "scorers": scorers,
            "onnx": onnx}


def cells(lines: list[str], method: str, scorer: str) -> dict[str, str]:
    headers = [h for _, h in METRICS]
    row = next(line for line in lines if line.startswith(f"| {method} | {scorer} |"))
    return dict(zip(headers, (c.strip() for c in row.strip("|").split("|"))))


def test_export_speed_rows_in_the_metrics_table(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("patchcore")
    onnx = export_and_time(model, meta_of(model), (1, 8), repeats=2)
    assert onnx["status"] == EXPORTED and onnx["export_seconds"] > 0
    assert onnx["ms_per_image_b1"] > 0 and onnx["ms_per_image_b8"] > 0
    monkeypatch.setattr(PatchCore, "export_blocker", "its test-time search runs in Python")
    blocked = export_and_time(model, meta_of(model), (1, 8))
    assert blocked == {"status": NOT_EXPORTABLE, "reason": "its test-time search runs in Python"}

    floor = bench_run(model, BLUR, None)
    floor["method"] = BLUR
    runs = [bench_run(model, "patchcore", onnx), bench_run(model, "patchcore blocked", blocked), floor]
    lines = render(METRICS, main_rows({"name": "tiny", "runs": runs, "trivial": {}}))
    exported = cells(lines, "patchcore", "nn*")
    assert exported["ONNX ms/img b1"] == f"{onnx['ms_per_image_b1']:.1f}"
    assert exported["ONNX ms/img b8"] == f"{onnx['ms_per_image_b8']:.1f}"
    assert exported["ms/img b1"] == f"{runs[0]['scorers']['nn']['ms_per_image_b1']:.1f}"
    assert cells(lines, "patchcore blocked", "nn*")["ONNX ms/img b8"] == NOT_EXPORTABLE
    assert cells(lines, BLUR, "nn*")["ONNX ms/img b1"] == NA
    (header, widths), = _table_widths("\n".join(lines))
    assert header == len(METRICS) and widths and all(w == header for w in widths)
