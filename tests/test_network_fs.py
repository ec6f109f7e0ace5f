"""An output folder on a network filesystem: the journal and the control socket live on this
machine's disk (SQLite's WAL and Unix sockets do not work across NFS), the shared folder says
where, the locks stay on the shared folder, and resume, status and a live run's socket work.

No network filesystem can be mounted here: the runs below say "network" through
ORCH_TUI_NETWORK_FS=1, the operator's override, and the detection itself is checked against
this machine's real filesystems."""

# Test names say what each test checks; pytest fixtures are parameters named like themselves.
# pylint: disable=missing-function-docstring,redefined-outer-name
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from orch_tui.core import fstype
from orch_tui.core.statehome import WHERE_NAME, local_folder
from tests.helpers import CMD, kill_quietly, run_cli
from tests.tmux import wait_until

STATE = ".orch-tui"
TMPFS_MAGIC = 0x01021994


def _mount_of(path: Path) -> str | None:
    # pylint: disable-next=protected-access  # the detection's own probes are what is tested
    return fstype._mount_type(path)


def _statfs_of(path: Path) -> int | None:
    # pylint: disable-next=protected-access  # the detection's own probes are what is tested
    return fstype._statfs_type(path)


def test_this_machines_filesystems_are_not_network_ones(tmp_path, monkeypatch):
    monkeypatch.delenv(fstype.OVERRIDE_VARIABLE, raising=False)
    assert fstype.network_filesystem(tmp_path) is None
    shm = Path("/dev/shm")
    if _mount_of(shm) == "tmpfs":
        # statfs through libc reads the same type as mountinfo names.
        assert _statfs_of(shm) == TMPFS_MAGIC
        assert fstype.network_filesystem(shm) is None
    # The magic numbers of network filesystems are known by name; FUSE asks the mount.
    assert fstype.NETWORK_MAGIC[0x6969] == "nfs"
    assert "sshfs" in fstype.NETWORK_FUSE


def test_asking_the_filesystem_type_starts_no_process(tmp_path, monkeypatch):
    """Every run asks at its start: ctypes.util.find_library("c") would fork `ldconfig -p` each
    time (two processes a run, several milliseconds)."""
    monkeypatch.delenv(fstype.OVERRIDE_VARIABLE, raising=False)

    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started: {args} {kwargs}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(os, "popen", no_process)
    monkeypatch.setattr(os, "posix_spawn", no_process)
    assert _statfs_of(tmp_path) is not None
    assert fstype.network_filesystem(tmp_path) is None


def test_the_override_says_network_or_local(tmp_path, monkeypatch):
    monkeypatch.setenv(fstype.OVERRIDE_VARIABLE, "1")
    assert "ORCH_TUI_NETWORK_FS=1" in str(fstype.network_filesystem(tmp_path))
    monkeypatch.setenv(fstype.OVERRIDE_VARIABLE, "0")
    assert fstype.network_filesystem(tmp_path) is None


@pytest.fixture
def network(tmp_path, monkeypatch):
    """Every orch-tui started by the test sees its output folder as on a network filesystem,
    with its local state (XDG_STATE_HOME) and runtime folder in the test's own folders."""
    monkeypatch.setenv(fstype.OVERRIDE_VARIABLE, "1")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # A short runtime folder: a socket's path must fit sun_path's 108 bytes to be connected to.
    runtime = Path(tempfile.mkdtemp(prefix="orch-rt-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield tmp_path, runtime
    shutil.rmtree(runtime, ignore_errors=True)


def test_a_run_keeps_its_journal_on_this_machine_and_resumes_from_it(network, workspace):
    root, _ = network
    ws = workspace(3)
    first = run_cli(str(ws.config), "--headless", timeout=120)  # calibrates: figures learned
    assert first.returncode == 0, first.stdout + first.stderr
    local = local_folder(ws.output_dir)
    assert local.is_relative_to(root / "state" / "orch-tui" / "runs")
    assert (local / "journal.sqlite3").is_file()
    assert oct(local.stat().st_mode & 0o777) == "0o700"
    shared = ws.output_dir / STATE
    assert not list(shared.glob("journal.sqlite3*")), "no SQLite file on the shared folder"
    assert (shared / "lock").is_file(), "the lock stays on the shared folder"
    host, folder = (shared / WHERE_NAME).read_text().splitlines()
    assert host == socket.gethostname() and folder == str(local)
    assert f"in {local}" in first.stdout + first.stderr
    # The same command again: what the journal on this machine learned replaces calibration.
    second = run_cli(str(ws.config), "--headless", "--overwrite", timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "figures learned in a previous run replace calibration" in second.stdout
    status = run_cli("status", str(ws.output_dir), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["succeeded"] == 3


def test_status_on_another_machine_says_where_the_journal_is(network, workspace, monkeypatch):
    ws = workspace(1)
    assert run_cli(str(ws.config), "--headless", "--jobs", "1", timeout=120).returncode == 0
    driver_folder = local_folder(ws.output_dir)
    # Another machine: the same shared folder, its own local state (empty).
    monkeypatch.setenv("XDG_STATE_HOME", str(network[0] / "elsewhere"))
    result = run_cli("status", str(ws.output_dir))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert socket.gethostname() in lines[0] and str(driver_folder) in lines[0]


def test_a_live_runs_socket_is_off_the_shared_folder_and_answers(network, workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(2, worker_args=["--seconds", "60", "--pidfile", str(pidfile)])
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # ended below
        [*CMD, str(ws.config), "--headless", "--jobs", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL)
    try:
        record = ws.output_dir / STATE / "control.path"
        wait_until(record.exists, what="the socket's recorded path")
        recorded = Path(record.read_text().strip())
        assert recorded.is_relative_to(network[1]), recorded
        assert not (ws.output_dir / STATE / "control.sock").exists()

        def live() -> bool:
            result = run_cli("status", str(ws.output_dir), "--json")
            return result.returncode == 0 and json.loads(result.stdout)["source"] == "live"

        wait_until(live, what="status from the live run's socket")
        assert run_cli("stop", str(ws.output_dir)).returncode == 0
        assert proc.wait(timeout=60) == 143
    finally:
        proc.kill()
        proc.wait()
        kill_quietly([int(p) for p in pidfile.read_text().split()] if pidfile.exists() else [])


def test_a_symlink_planted_at_the_local_folder_is_refused(network, workspace, tmp_path):
    ws = workspace(1)
    ws.output_dir.mkdir(parents=True, exist_ok=True)
    local = local_folder(ws.output_dir)
    local.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, local)
    result = run_cli(str(ws.config), "--headless", "--jobs", "1", timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(local) in lines[0] and "symlink" in lines[0], result.stderr
    assert not list(elsewhere.iterdir()), "nothing written through the link"
