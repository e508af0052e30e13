"""Benchmark: methods x datasets x scorers under a fixed budget -> BENCHMARKS.md + JSON."""

from core.bench.profiles import PROFILES, BenchProfile, DatasetRun, MethodRun, get_profile
from core.bench.report import markdown, write_reports
from core.bench.runner import run_bench

__all__ = ["PROFILES", "BenchProfile", "DatasetRun", "MethodRun", "get_profile", "markdown", "run_bench",
           "write_reports"]
