#!/usr/bin/env bash
# Build the one-folder DefectLab application with PyInstaller (build_installer.spec) into dist/defectlab/,
# then, with --smoke, run the frozen program's smoke test (tests/installer/).
#
#   scripts/build_installer.sh [--smoke]
#   PYTHON=/path/to/venv/bin/python scripts/build_installer.sh      (default: .venv/bin/python)
#
# Without PYTHON and without .venv (a fresh clone), ./run.sh makes .venv first, as for the workbench.
# PyInstaller is installed into that environment when it is missing. The build takes 5-8 minutes on two
# cores and about 1.5 GB under build/ and dist/, which are not part of the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ] && [ ! -x .venv/bin/python ]; then
    ./run.sh --version
fi
PY="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then
    echo "no Python at $PY: set PYTHON to the interpreter of an environment with DefectLab installed" >&2
    exit 2
fi
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "installing PyInstaller into $("$PY" -c 'import sys; print(sys.prefix)')" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "pyinstaller>=6.10,<7"
fi
started=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build build_installer.spec
echo "built dist/defectlab in $(( $(date +%s) - started )) s: $(du -sh dist/defectlab | cut -f1)" >&2
if [ "${1:-}" = "--smoke" ]; then
    QT_QPA_PLATFORM=offscreen "$PY" -m pytest -m installer tests/installer -q -p no:cacheprovider
fi
