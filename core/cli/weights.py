"""`defectlab weights import FILE` and `defectlab weights list`: bring a pretrained weights file (torchvision's
VGG/AlexNet/SqueezeNet ImageNet files) onto an offline machine, and show which ones are found."""

from __future__ import annotations

import argparse
from typing import Callable

from core.workflow.weights import import_weights_file, searched_folders, weights_report


def cmd_weights_import(args: argparse.Namespace) -> int:
    imported = import_weights_file(args.file)
    print(f"{imported.name} imported to {imported.path}: used for the {imported.used_for}")
    return 0


def cmd_weights_list(_args: argparse.Namespace) -> int:
    print(f"weights files looked for in {searched_folders()}:")
    for name, used_for, path in weights_report():
        print(f"  {name:28s} {used_for}: {path if path is not None else 'not found'}")
    return 0


def add_weights_parser(add: Callable[..., argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register `weights import` / `weights list` through main.py's `add(name, fn, help)` helper."""
    w = add("weights", cmd_weights_list, "Pretrained weights files (nothing is downloaded): import a local "
            "torchvision file, or list the ones found.")
    actions = w.add_subparsers(dest="weights_command")
    i = actions.add_parser("import", help="check a torchvision ImageNet weights file (VGG-16/19, AlexNet, "
                           "SqueezeNet) by its SHA-256 and copy it into DefectLab's weights folder")
    i.add_argument("file", help="the .pth file, e.g. vgg16-397923af.pth (any name: it is recognized by its hash)")
    i.set_defaults(func=cmd_weights_import)
    actions.add_parser("list", help="which weights files are found, and where").set_defaults(func=cmd_weights_list)
    return w
