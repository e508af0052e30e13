"""Console entry point: `defectlab <command>` runs the headless CLI; `defectlab` alone (or `defectlab [gui]
<folder | model | project>`) opens the workbench; with no display it runs the main job headless on the demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") not in ("", "offscreen", "minimal"):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # at once, without loading torch (seconds from a cold start)
        import core  # noqa: PLC0415

        print(core.VERSION_TEXT)
        return 0
    from core.cli import main as cli_main  # noqa: PLC0415 - keeps Qt out of headless runs

    opens_path = bool(argv) and not argv[0].startswith("-") and Path(argv[0]).exists()
    if argv and argv[0] != "gui" and not opens_path:
        return cli_main(argv)
    explicit = bool(argv) and argv[0] == "gui"
    if explicit:
        argv = argv[1:]
    try:
        from app.main_window import run_gui  # noqa: PLC0415
    except ImportError as exc:
        if explicit:  # asked for the workbench: say why it cannot open instead of running something else
            print(f"error: the workbench cannot start: {exc}", file=sys.stderr)
            return 2
        run_gui = None
    if run_gui is not None and (explicit or has_display()):
        return run_gui(argv)
    print("no display found: running the main job headless (defectlab demo)", file=sys.stderr)
    return cli_main(["demo"])


if __name__ == "__main__":
    sys.exit(main())
