"""Scored results on disk, one folder per (model file, dataset): every image's maps and reconstruction at full
resolution (long side at most MAX_SIDE, float16 / uint8), and a summary of the compact results (scores, labels,
pixel samples) so that reopening the same data with the same model shows the results at once.

The folder is keyed by the model file's SHA-256 and the dataset's absolute root, so a retrained model (new
bytes) or another folder never reuses stale results. The summary remembers each image's size and modification
time: an image changed on disk makes the stored results incomplete. Writes are atomic (a temporary file
replaced in one step); nothing is unpickled on reading. Pure numpy/OpenCV.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from core.data.index import ImageRecord
from core.fileio import atomic_target
from core.inference import ImageResult
from core.paths import user_data_dir
from core.results import CachedResult, compact_result, shrink

STORE_VERSION = 1
MAX_SIDE = 1024  # stored maps and reconstructions keep the image's resolution up to this long side
SUMMARY = "summary.npz"
_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> SHA-256 of a model file


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, computed once per (path, size, modification time)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def results_dir() -> Path:
    """`<user data>/results`: where stored results live unless told otherwise."""
    return user_data_dir() / "results"


@dataclass
class LoadedMaps:
    """The maps (name -> (H,W) float32) and reconstruction ((H,W,C) uint8, or None) of one image."""

    maps: dict[str, np.ndarray] = field(default_factory=dict)
    reconstruction: np.ndarray | None = None


_LOADED: OrderedDict[Path, LoadedMaps] = OrderedDict()
_LOADED_LIMIT = 6  # images whose full maps stay in memory (the one on screen, its neighbours, compare)


def load_maps(cached: CachedResult | None) -> LoadedMaps:
    """The maps of a result: those kept in memory, else the stored file (a few are cached), else none."""
    if cached is None:
        return LoadedMaps()
    if cached.maps:
        return LoadedMaps({k: v.astype(np.float32) for k, v in cached.maps.items()}, cached.reconstruction)
    file = cached.maps_file
    if file is None:
        return LoadedMaps()
    if file in _LOADED:
        _LOADED.move_to_end(file)
        return _LOADED[file]
    try:
        with np.load(file, allow_pickle=False) as data:
            maps = {key[4:]: data[key].astype(np.float32) for key in data.files if key.startswith("map_")}
            recon = data["reconstruction"] if "reconstruction" in data.files else None
    except (OSError, ValueError, KeyError):
        return LoadedMaps()
    loaded = LoadedMaps(maps, recon)
    _LOADED[file] = loaded
    while len(_LOADED) > _LOADED_LIMIT:
        _LOADED.popitem(last=False)
    return loaded


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


class ResultStore:
    """The stored results of one model on one dataset, in `folder`."""

    def __init__(self, folder: Path, model: Path, root: Path, model_sha256: str) -> None:
        self.folder = Path(folder)
        self.model = Path(model)
        self.root = Path(root)
        self.model_sha256 = model_sha256

    @classmethod
    def open(cls, model: Path, dataset_root: Path, base: Path | None = None) -> ResultStore:
        """The store of `model` (by its content) on the dataset at `dataset_root` (by its absolute path)."""
        root = Path(dataset_root).expanduser().resolve()
        sha = file_sha256(Path(model))
        key = hashlib.sha256(f"{sha}\n{root}".encode()).hexdigest()[:24]
        return cls((base or results_dir()) / key, Path(model).resolve(), root, sha)

    # ------------------------------------------------------------------------------------------ maps
    def map_file(self, path: Path) -> Path:
        name = hashlib.sha1(_relative(path, self.root).encode()).hexdigest()[:24]
        return self.folder / "maps" / name[:2] / f"{name}.npz"

    def write_maps(self, result: ImageResult) -> Path:
        """Write an image's maps (float16) and reconstruction (uint8, H,W,C) at full resolution (long side at
        most MAX_SIDE) in one file, replaced atomically; returns its path."""
        arrays = {f"map_{name}": shrink(value.astype(np.float32), MAX_SIDE).astype(np.float16)
                  for name, value in result.maps.items()}
        if result.reconstruction is not None:
            recon = np.ascontiguousarray(result.reconstruction.transpose(1, 2, 0), dtype=np.float32)
            hw = next(iter(arrays.values())).shape if arrays else recon.shape[:2]
            if recon.shape[:2] != hw:
                recon = cv2.resize(recon, (hw[1], hw[0]), interpolation=cv2.INTER_AREA).reshape(*hw, -1)
            arrays["reconstruction"] = np.clip(recon * 255 + 0.5, 0, 255).astype(np.uint8)
        target = self.map_file(result.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(target, durable=False) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        _LOADED.pop(target, None)
        return target

    def compact(self, result: ImageResult, record: ImageRecord | None, keep_maps: bool, seed: int = 0
                ) -> CachedResult:
        """A compact result that keeps only scores and its pixel sample in memory; its maps go to disk."""
        cached = compact_result(result, record, keep_maps=keep_maps, seed=seed)
        if keep_maps and result.maps:
            cached.maps_file = self.write_maps(result)
            cached.has_mask = cached.mask is not None
            cached.maps, cached.reconstruction, cached.mask = {}, None, None
        return cached

    # --------------------------------------------------------------------------------------- summary
    def save(self, results: Sequence[CachedResult], complete: bool) -> Path:
        """Write the summary of `results` (scores, labels, pixel samples, which maps are stored); `complete`
        says they are every image of the dataset. Replaced atomically."""
        entries = []
        names = sorted({name for r in results for name in r.pixel_sample})
        samples: dict[str, list[np.ndarray]] = {name: [] for name in names}
        labels: list[np.ndarray] = []
        offsets = [0]
        for r in results:
            try:
                stat = r.path.stat()
                size, mtime = stat.st_size, stat.st_mtime_ns
            except OSError:
                size, mtime = -1, -1
            entries.append({"path": _relative(r.path, self.root), "label": r.label, "split": r.split,
                            "scores": {k: float(v) for k, v in r.scores.items()}, "full_hw": list(r.full_hw),
                            "size": size, "mtime_ns": mtime, "maps": r.maps_file is not None,
                            "mask": bool(r.has_mask)})
            n = r.pixel_sample_labels.size if r.pixel_sample_labels is not None else 0
            labels.append(r.pixel_sample_labels if n else np.zeros(0, bool))
            for name in names:
                values = r.pixel_sample.get(name)
                samples[name].append(values.astype(np.float16) if values is not None and values.size == n
                                     else np.full(n, np.nan, np.float16))
            offsets.append(offsets[-1] + n)
        meta = {"version": STORE_VERSION, "model": str(self.model), "model_sha256": self.model_sha256,
                "root": str(self.root), "complete": bool(complete), "sample_maps": names, "entries": entries,
                "saved": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                  "offsets": np.asarray(offsets, np.int64),
                  "labels": np.concatenate(labels) if labels else np.zeros(0, bool)}
        for i, name in enumerate(names):
            arrays[f"sample_{i}"] = np.concatenate(samples[name]) if samples[name] else np.zeros(0, np.float16)
        with atomic_target(self.folder / SUMMARY) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return self.folder / SUMMARY

    def load(self, records: Sequence[ImageRecord]) -> list[CachedResult] | None:
        """The stored results of every record, in order, or None when the store does not hold all of them
        (never saved, saved incomplete, another model or folder, an image changed since, a map file gone)."""
        try:
            with np.load(self.folder / SUMMARY, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                offsets, labels = data["offsets"], data["labels"]
                samples = {name: data[f"sample_{i}"] for i, name in enumerate(meta.get("sample_maps", []))}
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return None
        if (meta.get("version") != STORE_VERSION or not meta.get("complete")
                or meta.get("model_sha256") != self.model_sha256 or meta.get("root") != str(self.root)):
            return None
        by_path = {entry["path"]: i for i, entry in enumerate(meta["entries"])}
        out: list[CachedResult] = []
        for record in records:
            i = by_path.get(_relative(record.path, self.root))
            if i is None:
                return None
            entry = meta["entries"][i]
            try:
                stat = record.path.stat()
            except OSError:
                return None
            if (stat.st_size, stat.st_mtime_ns) != (entry["size"], entry["mtime_ns"]):
                return None
            cached = CachedResult(record.path, entry["label"], entry["split"], dict(entry["scores"]),
                                  tuple(entry["full_hw"]))  # type: ignore[arg-type]
            if entry["maps"]:
                cached.maps_file = self.map_file(record.path)
                if not cached.maps_file.is_file():
                    return None
            cached.has_mask = bool(entry["mask"])
            start, end = int(offsets[i]), int(offsets[i + 1])
            if end > start:
                cached.pixel_sample_labels = labels[start:end]
                cached.pixel_sample = {name: values[start:end] for name, values in samples.items()}
            out.append(cached)
        return out

    def saved_at(self) -> str:
        """When the summary was written ("" when there is none)."""
        try:
            with np.load(self.folder / SUMMARY, allow_pickle=False) as data:
                return str(json.loads(bytes(data["meta"]).decode()).get("saved", ""))
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return ""
