"""The benchmark: methods x datasets x scorers x contamination levels, as a generator of Progress.

Every (dataset, level, method) run is planned first, so progress can say how many are left and estimate
the time. A finished run is stored in the work folder's cache (cache.py); with `resume` a run whose key is
there is not trained again, and the report is assembled from the cached results.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from core.bench.cache import RunCache, run_key
from core.bench.floors import trivial_scores
from core.bench.job import JobData, run_job
from core.bench.profiles import BenchProfile, DatasetRun, MethodRun
from core.bench.sweep import SweepLevel, common_test, plan_levels, remaining_test
from core.bench.system import source_version
from core.models.registry import get_method, list_methods
from core.data.index import index_dataset, resolve_data_root, split_normals
from core.progress import CancelToken, Progress
from core.scoring.perceptual import available_backbone
from core.workflow.evaluate import METRIC_MAX_SIDE
from core.workflow.train import normal_training_records


def resolve_dataset(run: DatasetRun, work_dir: Path) -> Path:
    if run.name.startswith("demo:"):
        from core.data.demo import make_demo_dataset  # noqa: PLC0415 - only when a demo is benchmarked

        return make_demo_dataset(work_dir / "data", run.name[5:], **run.demo_size)
    return resolve_data_root(run.name)


@dataclass(frozen=True)
class PlannedRun:
    dataset: int  # index into the results' datasets
    level: SweepLevel
    run: MethodRun
    data: JobData
    label: str
    key: str
    fields: dict[str, Any]


def code_version(method: str | None = None) -> str:
    """What a cached run's numbers depend on in the code: `source_version` of the method's own files and
    everything shared (the commit is recorded in the report's provenance, not in the key). Without a
    method, or for one that is not registered (the floors), the whole shared code."""
    module = None
    if method is not None and method in {spec.name for spec in list_methods()}:
        module = get_method(method).model_cls.__module__.rsplit(".", 1)[-1]
    return "src-" + source_version(method_module=module)


def _plan_dataset(profile: BenchProfile, ds: DatasetRun, index: int, work_dir: Path, versions: dict[str, str]
                  ) -> tuple[dict[str, Any], list[PlannedRun]]:
    root = resolve_dataset(ds, work_dir)
    data_index = index_dataset(root)
    normals = normal_training_records(data_index)
    test = [r for r in data_index.test_records() if r.label != "unknown"]
    train_normals, val = split_normals(normals, profile.val_fraction, profile.seed)
    levels = plan_levels(train_normals, test, profile.contamination if ds.sweep else (0.0,), profile.seed)
    common = {r.path for r in common_test(test, levels)}
    entry: dict[str, Any] = {
        "name": ds.name, "root": str(root), "note": ds.note,
        "counts": {"train": len(normals), "train_after_holdout": len(train_normals), "validation": len(val),
                   "test_good": sum(r.label == "good" for r in test),
                   "test_defective": sum(r.label != "good" for r in test), "common_test": len(common)},
        "levels": [{"target": lv.target, "achieved": lv.achieved, "n_normal": len(lv.normals),
                    "n_moved": len(lv.moved)} for lv in levels],
        "trivial": trivial_scores(test), "runs": []}
    planned = []
    for level in levels:
        for listed in profile.methods:
            if (level.target > 0 and not listed.sweep) or (listed.variant and not ds.ablations
                                                              and ds.name not in listed.also_on):
                continue
            # Test variants are ablations: scored on the clean level of datasets that run ablations only.
            ablating = level.target == 0 and ds.ablations
            run = listed if ablating else dataclasses.replace(listed, test_variants=())
            swept = len(levels) > 1 and run.sweep
            label = f"{ds.name} {run.label} {100 * level.achieved:.1f}%"
            fields = {"dataset": ds.name, "root": str(root), "demo_size": ds.demo_size,
                      "method": run.method, "variant": run.variant, "preset": run.preset,
                      "overrides": run.overrides, "scorers": run.scorers, "test_variants": run.test_variants,
                      "epochs": profile.epochs, "seed": profile.seed, "val_fraction": profile.val_fraction,
                      "metric_max_side": METRIC_MAX_SIDE,
                      "timing_repeats": profile.timing_repeats, "device": profile.device,
                      "target": level.target, "n_normal": len(level.normals), "n_moved": len(level.moved),
                      "common_test": len(common) if swept else None, "code": versions[run.method]}
            data = JobData(root, level.train, val, remaining_test(test, level), common if swept else None,
                           {r.path for r in level.moved})
            planned.append(PlannedRun(index, level, run, data, label, run_key(fields), fields))
    return entry, planned


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def run_bench(profile: BenchProfile, work_dir: Path, cancel: CancelToken | None = None,
              resume: bool = False, report_only: bool = False) -> Iterator[Progress]:
    """Run the whole profile; the last Progress (phase "done") carries the results dict.

    Every finished run is cached under `work_dir`/runs; with `resume`, cached runs are reused. With
    `report_only`, nothing is run: the results hold the cached runs, and `missing_runs` names the others."""
    resume = resume or report_only
    cancel = cancel or CancelToken()
    work_dir = Path(work_dir)
    cache = RunCache(work_dir / "runs")
    started = time.perf_counter()
    version = code_version()
    versions = {run.method: code_version(run.method) for run in profile.methods}
    results: dict[str, Any] = {"profile": dataclasses.asdict(profile), "datasets": [],
                               "perceptual_backbone": available_backbone(), "metric_max_side": METRIC_MAX_SIDE,
                               "code_version": version}
    plan: list[PlannedRun] = []
    for i, ds in enumerate(profile.datasets):
        yield Progress("data", i, len(profile.datasets), message=f"indexing {ds.name}")
        entry, runs = _plan_dataset(profile, ds, i, work_dir, versions)
        results["datasets"].append(entry)
        plan += runs
    cached = {p.key: cache.load(p.label, p.key) for p in plan} if resume else {}
    todo = sum(1 for p in plan if cached.get(p.key) is None)
    yield Progress("bench", 0, len(plan), message=f"{len(plan)} runs planned, {len(plan) - todo} from the cache "
                                                  f"in {cache.folder}")
    done = spent = 0.0
    results["missing_runs"] = [p.label for p in plan if cached.get(p.key) is None] if report_only else []
    for n, planned in enumerate(plan, 1):
        job = cached.get(planned.key)
        reused = job is not None
        if job is None and report_only:
            continue
        if job is None:
            eta = spent / done * (todo - done) if done else None
            overall = f"run {n}/{len(plan)}" + (f", bench ETA {_clock(eta)}" if eta is not None else "")
            yield Progress("bench", n - 1, len(plan), eta_s=eta, message=f"{overall}: {planned.label}")
            run_started = time.perf_counter()
            gen = run_job(profile, planned.run, planned.data, planned.label, cancel)
            while True:
                try:
                    progress = next(gen)
                except StopIteration as stop:
                    job = stop.value
                    break
                yield dataclasses.replace(progress, extra={**progress.extra, "overall": overall})
            job.update({"contamination": planned.level.target, "contamination_achieved": planned.level.achieved,
                        "n_moved_defective": len(planned.level.moved), "n_normal": len(planned.level.normals),
                        "key": planned.key, "code_version": planned.fields["code"]})
            cache.save(planned.label, planned.key, planned.fields, job)
            done += 1
            spent += time.perf_counter() - run_started
        job = {**job, "from_cache": reused}
        results["datasets"][planned.dataset]["runs"].append(job)
    results["total_seconds"] = time.perf_counter() - started
    results["runs_from_cache"] = len(plan) - todo
    results["runs_planned"] = len(plan)
    yield Progress("done", 1, 1, message="benchmark finished", result=results)
