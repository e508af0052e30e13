#!/usr/bin/env bash
# One-step set-up and run. `./run.sh` opens the workbench (headless demo job without a display);
# `./run.sh test` runs the test suite; `./run.sh <command> ...` runs any `defectlab` command.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${DEFECTLAB_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.defectlab-installed-$(cksum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ]; then
    echo "First run: installing DefectLab and its dependencies into $VENV (a few minutes, once)." >&2
    # torch first, pinned: the project's range then resolves to it and pulls no CUDA packages on CPU machines.
    echo "  1/2 PyTorch (CPU build, about 200 MB) ..." >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
    echo "  2/2 DefectLab, Qt (PySide6), pyqtgraph, OpenCV and the test tools ..." >&2
    "$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
    echo "  installed; later runs start at once." >&2
    touch "$STAMP"
fi
if [ "${1:-}" = "test" ]; then
    shift
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
    exec "$PY" -m pytest "$@"
fi
exec "$VENV/bin/defectlab" "$@"
