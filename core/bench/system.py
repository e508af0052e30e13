"""Machine description, code revision and peak memory for benchmark records (Linux /proc where available)."""

from __future__ import annotations

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
# only the workbench uses. Changing it keeps cached runs valid.
_PRESENTATION = ("core/cli/", "core/bench/report.py", "core/bench/tables.py", "core/bench/published.py",
                 "core/report/", "core/project.py", "core/results.py", "core/result_store.py",
                 "core/result_table.py", "core/thumbnails.py", "core/verdicts.py", "core/regions.py")


def source_version(root: Path | None = None) -> str:
    """A 12-hex-digit hash of every Python file under core/ that a benchmark number can depend on (names and
    contents as they are on disk, committed or not). Commits that touch only the GUI, the tests, the docs
    or the report's presentation keep it, so a long benchmark can be resumed across them."""
    root = root or repo_root()
    digest = hashlib.sha256()
    for path in sorted((root / "core").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if not name.startswith(_PRESENTATION):
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def is_committed_report(path: Path) -> bool:
    """Whether `path` is one of the BENCHMARKS files committed in the repository root."""
    return path.resolve() in {repo_root() / "BENCHMARKS.md", repo_root() / "BENCHMARKS.json"}
