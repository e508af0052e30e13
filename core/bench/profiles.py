"""Benchmark profiles: which datasets, methods and scorers, under which budget.

- smoke: a tiny generated demo dataset, 2 epochs; finishes in well under 2 minutes (CI).
- full: the real datasets in ../shared/data (magnetic_tile with the noise sweep, bsdata_pitting, and
  magnetic_tile on the published DifferNet split) with each method's fast preset and one epoch budget for
  every gradient-trained method, or the paper presets for their own epochs when a GPU is present.

Budgets are epochs, never wall-clock seconds: a loaded machine makes a run slower, not different.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.bench.floors import BLUR


@dataclass(frozen=True)
class MethodRun:
    method: str
    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    scorers: tuple[str, ...] | None = None  # None: the method's maps and every extra scorer that applies
    variant: str = ""  # an ablation's name, e.g. "w/o TR"; rows read "trustmae w/o TR"
    sweep: bool = True  # also trained at the profile's contamination levels (where the dataset has them)
    # Test-time settings scored on the same trained model (name, config overrides), default map only, on the
    # clean level of datasets that run ablations; rows read "i3ad u=0.10 (test time)". Training is not repeated.
    test_variants: tuple[tuple[str, dict[str, Any]], ...] = ()
    # Datasets that run no ablations where this variant runs all the same (cheap variants worth seeing
    # beside a published anchor).
    also_on: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method} {self.variant}".strip()


@dataclass(frozen=True)
class DatasetRun:
    name: str  # a folder, a dataset name under the data root, or "demo:<category>" (generated)
    note: str = ""  # shown under the dataset's table (e.g. why image metrics are confounded)
    demo_size: dict[str, int] = field(default_factory=dict)  # demo only: make_demo_dataset arguments
    sweep: bool = True  # run the profile's contamination levels here (else only the clean level)
    ablations: bool = True  # run the methods' ablation variants here (MethodRun.variant)


@dataclass(frozen=True)
class BenchProfile:
    name: str
    datasets: tuple[DatasetRun, ...]
    methods: tuple[MethodRun, ...]
    epochs: int | None = None  # every gradient-trained method's epochs (None: each preset's own)
    contamination: tuple[float, ...] = (0.0,)  # shares of the TRAINING set that are defective (sweep.py)
    seed: int = 0
    val_fraction: float = 0.1
    timing_repeats: int = 3  # speed: best of this many timed forward passes (after a warm-up)
    device: str = "auto"


SMOKE = BenchProfile(
    name="smoke",
    datasets=(DatasetRun("demo:fabric", demo_size={"n_train": 16, "n_test_good": 4, "n_test_defect": 6,
                                                    "size": 128}),),
    methods=(MethodRun("ae-l2", overrides={"batch_size": 8}),
             MethodRun("patchcore", overrides={"input_size": 128}),
             MethodRun(BLUR, scorers=("l2", "ssim"), sweep=False)),
    epochs=2,
    contamination=(0.0, 0.2),
    timing_repeats=1,
)

_BSDATA_NOTE = ("Image-level numbers here are confounded (soiling and JPEG size separate good from defective; "
                "see the trivial rows): judge this dataset on pixel AUROC and AUPRO.")

# Ablations are trained like the full method; they are scored with their default map only (the full
# method's other maps already show what a different scorer does, e.g. TrustMAE w/o PD = its l2 map).
_ABLATIONS = (
    MethodRun("trustmae", variant="w/o TR", overrides={"weight_trust": 0.0}, scorers=("trustmae", "l2")),
    MethodRun("cmaae", variant="MAM", overrides={"memory": "mam"}, scorers=("msfr", "l1"), sweep=False),
    MethodRun("cmaae", variant="concat", overrides={"fusion": "concat"}, scorers=("msfr", "l1"), sweep=False),
    MethodRun("cmaae", variant="one stage", overrides={"two_stage": False}, scorers=("msfr", "l1"), sweep=False),
    # NDP-Net: its paper's Table VI (without RBAM, without L_def_per; MSDSM against the pixel gap, MSFR and
    # SSIM is the full run's own maps and extra scorers), one RBFRM patch size, and Eq. 4's softmax as
    # printed (temperature 1) against the declared 10.
    *(MethodRun("ndpnet", variant=name, overrides=overrides, sweep=False)
      for name, overrides in (("w/o RBAM", {"rbam": False}), ("w/o L_def_per", {"weight_def_per": 0.0}),
                              ("K=2 only", {"patch_sizes": (2,)}), ("K=4 only", {"patch_sizes": (4,)}),
                              ("temperature 1", {"temperature": 1.0}))),
    # The reference as the paper has it (uniform patch sampling, raw distances), and each border fix alone.
    # Features: the deeper Lite1, the deeper and wider Lite2, and the two finer stages (strides 4 and 8)
    # instead of 8 and 16. PatchCore's variants take minutes, so they also run on the DifferNet split.
    *(MethodRun("patchcore", variant=name, overrides=overrides, sweep=False, also_on=("mtd_differnet",))
      for name, overrides in (("paper-literal", {"keep_border": False, "position_norm": False}),
                              ("w/o position norm", {"position_norm": False}),
                              ("Lite1", {"backbone": "lite1"}), ("Lite2", {"backbone": "lite2"}),
                              ("stages 2+3", {"stages": (2, 3)}))),
)

# I3AD's ablations are test-time settings of one trained model: the mask threshold u fixed over the paper's
# range instead of tuned, and the early stop on and off (one of the two is the preset's own setting and
# repeats the main row).
_I3AD_TEST = tuple((f"u={u:.2f}", {"u": u, "tune_u": False}) for u in (0.10, 0.20, 0.30, 0.40, 0.50)) + (
    ("early stop", {"early_stop": True}), ("no early stop", {"early_stop": False}))

_DIFFERNET_NOTE = ("magnetic_tile split as in the published DifferNet / PatchCore results (see the dataset's "
                   "README); the published rows are the papers' numbers, not runs of ours.")

FULL = BenchProfile(
    name="full",
    # The noise sweep (TrustMAE Fig. 4 / 5) runs on magnetic_tile only.
    datasets=(DatasetRun("magnetic_tile"), DatasetRun("bsdata_pitting", note=_BSDATA_NOTE, sweep=False),
              DatasetRun("mtd_differnet", note=_DIFFERNET_NOTE, sweep=False, ablations=False)),
    methods=(MethodRun(BLUR, sweep=False), MethodRun("ae-l2", sweep=False), MethodRun("ae-ssim"),
             MethodRun("patchcore", sweep=False), MethodRun("trustmae"), MethodRun("memae"),
             MethodRun("cmaae", sweep=False), MethodRun("ndpnet", sweep=False),
             MethodRun("i3ad", sweep=False, test_variants=_I3AD_TEST)) + _ABLATIONS,
    # One rule for every gradient-trained method: 25 epochs, the fast presets' own count for AE, MemAE and
    # TrustMAE (CMA-AE's preset has 12; here it gets 25 too, split between its two stages).
    epochs=25,
    contamination=(0.0, 0.1, 0.2, 0.4),
)

PROFILES = {"smoke": SMOKE, "full": FULL}


def get_profile(name: str, gpu: bool = False, **changes: Any) -> BenchProfile:
    """A profile by name; with a GPU, the full profile uses the paper presets. `changes` override fields."""
    if name not in PROFILES:
        raise ValueError(f"unknown bench profile {name!r}; choose one of {', '.join(PROFILES)}")
    profile = PROFILES[name]
    if gpu and name == "full":
        profile = replace(profile, methods=tuple(replace(m, preset="paper") for m in profile.methods), epochs=None)
    changes = {k: v for k, v in changes.items() if v is not None}
    return replace(profile, **changes)
