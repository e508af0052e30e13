"""Built-in demo datasets: procedural products in MVTec AD layout, generated on first use.

Layout written by `make_demo_dataset(root, category)`:
    root/<category>/train/good/000.png ...
    root/<category>/test/good/000.png ...
    root/<category>/test/<defect>/000.png ...          defect in scratch, spot, crack, stain
    root/<category>/ground_truth/<defect>/000_mask.png  uint8 0/255, same size as the image
    root/<category>/README.md, manifest.csv, .complete (marker, written last)
"fabric" and "tiles" are RGB, "metal" is grayscale. Same arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.synth.defects import DEFECTS
from core.synth.textures import brushed_metal, ceramic_tiles, woven_fabric

__all__ = ["DEMO_CATEGORIES", "DEFECT_TYPES", "ENV_VAR", "default_demo_root", "make_demo_dataset", "demo_dataset"]

DEMO_CATEGORIES = ("fabric", "metal", "tiles")
DEFECT_TYPES = ("scratch", "spot", "crack", "stain")
ENV_VAR = "DEFECTLAB_DEMO_DIR"
DEFAULT_CATEGORY = "metal"  # the one the fast AE-SSIM separates well in a 20-second demo run
DEMO_VERSION = "v1"  # bump when generation changes, so caches regenerate into a new folder
MARKER = ".complete"

_TEXTURES: dict[str, tuple[Callable[..., np.ndarray], int]] = {
    "fabric": (woven_fabric, 3),
    "metal": (brushed_metal, 1),
    "tiles": (ceramic_tiles, 3),
}
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]  # fixed, so output bytes are reproducible


def default_demo_root() -> Path:
    """`$DEFECTLAB_DEMO_DIR` if set, else `<user cache>/defectlab/demo/v1`."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    import platformdirs  # only needed for the default location

    return Path(platformdirs.user_cache_dir("defectlab")) / "demo" / DEMO_VERSION


def _png(image: np.ndarray) -> bytes:
    """Encode float (H, W) / (3, H, W) in [0, 1], or a uint8 (H, W) mask, as PNG bytes."""
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.ndim == 3:
        image = np.ascontiguousarray(image.transpose(1, 2, 0)[:, :, ::-1])  # CHW RGB -> HWC BGR
    ok, buf = cv2.imencode(".png", image, _PNG_PARAMS)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _rng(seed: int, category: str, stream: int, index: int) -> np.random.Generator:
    """Independent generator per image, so each file depends only on its own coordinates."""
    return np.random.default_rng([seed, DEMO_CATEGORIES.index(category), stream, index])


def _readme(category: str, counts: dict[str, int], size: int, seed: int, channels: int) -> str:
    lines = [
        f"# DefectLab demo dataset: {category}",
        "",
        f"Procedurally generated {'RGB' if channels == 3 else 'grayscale'} {size}x{size} images of "
        f"{category} in MVTec AD layout (generator {DEMO_VERSION}, seed {seed}).",
        "Normal images vary slightly (lighting, pattern shift, noise); defective ones carry one",
        "synthetic defect each, with an exact ground-truth mask (0 = normal, 255 = defect).",
        "",
        "| split | folder | images |",
        "|---|---|---|",
    ]
    lines += [f"| {'train' if k == 'train/good' else 'test'} | {k} | {n} |" for k, n in counts.items()]
    lines += ["", "`manifest.csv` lists every image with its label and mask. Regenerate freely: it is synthetic."]
    return "\n".join(lines) + "\n"


def _build(
    out: Path, category: str, n_train: int, n_test_good: int, n_test_defect: int, size: int, seed: int
) -> None:
    """Write the whole dataset into the (empty) folder `out`, marker included."""
    make_texture, channels = _TEXTURES[category]
    shape = (size, size)
    rows: list[tuple[str, str, int, str, str]] = []  # split, defect_type, label, image, mask
    counts: dict[str, int] = {}

    def save(rel: str, data: bytes) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    for split, stream, n in (("train", 0, n_train), ("test", 1, n_test_good)):
        for i in range(n):
            rel = f"{split}/good/{i:03d}.png"
            save(rel, _png(make_texture(shape, _rng(seed, category, stream, i), channels=channels)))
            rows.append((split, "good", 0, rel, ""))
        counts[f"{split}/good"] = n

    per_type = {t: 0 for t in DEFECT_TYPES}
    for i in range(n_test_defect):
        kind = DEFECT_TYPES[i % len(DEFECT_TYPES)]  # round-robin: types spread evenly
        rng = _rng(seed, category, 2, i)
        image, mask = DEFECTS[kind](make_texture(shape, rng, channels=channels), rng)
        j = per_type[kind]
        per_type[kind] += 1
        rel, rel_mask = f"test/{kind}/{j:03d}.png", f"ground_truth/{kind}/{j:03d}_mask.png"
        save(rel, _png(image))
        save(rel_mask, _png(mask.astype(np.uint8) * 255))
        rows.append(("test", kind, 1, rel, rel_mask))
    counts.update({f"test/{t}": n for t, n in per_type.items() if n})

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("split", "defect_type", "label", "image", "mask"))
    writer.writerows(rows)
    save("manifest.csv", text.getvalue().encode())
    save("README.md", _readme(category, counts, size, seed, channels).encode())
    save(MARKER, f"defectlab demo {DEMO_VERSION} {category} seed={seed} size={size}\n".encode())


def make_demo_dataset(
    root: Path,
    category: str,
    n_train: int = 60,
    n_test_good: int = 20,
    n_test_defect: int = 24,
    size: int = 256,
    seed: int = 0,
) -> Path:
    """Generate `root/<category>` (replacing any previous one) and return that path.

    Built in a hidden sibling folder and renamed into place, so readers never see a half
    dataset and a crash leaves at most a hidden `.<category>.partial-*` folder behind.
    """
    if category not in DEMO_CATEGORIES:
        raise ValueError(f"unknown demo category {category!r}; choose from {DEMO_CATEGORIES}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / category
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = root / f".{category}.partial-{tag}"
    tmp.mkdir()
    try:
        _build(tmp, category, n_train, n_test_good, n_test_defect, size, seed)
        old = root / f".{category}.old-{tag}"
        if final.exists():
            os.replace(final, old)  # directories cannot be replaced while non-empty: move aside
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process finished the same dataset first; theirs is as good as ours.
            if not (final / MARKER).is_file():
                raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # no-op after a successful rename
    return final


def demo_dataset(category: str = DEFAULT_CATEGORY, root: Path | None = None) -> Path:
    """Path of the demo dataset for `category`, generating it (default size) on first use.

    `root` defaults to `default_demo_root()`. A dataset with its completion marker is reused
    as is, so repeated calls are instant.
    """
    if category not in DEMO_CATEGORIES:
        raise ValueError(f"unknown demo category {category!r}; choose from {DEMO_CATEGORIES}")
    base = Path(root) if root is not None else default_demo_root()
    path = base / category
    if (path / MARKER).is_file():
        return path
    return make_demo_dataset(base, category)
