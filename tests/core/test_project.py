"""Project files: readable JSON with relative paths, round trip, moved data reported as missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.project import (Project, ProjectFileError, ThresholdState, missing_paths, missing_report, open_project,
                          relocate, save_project)


def _workspace(root: Path) -> Project:
    """root/data/lot/a.png, root/models/m.safetensors, root/reports/r/; the project goes in root/."""
    (root / "data" / "lot").mkdir(parents=True)
    (root / "data" / "lot" / "a.png").write_bytes(b"png")
    (root / "models").mkdir()
    (root / "models" / "m.safetensors").write_bytes(b"model")
    (root / "reports" / "r").mkdir(parents=True)
    model = root / "models" / "m.safetensors"
    return Project(dataset=root / "data", models=(model,), active_model=model,
                   thresholds=ThresholdState("l2", 0.31, float("inf"), (0.2, 0.3), "set by hand"),
                   current_image=root / "data" / "lot" / "a.png", reports=(root / "reports" / "r",),
                   viewer={"map": "l2", "opacity": 0.6, "zoom": 1.5}, notes="lot 7")


def test_round_trip_with_relative_paths(tmp_path: Path):
    project = _workspace(tmp_path)
    path = save_project(tmp_path / "inspection", project)
    assert path.name == "inspection.defectlab.json"
    values = json.loads(path.read_text(encoding="utf-8"))
    assert values["dataset"] == {"path": "data", "absolute": str(tmp_path / "data")}
    assert values["models"][0]["path"] == "models/m.safetensors"
    assert values["thresholds"]["pixel"] is None  # inf is not JSON: "not set"
    opened = open_project(path)
    assert opened.dataset == tmp_path / "data" and opened.models == project.models
    assert opened.thresholds == ThresholdState("l2", 0.31, None, (0.2, 0.3), "set by hand")
    assert opened.viewer == project.viewer and opened.notes == "lot 7" and opened.reports == project.reports
    assert missing_paths(opened) == [] and missing_report([]) == ""


def test_folder_moved_as_a_whole_still_opens(tmp_path: Path):
    save_project(tmp_path / "a" / "p.defectlab.json", _workspace(tmp_path / "a"))
    shutil.move(tmp_path / "a", tmp_path / "b")  # relative paths still hold, absolute ones do not
    opened = open_project(tmp_path / "b" / "p.defectlab.json")
    assert opened.dataset == tmp_path / "b" / "data" and missing_paths(opened) == []


def test_project_file_moved_alone_uses_absolute_paths(tmp_path: Path):
    save_project(tmp_path / "p.defectlab.json", _workspace(tmp_path / "work"))
    (tmp_path / "elsewhere").mkdir()
    shutil.move(tmp_path / "p.defectlab.json", tmp_path / "elsewhere" / "p.defectlab.json")
    opened = open_project(tmp_path / "elsewhere" / "p.defectlab.json")
    assert opened.dataset == tmp_path / "work" / "data" and missing_paths(opened) == []


def test_moved_data_is_reported_and_can_be_relocated(tmp_path: Path):
    project = _workspace(tmp_path)
    path = save_project(tmp_path / "p.defectlab.json", project)
    shutil.move(tmp_path / "data", tmp_path / "data_new")
    (tmp_path / "models" / "m.safetensors").unlink()
    opened = open_project(path)
    missing = missing_paths(opened)
    assert [(m.role, m.path) for m in missing] == [("dataset", tmp_path / "data"),
                                                   ("model", tmp_path / "models" / "m.safetensors"),
                                                   ("current image", tmp_path / "data" / "lot" / "a.png")]
    text = missing_report(missing)
    assert text.startswith("3 item(s)") and "choose the dataset's new folder" in text
    moved = relocate(opened, tmp_path / "data", tmp_path / "data_new")
    assert moved.current_image == tmp_path / "data_new" / "lot" / "a.png"
    assert [m.role for m in missing_paths(moved)] == ["model"]


def test_bad_files_are_explained(tmp_path: Path):
    with pytest.raises(ProjectFileError, match="file not found"):
        open_project(tmp_path / "none.defectlab.json")
    bad = tmp_path / "bad.defectlab.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ProjectFileError, match="not a readable JSON"):
        open_project(bad)
    bad.write_text(json.dumps({"format": "defectlab-project", "format_version": 99}), encoding="utf-8")
    with pytest.raises(ProjectFileError, match="update DefectLab"):
        open_project(bad)
    with pytest.raises(ValueError, match="JSON values"):
        save_project(tmp_path / "v", Project(viewer={"path": tmp_path}))
