"""Local pretrained weight files (torchvision's ImageNet trunks): where DefectLab looks for them, the one
SHA-256 check, and copying a file a user brings into DefectLab's weights folder. Nothing is downloaded.

torchvision names its files `<arch>-<first hex digits of the file's SHA-256>.pth` (e.g.
`alexnet-owt-7be5be79.pth`); a file is accepted only when its SHA-256 starts with the digits of the name it
is looked up or imported as.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import torch

from core.paths import user_data_dir


def weights_dir() -> Path:
    """Where imported weight files go (DefectLab's own data folder, not the torch hub cache)."""
    return user_data_dir() / "weights"


def hub_checkpoints() -> Path:
    """torch's hub cache for weight files: `$TORCH_HOME/hub/checkpoints` (torch's own rules)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def search_folders() -> tuple[Path, Path]:
    """Where weight files are looked for, in order: imported files first, then the hub cache."""
    return weights_dir(), hub_checkpoints()


def sha256_prefix(file_name: str) -> str:
    """The hash digits in a torchvision file name: `vgg16-397923af.pth` -> `397923af`."""
    return file_name.rsplit(".", 1)[0].rsplit("-", 1)[-1]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_verified(path: Path, file_name: str) -> bool:
    """True when `path` is a file whose SHA-256 starts with the digits in torchvision's `file_name`."""
    return path.is_file() and sha256_of(path).startswith(sha256_prefix(file_name))


def find_local(file_name: str, folders: tuple[Path, ...] | None = None) -> Path | None:
    """The first verified `<folder>/<file_name>` in `folders` (default: `search_folders()`), or None."""
    for folder in folders if folders is not None else search_folders():
        if is_verified(folder / file_name, file_name):
            return folder / file_name
    return None


def install(source: str | Path, file_name: str) -> Path:
    """Copy `source` into the weights folder as `file_name` after checking its SHA-256; returns the copy."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"weights file not found: {source}")
    if not is_verified(source, file_name):
        raise ValueError(f"{source} is not torchvision's {file_name}: its SHA-256 does not start with "
                         f"{sha256_prefix(file_name)}")
    target = weights_dir() / file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return target
