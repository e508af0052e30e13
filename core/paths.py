"""Per-user folders (platformdirs) for models and state. `DEFECTLAB_HOME` moves all of them (tests, kiosks)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from core.fileio import write_text_atomic

APP = "defectlab"


def user_data_dir() -> Path:
    home = os.environ.get("DEFECTLAB_HOME")
    return Path(home).expanduser() if home else Path(platformdirs.user_data_dir(APP, appauthor=False))


def models_dir() -> Path:
    return user_data_dir() / "models"


def unused_path(path: Path) -> Path:
    """`path` when no file is there, else the first free `<stem>-2<suffix>`, `<stem>-3<suffix>`, ... beside it
    (the suffix is everything from the first dot, e.g. `.safetensors`)."""
    path = Path(path)
    if not path.exists():
        return path
    stem, dot, suffix = path.name.partition(".")
    number = 2
    while (path.parent / f"{stem}-{number}{dot}{suffix}").exists():
        number += 1
    return path.parent / f"{stem}-{number}{dot}{suffix}"


def _last_model_file() -> Path:
    return user_data_dir() / "last_model.txt"


def remember_last_model(path: Path) -> None:
    write_text_atomic(_last_model_file(), str(Path(path).resolve()))


def last_model() -> Path | None:
    """The most recently trained model: the remembered one if it still exists, else the newest in models_dir."""
    marker = _last_model_file()
    if marker.is_file():
        remembered = Path(marker.read_text(encoding="utf-8").strip())
        if remembered.is_file():
            return remembered
    candidates = sorted(models_dir().glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
    candidates = [p for p in candidates if not p.name.endswith(".ckpt.safetensors")]
    return candidates[-1] if candidates else None
