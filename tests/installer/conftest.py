"""The frozen-build smoke test runs only when asked for by name (`-m installer`): it needs a build of several
minutes, so neither the default suite nor a `-m "not slow"` run selects it."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "installer" in (config.getoption("markexpr") or ""):
        return
    skipped = [item for item in items if item.get_closest_marker("installer")]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if not item.get_closest_marker("installer")]
