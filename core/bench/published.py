"""Published results on protocols the benchmark reproduces, as data with their source.

They are the papers' numbers, not runs of ours; the report sets them beside our rows in the same table.
Keyed by the benchmark dataset name; values are fractions (the papers print percentages).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedResult:
    method: str
    image_auroc: float
    source: str


_MTD = "../shared/data/mtd_differnet/README.md"

PUBLISHED: dict[str, tuple[PublishedResult, ...]] = {
    "mtd_differnet": (
        PublishedResult("PatchCore (WideResNet-50, 10 % coreset)", 0.979,
                        f"PatchCore (Roth et al., CVPR 2022), other-benchmarks table, via {_MTD}"),
        PublishedResult("DifferNet (448², 64 test-time transforms)", 0.977,
                        f"DifferNet (Rudolph et al., WACV 2021), via {_MTD}"),
        PublishedResult("1-NN", 0.800, f"as reported beside PatchCore, via {_MTD}"),
        PublishedResult("GANomaly", 0.766, f"as reported beside PatchCore, via {_MTD}"),
    ),
}


def published_for(dataset: str) -> tuple[PublishedResult, ...]:
    """The published results for a benchmark dataset name (or a folder of that name); empty if none."""
    return PUBLISHED.get(dataset.rstrip("/").rsplit("/", 1)[-1], ())
