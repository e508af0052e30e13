"""One error contract for the CLI, the GUI and the core functions they share.

A failure the user can cause or meet becomes one short message that names the file or option, says what is
wrong and what to do. Core code raises `UserError` or a `FileError` (an image, model or project file that
cannot be used; both are ValueErrors, like the other errors of core.data); `user_message` turns those and
OS errors (read-only folder, full disk) into that message; the CLI maps them to exit status 2 and the GUI to
a message box. Only an unexpected failure (a bug) keeps its traceback.
"""

from __future__ import annotations

import errno
import os
from typing import ClassVar

EXIT_DONE = 0
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


class UserError(ValueError):
    """A problem with the user's input, options or environment; the message says what to do."""


class FileError(ValueError):
    """A file that cannot be used: `Cannot <action> <path>: <reason>`, with `path` and `reason` kept."""

    action: ClassVar[str] = "use"

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"Cannot {self.action} {path}: {reason}")
        self.path = path
        self.reason = reason


_OS_ADVICE = {
    errno.ENOSPC: "no space left on the disk; free some space or choose another folder",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another folder",
    errno.EACCES: "permission denied; choose a folder you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you can write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder, not a file; give a file name",
    errno.ENOENT: "file or folder not found; check the path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.EIO: "input/output error (failing disk or lost network share); check the drive and try again",
}

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, MemoryError)


def os_error_message(exc: OSError) -> str:
    """`cannot use PATH: what is wrong; what to do` for an OSError (the path it names, when it names one)."""
    advice = _OS_ADVICE.get(exc.errno or -1, (exc.strerror or str(exc) or type(exc).__name__))
    where = exc.filename if exc.filename is not None else None
    return f"cannot use {where}: {advice}" if where else f"{advice}"


def user_message(exc: BaseException) -> str:
    """The one or two lines a user sees for an expected failure."""
    if isinstance(exc, MemoryError):
        return "out of memory: close other programs, use a smaller preset, fewer or smaller images"
    if isinstance(exc, OSError):
        return os_error_message(exc)
    text = str(exc).strip()
    return text or type(exc).__name__


def is_expected(exc: BaseException) -> bool:
    """True for failures that get a message without a traceback (bad input, environment, memory)."""
    return isinstance(exc, EXPECTED_ERRORS)
