"""Machine description, code revision and peak memory for benchmark records (Linux /proc where available)."""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Any

import torch


def reset_peak_rss() -> bool:
    """Reset the process's peak resident set size (Linux: write 5 to /proc/self/clear_refs), so each job's
    peak can be read on its own. Returns False where that is not possible (then peaks are process-wide)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory in MiB since the last reset (VmHWM), else since the process started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024  # bytes on macOS, KiB else


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str | int]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu_name(), "cores": os.cpu_count() or 0, "torch_threads": torch.get_num_threads(),
            "gpu": gpu, "python": platform.python_version(), "torch": torch.__version__,
            "os": f"{platform.system()} {platform.release()}"}


REPORT_PREFIX = "BENCHMARKS"  # the report files themselves never make the tree dirty


def repo_root() -> Path:
    """The folder holding this code's git work tree (where the committed BENCHMARKS files live)."""
    return Path(__file__).resolve().parents[2]


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True, timeout=30,
                          check=True).stdout


def git_state(folder: Path | None = None) -> dict[str, Any]:
    """{"commit": short sha or "unknown", "dirty": bool | None (None without git), "changes": hash}.

    Dirty = uncommitted changes to tracked files or untracked (not ignored) files, other than the
    BENCHMARKS report files. `changes` hashes the status and diff, so runs cached from different
    uncommitted code never match (empty when clean)."""
    cwd = folder or repo_root()
    try:
        sha = _git(["rev-parse", "--short", "HEAD"], cwd).strip()
        status = [line for line in _git(["status", "--porcelain"], cwd).splitlines()
                  if not line[3:].strip('"').startswith(REPORT_PREFIX)]
        diff = _git(["diff", "HEAD", "--", ".", f":(exclude){REPORT_PREFIX}*"], cwd) if status else ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None, "changes": ""}
    changes = hashlib.sha256(("\n".join(status) + diff).encode()).hexdigest()[:12] if status else ""
    return {"commit": sha, "dirty": bool(status), "changes": changes}


# Code no benchmark number depends on: the command line, the report layout, inspection reports and what
# only the workbench uses. Changing it keeps cached runs valid. The profiles are left out too: every setting
# a profile gives a run is one of the run's key fields (core.bench.runner), so adding a run to a profile
# keeps the others.
_PRESENTATION = ("core/cli/", "core/bench/report.py", "core/bench/tables.py", "core/bench/published.py",
                 "core/bench/profiles.py",
                 "core/report/", "core/project.py", "core/results.py", "core/result_store.py",
                 "core/result_table.py", "core/thumbnails.py", "core/verdicts.py", "core/regions.py")


def _model_imports(path: Path) -> set[str]:
    """Names of the core/models modules that the file at `path` imports (absolute imports only, as the
    package writes them)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "core.models":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("core.models."):
                names.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[2] for a in node.names if a.name.startswith("core.models."))
    return names


def _registers_a_method(path: Path) -> bool:
    """Whether the module calls `register(...)` at its top level (one file per method)."""
    return any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
               and isinstance(node.value.func, ast.Name) and node.value.func.id == "register"
               for node in ast.parse(path.read_text(), filename=str(path)).body)


def method_exclusive_files(root: Path | None = None) -> dict[str, set[str]]:
    """For each method module under core/models: the model files only it depends on (itself and the blocks
    no other method imports, directly or through other model files), as repository-relative paths."""
    models = (root or repo_root()) / "core" / "models"
    imports = {p.stem: _model_imports(p) & {q.stem for q in models.glob("*.py")} for p in models.glob("*.py")}

    def closure(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += imports.get(current, ())
        return seen

    methods = {p.stem: closure(p.stem) for p in sorted(models.glob("*.py")) if _registers_a_method(p)}
    exclusive = {}
    for name, files in methods.items():
        others = set().union(*(f for other, f in methods.items() if other != name))
        exclusive[name] = {f"core/models/{stem}.py" for stem in files - others}
    return exclusive


def source_version(root: Path | None = None, method_module: str | None = None) -> str:
    """A 12-hex-digit hash of every Python file under core/ that a benchmark number can depend on (names and
    contents as they are on disk, committed or not). Commits that touch only the GUI, the tests, the docs
    or the report's presentation keep it, so a long benchmark can be resumed across them.

    With `method_module` (the stem of a method's file under core/models, e.g. "trustmae"), the files only
    other methods depend on are left out, so changing one method keeps the other methods' cached runs; with
    None (a run of no registered method, e.g. a floor) every method's own files are left out."""
    root = root or repo_root()
    others = set().union(*(files for name, files in method_exclusive_files(root).items() if name != method_module))
    digest = hashlib.sha256()
    for path in sorted((root / "core").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if not name.startswith(_PRESENTATION) and name not in others:
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def is_committed_report(path: Path) -> bool:
    """Whether `path` is one of the BENCHMARKS files committed in the repository root."""
    return path.resolve() in {repo_root() / "BENCHMARKS.md", repo_root() / "BENCHMARKS.json"}
