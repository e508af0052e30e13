"""One JSON file per finished benchmark run, so a long profile can be resumed.

A run's key hashes everything its numbers depend on: the dataset (name and folder), the method, variant,
preset, overrides, scorers and test variants, the profile's epochs, seed, validation share and metric
resolution, the training set (normal and moved image counts and the contamination target), and the code
version (a hash of every source file under core/ that can change a number,
`core.bench.system.source_version`). Changing any of them makes a new key, so a stale result is never reused.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from core.fileio import write_text_atomic


def _jsonable(value: Any) -> Any:
    """json.dumps default: NumPy scalars and arrays become plain numbers and lists, paths strings."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, default=_jsonable)


def run_key(fields: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a JSON-friendly dict."""
    text = json.dumps(fields, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunCache:
    """Finished runs under `folder`, one `<label>-<key>.json` each."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, label: str, key: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")[:80]
        return self.folder / f"{slug}-{key}.json"

    def load(self, label: str, key: str) -> dict[str, Any] | None:
        path = self._path(label, key)
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # a damaged file (e.g. the disk filled up): run again
        return entry.get("result") if entry.get("key") == key else None

    def save(self, label: str, key: str, fields: dict[str, Any], result: dict[str, Any]) -> Path:
        path = self._path(label, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, dumps({"key": key, "fields": fields, "result": result}))
        return path
