"""A small terminal progress bar for generators of Progress (stderr; line-per-10% when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO

from core.progress import Progress, last_progress

WIDTH = 28


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f" ETA {minutes}:{secs:02d}"


def format_progress(p: Progress) -> str:
    losses = " ".join(f"{k}={v:.4g}" for k, v in list(p.losses.items())[:4])
    if p.extra.get("overall"):  # long work made of several jobs (bench): where the whole is
        losses = f"{losses} [{p.extra['overall']}]".strip()
    if p.total:
        filled = int(WIDTH * min(p.fraction, 1.0))
        bar = "#" * filled + "-" * (WIDTH - filled)
        return f"{p.phase:>10} [{bar}] {p.step}/{p.total}{_eta(p.eta_s)} {losses}".rstrip()
    return f"{p.phase:>10} {p.step} {losses}".rstrip()


def show_progress(values: Iterable[Progress], stream: TextIO | None = None) -> Iterator[Progress]:
    """Pass every value through while drawing it; messages are printed on their own lines."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    last_draw = 0.0
    last_decile: tuple[str, int] = ("", -1)
    for p in values:
        if p.message:
            if tty:
                stream.write("\r\033[K")
            stream.write(f"{p.phase}: {p.message}\n")
        now = time.monotonic()
        if tty and (now - last_draw > 0.1 or p.step == p.total):
            stream.write("\r\033[K" + format_progress(p))
            last_draw = now
        elif not tty and p.total:
            decile = (p.phase, int(10 * p.fraction))
            if decile != last_decile:
                stream.write(format_progress(p) + "\n")
                last_decile = decile
        stream.flush()
        yield p
    if tty:
        stream.write("\n")
        stream.flush()


def run_to_end(values: Iterable[Progress], stream: TextIO | None = None) -> Progress:
    """Draw all values; return the last one."""
    return last_progress(show_progress(values, stream))
