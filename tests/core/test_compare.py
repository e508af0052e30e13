"""Tests for core.compare: metrics of results already scored, checked against core.metrics on the same data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.compare import cached_metrics
from core.data.index import ImageRecord
from core.metrics import auroc
from core.modelfile import ModelMeta
from core.results import CachedResult


def test_metrics_from_cached_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    results, records = [], {}
    for i in range(8):
        defective = i % 2 == 1
        path = tmp_path / f"{i}.png"
        mask_path = None
        value = rng.random((32, 32)).astype(np.float32) * 0.5
        if defective:
            mask = np.zeros((32, 32), np.uint8)
            mask[4:12, 4:12] = 255
            mask_path = tmp_path / f"{i}_mask.png"
            cv2.imwrite(str(mask_path), mask)
            value[4:12, 4:12] += 1.0
        result = CachedResult(path, "crack" if defective else "good", "test", {"l2": float(value.max())}, (32, 32),
                              maps={"l2": value.astype(np.float16)})
        result.pixel_sample = {"l2": value.ravel().astype(np.float16)}
        result.pixel_sample_labels = (cv2.imread(str(mask_path), 0).ravel() > 0) if mask_path else np.zeros(1024, bool)
        results.append(result)
        records[path] = ImageRecord(path, "test", result.label, mask_path)
    results.append(CachedResult(tmp_path / "t.png", "good", "train", {"l2": 9.0}, (32, 32)))  # not counted
    meta = ModelMeta("ae-l2", "fast", {}, 1, 32, "l2", ["l2"],
                     thresholds={"l2": {"image": {"value": 1.0, "how": "label-free: test"}}})
    m = cached_metrics(results, records, meta)
    labels = np.array([i % 2 == 1 for i in range(8)])
    assert m["images"] == 8 and m["image_auroc"] == auroc(labels, np.array([r.scores["l2"] for r in results[:8]]))
    assert m["image_auroc"] == 1.0 and m["f1_max"] == 1.0 and m["label_free_f1"] == 1.0 and m["label_free_frr"] == 0
    assert m["pixel_auroc"] > 0.99 and m["aupro"] > 0.95
