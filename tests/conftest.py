"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Workspace, write_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., Workspace]:
    """Factory: `workspace(names, worker_args=[...], ...)` inside this test's tmp_path."""

    def make(*args, **kwargs) -> Workspace:
        return write_workspace(tmp_path / "ws", *args, **kwargs)

    return make
