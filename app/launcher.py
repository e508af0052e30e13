"""Console entry point: `defectlab <command>` runs the headless CLI; `defectlab` alone opens the workbench
(or, with no display, runs the same main job headless on the bundled demo)."""

from __future__ import annotations

import os
import sys


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") not in ("", "offscreen", "minimal"):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from core.cli import main as cli_main  # noqa: PLC0415 - keeps Qt out of headless runs

    if argv and argv[0] != "gui":
        return cli_main(argv)
    try:
        from app.main_window import run_gui  # noqa: PLC0415
    except ImportError:
        run_gui = None
    if run_gui is not None and (has_display() or (argv and argv[0] == "gui")):
        return run_gui(argv[1:])
    print("no display found: running the main job headless (defectlab demo)", file=sys.stderr)
    return cli_main(["demo"])


if __name__ == "__main__":
    sys.exit(main())
