"""Full or failing filesystems at every point of a run: no inodes left, no descriptors left, a
read-only output folder, a folder that stops being writable mid-run.

Whatever fails (the state folder, the lock, the journal, a log, a temporary output), the run
either refuses with one line and exit 2 before anything runs, or stops launching with one clear
line and exit 1, keeping every job that finished; never a traceback, never a half-written
output. The same command afterwards finishes the rest without redoing anything.
"""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import CMD, Workspace, unprivileged
from tests.test_durability import runs_per_input, wait_lines
from tests.test_hostile import outputs_exact

JOBS = 4


def run(ws: Workspace,
        *args: str,
        preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, str(ws.config), "--headless", *args],
                          capture_output=True,
                          text=True,
                          stdin=subprocess.DEVNULL,
                          preexec_fn=preexec_fn,
                          cwd=ws.root,
                          timeout=120,
                          check=False)


def assert_clean_ending(result: subprocess.CompletedProcess, *reasons: str) -> None:
    """Exit 2 with one stderr line, or exit 1 having stopped launching with one error line, or
    exit 0; never a traceback. A failure names one of `reasons`."""
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    if result.returncode == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and any(r in lines[0] for r in reasons), result.stderr
        assert "running" not in result.stdout
    elif result.returncode == 1:
        errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.stdout
        assert "no more launches" in errors[0] and any(r in errors[0] for r in reasons), errors
    else:
        assert result.returncode == 0, text


def assert_the_rest_runs_once(ws: Workspace, record: Path, done: list[str]) -> None:
    """The same command again finishes every job, and none that finished before runs again."""
    again = run(ws, "--max-procs", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(outputs_exact(ws)) == JOBS
    counts = runs_per_input(record) if record.exists() else {}
    for name in done:
        assert counts[name] == 1, f"{name} finished in the first run and ran again"


@pytest.mark.parametrize("inodes", range(1, 16))
def test_no_inodes_left_at_any_point_then_the_rest_runs_once(workspace, tmpfs, tmp_path, inodes):
    record = tmp_path / "record"
    ws = workspace(JOBS, worker_args=["--seconds", "0.1", "--record", str(record)])
    tmpfs(ws.output_dir, size="8m", nr_inodes=inodes)
    first = run(ws, "--max-procs", "1")
    assert_clean_ending(first, "No space left on device", "unable to open database file")
    subprocess.run(["mount", "-o", "remount,nr_inodes=1000", str(ws.output_dir)], check=True)
    assert_the_rest_runs_once(ws, record, outputs_exact(ws))
    assert not list((ws.output_dir / ".orch-tui" / "tmp").iterdir())


@pytest.mark.parametrize("limit", [10, 13, 15, 16, 17, 18, 19, 20, 21])
def test_no_descriptors_left_at_any_point_then_the_rest_runs_once(workspace, tmp_path, limit):
    record = tmp_path / "record"
    ws = workspace(JOBS, worker_args=["--seconds", "0.2", "--record", str(record)])

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    first = run(ws, "--max-procs", "4", preexec_fn=low_limit)
    assert_clean_ending(first, "Too many open files", "unable to open database file")
    assert_the_rest_runs_once(ws, record, outputs_exact(ws))


def test_a_read_only_output_folder_is_one_line(workspace, tmpfs):
    ws = workspace(2)
    tmpfs(ws.output_dir, read_only=True)
    result = run(ws, "--max-procs", "2")
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    # The config check catches it before any run state: `output_dir ... is not writable`.
    assert str(ws.output_dir) in lines[0]
    assert "not writable" in lines[0] or "Read-only file system" in lines[0], lines[0]


def test_a_logs_folder_that_stops_being_writable_stops_launching(workspace, tmp_path):
    if unprivileged() is None:
        pytest.skip("runs as a user already: permission bits apply without dropping anything")
    record = tmp_path / "record"
    ws = workspace(4, worker_args=["--seconds", "1", "--record", str(record)])
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # ended in finally
        [*CMD, str(ws.config), "--headless", "--max-procs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=unprivileged())
    try:
        wait_lines(record, 1)
        os.chmod(ws.output_dir / ".orch-tui" / "logs" / "000", 0o500)  # where logs are made
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        logs = ws.output_dir / ".orch-tui" / "logs" / "000"
        if logs.exists():
            os.chmod(logs, 0o700)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_clean_ending(result, "Permission denied")
    assert result.returncode == 1 and "3 not run" in out
    assert outputs_exact(ws) == ["clip01.bin"]


def test_runs_keep_nothing_half_written_when_the_disk_fills_up(workspace, tmpfs):
    """The journal's and the jobs' own writes fail alike: jobs that could not write fail, jobs
    that finished keep their outputs, and the run never reports a partial output as done."""
    ws = workspace(4, size=512 * 1024, worker_args=["--seconds", "0.3"])
    tmpfs(ws.output_dir, size="1m")
    first = run(ws, "--max-procs", "1")
    text = first.stdout + first.stderr
    assert "Traceback" not in text and first.returncode in (1, 2), text
    outputs_exact(ws)
    assert not list(Path(ws.output_dir, ".orch-tui", "tmp").glob("*/*"))
