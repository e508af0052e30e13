"""Persistent GUI settings (window layout, recent folders and models, last training choices) in an INI file
under the user data folder, so `DEFECTLAB_HOME` isolates them (tests, kiosks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from core.paths import user_data_dir

MAX_RECENT = 8


def open_settings() -> QSettings:
    return QSettings(str(user_data_dir() / "gui.ini"), QSettings.Format.IniFormat)


def recent(settings: QSettings, key: str) -> list[Path]:
    """Recent paths under `key` that still exist, newest first, absolute."""
    values = settings.value(key, [])
    if isinstance(values, str):
        values = [values]
    return [Path(v).absolute() for v in values or [] if Path(v).exists()]


def add_recent(settings: QSettings, key: str, path: Path) -> None:
    """Put `path` first under `key`, stored absolute so that it still works from another working folder."""
    path = Path(path).expanduser().resolve()
    items = [str(path)] + [str(p) for p in recent(settings, key) if p.resolve() != path]
    settings.setValue(key, items[:MAX_RECENT])


def value(settings: QSettings, key: str, default: Any, kind: type = str) -> Any:
    raw = settings.value(key, default)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        return default
