"""Whether a trained model detects anything, from its file's calibration: the synthetic validation split made at
training time (held-out normals plus a synthetic defect made from each) and the `degenerate` flag that
label-free thresholds may carry. A plain sentence for the user when it does not."""

from __future__ import annotations

import re

from core.modelfile import ModelMeta

# F1-max on a split of n normals and n defects is at least 2/3 (flag everything); at or below this, the scores
# do not separate the two.
NO_BETTER_THAN_FLAGGING_ALL = 0.72
_F1 = re.compile(r"F1-max \((\d*\.?\d+)\)")


def synthetic_f1(meta: ModelMeta, map_name: str | None = None) -> float | None:
    """The image F1-max on the synthetic validation split, when the model file has it."""
    entry = meta.thresholds.get(map_name or meta.default_map, {}).get("image_synthetic")
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("f1"), (int, float)):
        return float(entry["f1"])
    found = _F1.search(str(entry.get("how", "")))
    return float(found.group(1)) if found else None


def detection_warning(meta: ModelMeta, map_name: str | None = None) -> str:
    """'' when the model tells synthetic defects from normals (or nothing says otherwise), else what to do."""
    name = map_name or meta.default_map
    entries = meta.thresholds.get(name, {})
    degenerate = any(isinstance(e, dict) and bool(e.get("degenerate", False)) for e in entries.values())
    f1 = synthetic_f1(meta, name)
    if not degenerate and (f1 is None or f1 > NO_BETTER_THAN_FLAGGING_ALL):
        return ""
    how = (f"on defects made from its own held-out images it scores no better than flagging every image "
           f"(image F1 {f1:.2f})" if f1 is not None and f1 <= NO_BETTER_THAN_FLAGGING_ALL
           else "its label-free thresholds could not be set apart from normal scores")
    return (f"This model does not detect: {how} (map '{name}'). Its maps will look flat. Train longer or pick "
            f"another method.")
