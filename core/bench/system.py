"""Machine description, code revision and peak memory for benchmark records (Linux /proc where available)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from pathlib import Path

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


def git_commit(folder: Path | None = None) -> str:
    """The checked-out commit, with '+local changes' when the work tree differs; 'unknown' without git."""
    cwd = str(folder or Path(__file__).resolve().parents[2])
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + (" + local changes" if dirty else "")
