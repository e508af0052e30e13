"""Inspection reports: CSV/JSON contents against the predictions, the pages, and a partial report after cancel."""

from __future__ import annotations

import base64
import csv
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.inference import ImageResult
from core.metrics.thresholds import Threshold
from core.modelfile import read_meta
from core.progress import CancelToken, last_progress
from core.regions import find_regions
from core.report import ReportBuilder, RunInfo, read_report, write_report
from core.report.csvjson import PARTIAL_ROW
from core.training import TrainOptions
from core.workflow import PredictRequest, TrainRequest, predict_folder, train_model


def _pdf_text(path: Path) -> str:
    """Text drawn in a PDF, good enough to search: all streams, ASCII85-decoded and inflated when encoded."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    parts = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        stream = stream.strip()
        try:
            if stream.endswith(b"~>"):  # reportlab writes ASCII85 around the Flate data
                stream = base64.a85decode(stream[:-2])
            parts.append(zlib.decompress(stream))
        except (ValueError, zlib.error):
            parts.append(stream)
    return b"".join(parts).decode("latin-1")


@pytest.fixture(scope="module")
def model(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    last_progress(train_model(TrainRequest(tiny_demo, "ae-l2", "fast", {"epochs": 1, "batch_size": 4}, out,
                                   options=TrainOptions(device="cpu"))))
    return out


def _info(tmp: Path) -> RunInfo:
    return RunInfo(tmp / "m.safetensors", "ae-l2", "fast", "/data/x", tmp / "lot", "l2",
                   Threshold(0.5, "label-free: test"), Threshold(0.5, "F1-max on labelled data"), min_region_area=2)


def test_report_from_hand_made_maps(tmp_path: Path):
    folder = tmp_path / "report"
    builder = ReportBuilder(folder, _info(tmp_path))
    spot = np.zeros((20, 30), np.float32)
    spot[2:6, 3:8] = 0.9  # 20 px region
    spot[15, 25] = 0.9  # 1 px: below min area
    overlay = np.zeros((20, 30, 3), np.uint8)
    builder.add(ImageResult(tmp_path / "lot" / "a.png", "crack", 0.9, "defective", {"l2": 0.9}), spot, overlay)
    builder.add(ImageResult(tmp_path / "lot" / "b.png", "good", 0.1, "good", {"l2": 0.1}), spot * 0, overlay)
    report = builder.report(planned=3, skipped=[(tmp_path / "lot" / "c.png", "truncated file")])
    files = write_report(folder, report)

    rows = list(csv.DictReader(files.csv.open(encoding="utf-8")))
    assert [r["verdict"] for r in rows] == ["defective", "good", "skipped"]
    assert rows[0]["n_regions"] == "1" and rows[0]["largest_region_px"] == "20"
    assert rows[0]["regions"] == "3,2,5,4 area=20 max=0.9" and rows[0]["largest_region_percent"] == "3.333"
    assert rows[0]["image_threshold"] == "0.5" and rows[0]["model"] == "m.safetensors" and rows[0]["time"]
    assert rows[1]["n_regions"] == "0" and rows[2]["label"] == "truncated file"
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert data["partial"] is False and data["run"]["pixel_threshold"]["how"] == "F1-max on labelled data"
    assert data["images"][0]["regions"][0]["bbox"] == [3, 2, 5, 4]
    again = read_report(folder)
    assert again.records[0].regions == report.records[0].regions and again.info == report.info
    assert (folder / again.records[0].thumb).is_file()
    page = files.html.read_text(encoding="utf-8")
    assert "F1-max on labelled data" in page and "thumbs/00001_a.jpg" in page and "Partial" not in page
    text = _pdf_text(files.pdf)
    assert "DefectLab inspection report" in text and "PARTIAL" not in text


def test_predict_report_matches_predictions(model: Path, tiny_demo: Path, tmp_path: Path):
    request = PredictRequest(model, tiny_demo / "test", tmp_path / "out", device="cpu", keep_maps=True,
                             report=tmp_path / "report", min_region_area=4)
    last = last_progress(predict_folder(request))
    assert last.phase == "done" and last.extra["report"].pdf.is_file()
    meta = read_meta(model)
    pixel_t = meta.pixel_threshold()
    by_file = {str(r.path): r for r in last.result}
    rows = list(csv.DictReader((tmp_path / "report" / "inspection.csv").open(encoding="utf-8")))
    assert len(rows) == len(last.result) == 8
    for row in rows:
        result = by_file[row["file"]]
        assert float(row["score"]) == pytest.approx(result.score, rel=1e-5) and row["verdict"] == result.verdict
        assert row["label"] == result.label
    data = json.loads((tmp_path / "report" / "inspection.json").read_text(encoding="utf-8"))
    assert data["run"]["method"] == "ae-l2" and data["run"]["image_threshold"]["how"].startswith("label-free")
    assert data["planned"] == 8 and not data["partial"]
    for image in data["images"]:
        result = by_file[image["file"]]
        expected = find_regions(result.maps[meta.default_map], pixel_t, min_area=4)
        assert image["n_regions"] == len(expected)
        assert [r["bbox"] for r in image["regions"]] == [list(r.bbox) for r in expected[:20]]
        assert image["overlay"] and Path(image["overlay"]).is_file()
    assert len(list((tmp_path / "report" / "thumbs").glob("*.jpg"))) == 8


def test_cancelled_run_writes_partial_report(model: Path, tiny_demo: Path, tmp_path: Path):
    cancel = CancelToken()
    request = PredictRequest(model, tiny_demo, None, device="cpu", report=tmp_path / "report")
    for p in predict_folder(request, cancel):
        if p.phase == "predict":
            cancel.cancel()  # honoured between batches: the first batch (8 of 20 images) is finished
    assert p.phase == "cancelled" and 0 < len(p.result) < 20
    report = read_report(tmp_path / "report")
    assert report.partial and report.planned == 20 and len(report.records) == len(p.result)
    rows = list(csv.reader((tmp_path / "report" / "inspection.csv").open(encoding="utf-8")))
    assert rows[-1] == [PARTIAL_ROW] and len(rows) == 1 + len(p.result) + 1
    assert "Partial report" in (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "PARTIAL REPORT" in _pdf_text(tmp_path / "report" / "report.pdf")


def test_cli_predict_report(model: Path, tiny_demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    report = tmp_path / "report"
    assert main(["predict", "--model", str(model), "--input", str(tiny_demo / "test" / "good"),
                 "--report", str(report), "--min-area", "8", "--device", "cpu"]) == 0
    assert f"report: {report / 'report.html'} and {report / 'report.pdf'}" in capsys.readouterr().out
    for name in ("inspection.csv", "inspection.json", "histogram.png", "report.html", "report.pdf", "scores.csv"):
        assert (report / name).is_file(), name
    assert read_report(report).info.min_region_area == 8
    assert main(["predict", "--model", str(model), "--input", str(tiny_demo)]) == 2
    assert "--out DIR" in capsys.readouterr().err
