"""`defectlab bench`: argument parsing and the command itself (wired into core/cli/main.py)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from core.bench.profiles import PROFILES, BenchProfile, DatasetRun, MethodRun, get_profile
from core.bench.report import write_reports
from core.bench.runner import run_bench
from core.bench.system import git_state, is_committed_report, machine
from core.cli.progressbar import run_to_end
from core.progress import CancelToken


def _floats(text: str) -> tuple[float, ...]:
    values = tuple(float(v) / (100.0 if float(v) > 1 else 1.0) for v in text.split(",") if v.strip())
    if not values or any(not 0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions like 0,0.1,0.2 or percentages 0,10,20; got {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_bench_parser(add: Callable[..., argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the `bench` sub-command through main.py's `add(name, fn, help)` helper."""
    b = add("bench", cmd_bench, "Benchmark methods x datasets x scorers under a fixed budget; writes "
            "BENCHMARKS.md and a JSON record.")
    b.add_argument("--profile", default="smoke", choices=sorted(PROFILES),
                   help="smoke: tiny generated data, < 2 min (CI); full: the real datasets (default: smoke)")
    b.add_argument("--out", help="Markdown report (default: BENCHMARKS.md for the full profile, else "
                   "BENCHMARKS-<profile>.md in the work folder)")
    b.add_argument("--json", help="JSON record (default: the --out path with .json)")
    b.add_argument("--datasets", type=_names, help="comma-separated datasets instead of the profile's")
    b.add_argument("--methods", type=_names, help="comma-separated methods instead of the profile's")
    b.add_argument("--scorers", type=_names, help="comma-separated scorers (default: all that apply)")
    b.add_argument("--epochs", type=int, help="epochs for every gradient-trained method (default: the profile's)")
    b.add_argument("--contamination", type=_floats, help="shares of the training set that are defective, "
                   "e.g. 0,10,20,40 (TrustMAE Sec. 3.2)")
    b.add_argument("--work-dir", default=".defectlab-bench", help="run cache and generated data "
                   "(default: .defectlab-bench)")
    b.add_argument("--resume", action="store_true", help="reuse the runs already finished in the work folder's "
                   "cache (same dataset, method, settings and code version) and assemble the report")
    b.add_argument("--report-only", action="store_true", help="run nothing: assemble the report from the "
                   "runs already in the cache, naming the ones not run yet (a partial report)")
    b.add_argument("--allow-dirty", action="store_true", help="write the repository's BENCHMARKS.md/.json "
                   "even though the code has uncommitted changes (recorded in the report)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    return b


GUI_RECORD = "BENCHMARKS-gui.json"  # written by scripts/gui_bench.py next to BENCHMARKS.md


def select_methods(profile: BenchProfile, names: list[str], preset: str) -> BenchProfile:
    """The profile restricted to the named methods: its own runs of them keep their ablation variants and sweep
    settings; a method the profile does not hold gets one plain run."""
    own = {m.method for m in profile.methods}
    return dataclasses.replace(profile, methods=tuple(
        [m for m in profile.methods if m.method in names] + [MethodRun(m, preset) for m in names if m not in own]))


def cmd_bench(args: argparse.Namespace) -> int:
    gpu = torch.cuda.is_available() and args.device in ("auto", "cuda")
    profile = get_profile(args.profile, gpu=gpu, contamination=args.contamination, device=args.device)
    if args.datasets:
        known = {d.name: d for d in profile.datasets}  # a profile's dataset keeps its note and sweep setting
        profile = dataclasses.replace(profile, datasets=tuple(known.get(n, DatasetRun(n)) for n in args.datasets))
    if args.methods:
        preset = "paper" if gpu and args.profile == "full" else "fast"
        profile = select_methods(profile, args.methods, preset)
    if args.scorers:
        profile = dataclasses.replace(profile, methods=tuple(dataclasses.replace(m, scorers=args.scorers)
                                                             for m in profile.methods))
    if args.epochs is not None:
        profile = dataclasses.replace(profile, epochs=args.epochs)
    work_dir = Path(args.work_dir)
    out = Path(args.out) if args.out else (Path("BENCHMARKS.md") if args.profile == "full"
                                           else work_dir / f"BENCHMARKS-{args.profile}.md")
    json_path = Path(args.json) if args.json else out.with_suffix(".json")
    state = git_state()
    if state["dirty"] and not args.allow_dirty and (is_committed_report(out) or is_committed_report(json_path)):
        print(f"error: the code has uncommitted changes (commit {state['commit']}), so {out} would not be "
              "reproducible from any commit. Commit first, write elsewhere with --out, or pass --allow-dirty.",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = run_to_end(run_bench(profile, work_dir, CancelToken(), resume=args.resume,
                                   report_only=args.report_only)).result
    results.update({"command": "defectlab " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "defectlab bench",
                    "machine": machine(), "commit": state["commit"], "dirty": state["dirty"],
                    "wall_seconds": time.perf_counter() - started})
    out.parent.mkdir(parents=True, exist_ok=True)
    gui = out.parent / GUI_RECORD
    if gui.is_file():  # the workbench's own benchmark (scripts/gui_bench.py), shown in the same report
        results["gui"] = {"file": GUI_RECORD, **json.loads(gui.read_text(encoding="utf-8"))}
    write_reports(results, out, json_path)
    print(f"benchmark finished in {results['wall_seconds'] / 60:.1f} min: {out}, {json_path}")
    return 0
