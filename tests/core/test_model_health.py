"""Tests for core.model_health: a model that cannot tell synthetic defects from normals gets a plain warning."""

from __future__ import annotations

from core.model_health import detection_warning, synthetic_f1
from core.modelfile import ModelMeta


def meta_with(image_synthetic: dict | None = None, degenerate: bool | None = None) -> ModelMeta:
    image = {"value": 0.5, "how": "label-free: 99th percentile"}
    if degenerate is not None:
        image["degenerate"] = degenerate
    entry = {"image": image}
    if image_synthetic is not None:
        entry["image_synthetic"] = image_synthetic
    return ModelMeta("ae-ssim", "fast", {}, 1, 64, "l2", ["l2"], thresholds={"l2": entry})


def test_a_model_no_better_than_flagging_everything_is_said_not_to_detect() -> None:
    flat = meta_with({"value": 0.1, "how": "label-free synthetic validation: image F1-max (0.667) on 8 ..."})
    assert synthetic_f1(flat) == 0.667
    assert "does not detect" in detection_warning(flat) and "Train longer" in detection_warning(flat)
    good = meta_with({"value": 0.3, "how": "label-free synthetic validation: image F1-max (0.950) on 8 ..."})
    assert detection_warning(good) == ""


def test_degenerate_flag_warns_and_a_missing_key_does_not() -> None:
    assert "does not detect" in detection_warning(meta_with(degenerate=True))
    assert detection_warning(meta_with(degenerate=False)) == ""
    assert detection_warning(meta_with()) == ""  # no synthetic split, no flag: nothing to say
