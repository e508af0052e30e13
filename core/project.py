"""Project files: the dataset, models, thresholds and viewer state of a piece of work, as readable JSON.

Every path is saved twice: relative to the project file (so a folder copied or moved as a whole still works)
and absolute (so a project file moved on its own still finds the data). Opening tries the relative one first.
Nothing is checked at open time; `missing_paths()` says afterwards what could not be found and what to do.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import core
from core.errors import FileError
from core.fileio import write_text_atomic

PROJECT_SUFFIX = ".defectlab.json"
FORMAT = "defectlab-project"
FORMAT_VERSION = 1


class ProjectFileError(FileError):
    """A project file that cannot be opened, with the file and the reason."""

    action = "open project"


@dataclass(frozen=True)
class ThresholdState:
    """The thresholds in use. None = not set (the GUI shows that as infinity: nothing flagged)."""

    map_name: str = ""
    image: float | None = None
    pixel: float | None = None
    review: tuple[float, float] | None = None  # (low, high) score band a person should look at
    how: str = ""  # e.g. "from the model: label-free ..." or "set by hand"


@dataclass(frozen=True)
class Project:
    dataset: Path | None = None
    models: tuple[Path, ...] = ()
    active_model: Path | None = None  # one of `models`
    thresholds: ThresholdState = ThresholdState()
    current_image: Path | None = None
    reports: tuple[Path, ...] = ()  # inspection report folders
    viewer: dict[str, Any] = field(default_factory=dict)  # JSON values only (map, opacity, zoom, ...), no paths
    notes: str = ""
    # What a person said about images ("good" / "defect"), by path relative to the dataset folder.
    reviews: dict[str, str] = field(default_factory=dict)
    # Where each path lay when the project was saved (resolved path -> saved absolute path), for messages.
    saved_at: dict[Path, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class MissingPath:
    role: str  # "dataset", "model", "current image", "report"
    path: Path
    message: str


# ----------------------------------------------------------------------------------------------------- save
def _entry(path: Path, base: Path) -> dict[str, str]:
    absolute = Path(path).absolute()
    entry = {"absolute": str(absolute)}
    try:
        entry["path"] = Path(os.path.relpath(absolute, base)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        pass
    return entry


def _finite(value: float | None) -> float | None:
    """inf / NaN are not JSON; they mean "not set"."""
    return None if value is None or not math.isfinite(value) else float(value)


def project_dict(project: Project, base: Path) -> dict[str, Any]:
    """The JSON-ready form, paths relative to the folder `base` (the project file's folder)."""
    def entry(path: Path | None) -> dict[str, str] | None:
        return None if path is None else _entry(path, base)

    t = project.thresholds
    saved = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "saved": saved, "code_version": core.__version__,
        "dataset": entry(project.dataset),
        "models": [entry(m) for m in project.models],
        "active_model": entry(project.active_model),
        "thresholds": {"map": t.map_name, "image": _finite(t.image), "pixel": _finite(t.pixel),
                       "review": None if t.review is None else [float(v) for v in t.review], "how": t.how},
        "current_image": entry(project.current_image),
        "reports": [entry(r) for r in project.reports],
        "viewer": project.viewer,
        "notes": project.notes,
        "reviews": dict(sorted(project.reviews.items())),
    }


def save_project(path: str | Path, project: Project) -> Path:
    """Write the project as indented JSON, atomically; returns the path (PROJECT_SUFFIX added if missing)."""
    path = Path(path)
    if not path.name.endswith(PROJECT_SUFFIX):
        path = path.with_name(path.name + PROJECT_SUFFIX)
    values = project_dict(project, path.absolute().parent)
    try:
        text = json.dumps(values, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"project viewer state must hold only JSON values (numbers, text, lists, dicts); "
                         f"{exc}") from exc
    write_text_atomic(path, text + "\n")
    return path


# ----------------------------------------------------------------------------------------------------- open
def _resolve(entry: dict[str, str] | None, base: Path, saved_at: dict[Path, str]) -> Path | None:
    """The relative location if it exists, else the absolute one if that exists, else the relative one."""
    if entry is None:
        return None
    candidates = ([base / entry["path"]] if "path" in entry else []) + [Path(entry["absolute"])]
    found = next((c for c in candidates if c.exists()), candidates[0])
    found = Path(os.path.normpath(found))
    saved_at[found] = entry["absolute"]
    return found


def open_project(path: str | Path) -> Project:
    """Read a project file; missing data is not an error here: ask `missing_paths()`."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectFileError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectFileError(path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(values, dict) or values.get("format") != FORMAT:
        raise ProjectFileError(path, f"not a DefectLab project (no \"format\": \"{FORMAT}\")")
    version = values.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ProjectFileError(path, f"format version {version!r} is not supported (this DefectLab reads "
                                     f"1..{FORMAT_VERSION}); update DefectLab")
    base = path.absolute().parent
    saved_at: dict[Path, str] = {}
    try:
        t = values.get("thresholds") or {}
        review = t.get("review")
        return Project(
            dataset=_resolve(values.get("dataset"), base, saved_at),
            models=tuple(_resolve(m, base, saved_at) for m in values.get("models", [])),
            active_model=_resolve(values.get("active_model"), base, saved_at),
            thresholds=ThresholdState(t.get("map", ""), t.get("image"), t.get("pixel"),
                                      None if review is None else (float(review[0]), float(review[1])),
                                      t.get("how", "")),
            current_image=_resolve(values.get("current_image"), base, saved_at),
            reports=tuple(_resolve(r, base, saved_at) for r in values.get("reports", [])),
            viewer=dict(values.get("viewer") or {}),
            notes=str(values.get("notes", "")),
            reviews={str(k): str(v) for k, v in (values.get("reviews") or {}).items()},
            saved_at=saved_at,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProjectFileError(path, f"malformed content ({exc!r}); was the file edited by hand?") from exc


def missing_paths(project: Project) -> list[MissingPath]:
    """Every path of the project that does not exist on this machine, with what to do about it."""
    what_to_do = {"dataset": "choose the dataset's new folder",
                  "model": "choose the model file's new location or remove it from the project",
                  "current image": "it will be skipped",
                  "report": "choose the report folder's new location or remove it from the project"}
    checks = [("dataset", project.dataset)] + [("model", m) for m in project.models]
    checks += [("current image", project.current_image)] + [("report", r) for r in project.reports]
    if project.active_model is not None and project.active_model not in project.models:
        checks.append(("model", project.active_model))
    missing = []
    for role, path in checks:
        if path is None or path.exists():
            continue
        saved = project.saved_at.get(path)
        where = f" (saved as {saved})" if saved and Path(saved) != path else ""
        missing.append(MissingPath(role, path, f"{role} not found: {path}{where}; {what_to_do[role]}"))
    return missing


def missing_report(missing: list[MissingPath]) -> str:
    """One message for the user; empty when nothing is missing."""
    if not missing:
        return ""
    lines = [f"{len(missing)} item(s) of this project were not found (was the data moved?):"]
    return "\n".join(lines + [f"- {m.message}" for m in missing])


def relocate(project: Project, old_root: Path, new_root: Path) -> Project:
    """Move every path under `old_root` to `new_root`, e.g. after the user points at the moved data folder."""
    old_root, new_root = Path(old_root), Path(new_root)

    def move(path: Path | None) -> Path | None:
        if path is None:
            return None
        try:
            return new_root / path.relative_to(old_root)
        except ValueError:
            return path

    return replace(project, dataset=move(project.dataset), models=tuple(move(m) for m in project.models),
                   active_model=move(project.active_model), current_image=move(project.current_image),
                   reports=tuple(move(r) for r in project.reports))
