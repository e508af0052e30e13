"""Bad inputs built inside the tests: tiny datasets, broken image and mask files, damaged model files, and
the snapshot used to prove that nothing of the user's was changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from core.data.io import write_png_atomic


def snapshot(*folders: Path) -> dict[str, bytes | str]:
    """Path -> file bytes, or the link target for a symbolic link (dangling ones included), of every file
    under the folders (or of the files themselves)."""
    found: dict[str, bytes | str] = {}
    for folder in folders:
        paths = [folder] if folder.is_file() else sorted(folder.rglob("*"))
        for path in paths:
            if path.is_symlink():
                found[str(path)] = "link -> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = path.read_bytes()
    return found


def noise(size: int | tuple[int, int], seed: int = 0, channels: int = 1) -> np.ndarray:
    h, w = (size, size) if isinstance(size, int) else size
    shape = (h, w) if channels == 1 else (h, w, channels)
    return np.random.default_rng(seed).integers(90, 160, shape, dtype=np.uint8)


def make_dataset(root: Path, n_train: int = 6, size: int = 32) -> Path:
    """MVTec layout, grayscale: train/good, test/good, test/crack with masks (0/255)."""
    for folder in ("train/good", "test/good", "test/crack", "ground_truth/crack"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n_train):
        write_png_atomic(root / f"train/good/{i:03d}.png", noise(size, i))
    for i in range(2):
        write_png_atomic(root / f"test/good/{i:03d}.png", noise(size, 100 + i))
        image = noise(size, 200 + i)
        image[8:16, 8:16] = 255
        write_png_atomic(root / f"test/crack/{i:03d}.png", image)
        mask = np.zeros((size, size), np.uint8)
        mask[8:16, 8:16] = 255
        write_png_atomic(root / f"ground_truth/crack/{i:03d}_mask.png", mask)
    return root


def add_mask_cases(root: Path, size: int = 32) -> list[str]:
    """Defect images whose masks are: missing, empty, 0/1-valued, of the wrong size. Returns their names."""
    def defect(name: str) -> None:
        image = noise(size, sum(map(ord, name)))
        image[4:12, 4:12] = 255
        write_png_atomic(root / f"test/crack/{name}.png", image)
    mask = np.zeros((size, size), np.uint8)
    defect("no_mask")
    defect("empty")
    write_png_atomic(root / "ground_truth/crack/empty_mask.png", mask)
    defect("zero_one")
    one = mask.copy()
    one[4:12, 4:12] = 1
    write_png_atomic(root / "ground_truth/crack/zero_one_mask.png", one)
    defect("wrong_size")
    write_png_atomic(root / "ground_truth/crack/wrong_size_mask.png", np.zeros((size // 2, size), np.uint8))
    return ["no_mask.png", "empty_mask.png", "zero_one_mask.png", "wrong_size_mask.png"]


def make_odd_formats(folder: Path, size: int = 32) -> list[str]:
    """16-bit, RGBA, palette and a unicode-named image: all must be scored. Returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    sixteen = (noise(size).astype(np.uint16) * 257)
    ok, data = cv2.imencode(".png", sixteen)
    (folder / "sixteen_bit.png").write_bytes(data.tobytes())
    write_png_atomic(folder / "rgba.png", noise(size, 1, channels=4))
    Image.fromarray(noise(size, 2)).convert("P").save(folder / "palette.png")
    write_png_atomic(folder / "prüfteil_ß_东.png", noise(size, 3))
    return ["palette.png", "prüfteil_ß_东.png", "rgba.png", "sixteen_bit.png"]


def edit_model_meta(model: Path, out: Path, **changes: object) -> Path:
    """A copy of a model file whose metadata has `changes` applied ("config.x" edits the config)."""
    with safe_open(str(model), framework="pt") as f:
        header = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta = json.loads(header["defectlab_model"])
    for key, value in changes.items():
        target = meta
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    save_file(tensors, str(out), metadata={"defectlab_model": json.dumps(meta)})
    return out


def flip_header_bytes(model: Path, out: Path) -> Path:
    data = bytearray(model.read_bytes())
    for i in range(20, 60):
        data[i] ^= 0xFF
    out.write_bytes(bytes(data))
    return out
