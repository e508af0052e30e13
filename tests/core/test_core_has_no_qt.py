"""core/ must never import Qt, pyqtgraph or app/: checked on the source and in a clean interpreter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
FORBIDDEN = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt5|PyQt6|pyqtgraph|app)(\.|\s|$)", re.MULTILINE)


def test_no_qt_imports_in_core_sources():
    offenders = [str(p) for p in CORE.rglob("*.py") if FORBIDDEN.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_importing_all_of_core_loads_no_qt():
    modules = sorted(".".join(p.relative_to(CORE.parent).with_suffix("").parts)
                     for p in CORE.rglob("*.py") if p.name != "__main__.py")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'app')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
