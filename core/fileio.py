"""Atomic file writes and output checks: a crash or cancel never leaves a half-written model, checkpoint or
report; a bad output path is refused before any long work starts; nothing is ever written over an input."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from core.errors import UserError, os_error_message

_UMASK = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)
_STARTED = time.time()  # temp files older than this process were left by an interrupted earlier run
FILE_MODE = 0o666 & ~_UMASK  # what a plain open() gives: readable by others, as output files should be


def _remove_stale_temps(target: Path) -> None:
    """Delete `.NAME.*.tmp` siblings of `target` that an interrupted earlier run left behind."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < _STARTED:
                stale.unlink()


@contextlib.contextmanager
def atomic_target(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds it replaces `path` in one step with
    ordinary permissions. On failure the temporary file is removed and `path` is left as it was.
    `durable=False` skips the fsync, for caches that can be rebuilt (one per scored image)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


def _file_above(path: Path) -> Path | None:
    """The first existing ancestor of `path` that is a file (so `path` can never be created), or None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _probe_folder(folder: Path, option: str) -> None:
    """Create `folder` if needed and check that a file can be written in it (the probe is removed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".defectlab-probe.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise UserError(f"{option}: {os_error_message(exc)}") from None


def check_output_file(path: str | Path, option: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse, before any work, an output file that cannot be written: a folder, a path under a file, an
    unwritable folder, or one of the `inputs` (or a file inside an input folder). Returns the path."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {path / 'out'}{path.suffix}")
    blocker = _file_above(path)
    if blocker is not None:
        raise UserError(f"{option} {path}: {blocker} is a file, not a folder; choose another path")
    _check_not_input(path, option, inputs)
    _probe_folder(path.parent, option)
    return path


def check_output_folder(path: str | Path, option: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse, before any work, an output folder that cannot be used: a file, a path under a file, an
    unwritable folder, or an input folder (or a folder inside one). Creates it; returns the path."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file; give a folder (it is created when missing)")
    blocker = _file_above(path)
    if blocker is not None:
        raise UserError(f"{option} {path}: {blocker} is a file, not a folder; choose another path")
    _check_not_input(path, option, inputs)
    _probe_folder(path, option)
    return path


def _check_not_input(path: Path, option: str, inputs: Iterable[str | Path]) -> None:
    resolved = path.resolve()
    for source in inputs:
        source = Path(source).expanduser().resolve()
        if resolved == source or (source.is_dir() and resolved.is_relative_to(source)):
            raise UserError(f"{option} {path} is inside the input {source}; DefectLab never writes into its "
                            "inputs: choose an output outside it")
