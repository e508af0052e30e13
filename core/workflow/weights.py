"""Importing a pretrained weights file a user brings (e.g. torchvision's VGG/AlexNet ImageNet files copied
from another machine): which file it is, by its SHA-256, and where it goes. Shared by
`defectlab weights import FILE` and the workbench's Tools > Import weights file…."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.features.loss import VGG16_FILE, VGG19_FILE, find_vgg16_weights, find_vgg19_weights
from core.scoring.perceptual import TRUNK_FILES, find_trunk_weights
from core.weightfiles import install, search_folders, sha256_of, sha256_prefix


@dataclass(frozen=True)
class ImportedWeights:
    """A weights file copied into DefectLab's weights folder: its torchvision name, where it is now, its use."""

    name: str
    path: Path
    used_for: str


def known_weight_files() -> dict[str, str]:
    """torchvision file name -> what DefectLab uses it for."""
    files = {name: f"LPIPS perceptual distance (lpips-{net})" for net, name in TRUNK_FILES.items()}
    files[VGG16_FILE] += "; VGG-16 feature loss (NDP-Net)"
    files[VGG19_FILE] = "VGG-19 feature loss (TrustMAE)"
    return files


def import_weights_file(source: str | Path) -> ImportedWeights:
    """Recognize `source` by its SHA-256 (any file name will do) and copy it into the weights folder, where
    perceptual distances and feature losses find it from now on."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"weights file not found: {source}")
    digest = sha256_of(source)
    known = known_weight_files()
    for name, used_for in known.items():
        if digest.startswith(sha256_prefix(name)):
            target = install(source, name)
            find_trunk_weights.cache_clear()
            find_vgg19_weights.cache_clear()
            find_vgg16_weights.cache_clear()
            return ImportedWeights(name, target, used_for)
    raise ValueError(f"{source} is none of the weights files DefectLab can use: its SHA-256 starts with "
                     f"{digest[:8]}, expected one of {', '.join(known)} (torchvision's ImageNet files; the "
                     "digits in each name start its SHA-256)")


def weights_report() -> list[tuple[str, str, Path | None]]:
    """(file name, use, verified local path or None) for every weights file DefectLab can use."""
    nets = {name: net for net, name in TRUNK_FILES.items()}
    return [(name, used_for, find_trunk_weights(nets[name]) if name in nets else find_vgg19_weights())
            for name, used_for in known_weight_files().items()]


def searched_folders() -> str:
    """The folders weights files are looked for in, for messages."""
    return " and ".join(str(folder) for folder in search_folders())
