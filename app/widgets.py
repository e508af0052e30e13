"""Small widget helpers shared by the panels."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy

ZERO_WIDTH_SPACE = "\u200b"


def shrinkable(label: QLabel) -> QLabel:
    """Let `label` be narrower than its text (a long path is cut, not the window widened); returns it."""
    label.setMinimumWidth(1)
    policy = label.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    label.setSizePolicy(policy)
    return label


def breakable(text: str) -> str:
    """`text` with a line-break opportunity after every path separator, for word-wrapped labels."""
    return text.replace("/", "/" + ZERO_WIDTH_SPACE).replace("\\", "\\" + ZERO_WIDTH_SPACE)
