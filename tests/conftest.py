"""Shared fixtures."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orch_tui.core.containment import ContainmentError, find_cgroup2

from tests.cluster_fixture import Cluster
from tests.helpers import Workspace, write_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., Workspace]:
    """Factory: `workspace(names, worker_args=[...], ...)` inside this test's tmp_path."""

    def make(*args, **kwargs) -> Workspace:
        return write_workspace(tmp_path / "ws", *args, **kwargs)

    return make


@pytest.fixture
def tmpfs() -> Iterator[Callable[..., Path]]:
    """`tmpfs(folder, size="4m", nr_inodes=None, read_only=False)` mounts a real tmpfs on
    `folder` (root only: skipped with the reason when the mount is refused); every mount is
    undone after the test."""
    mounted: list[Path] = []

    def mount(folder: Path,
              size: str = "4m",
              nr_inodes: int | None = None,
              read_only: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (f",nr_inodes={nr_inodes}" if nr_inodes else "")
        options += ",ro" if read_only else ""
        try:
            result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                                     str(folder)],
                                    capture_output=True,
                                    text=True,
                                    timeout=30,
                                    check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot mount a tmpfs: {exc}")
        if result.returncode != 0:
            pytest.skip("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): "
                        f"{result.stderr.strip()}")
        mounted.append(folder)
        return folder

    try:
        yield mount
    finally:
        for folder in reversed(mounted):
            if subprocess.run(["umount", str(folder)], capture_output=True,
                              check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _run_groups() -> set[Path]:
    """The cgroup v2 groups of orch-tui runs under this process's own group (none without
    cgroup v2)."""
    try:
        mount, own = find_cgroup2()
    except ContainmentError:
        return set()
    return set((mount / own.lstrip("/")).glob("orch-tui-*"))


@pytest.fixture(autouse=True)
def no_cgroup_outlives_its_run() -> Iterator[None]:
    """Every test, hostile ones included, must leave no run's cgroup behind (a guardian removes
    a killed orchestrator's groups within a few seconds: waited for, not slept)."""
    before = _run_groups()
    yield
    deadline = time.monotonic() + 15
    while (left := _run_groups() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"cgroups left behind: {sorted(map(str, left))}"


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real Dask scheduler and two `orch-tui node` workers on 127.0.0.1, started once for
    the whole session (tests/cluster_fixture.py), stopped at its end."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
