"""The output filesystem filling up mid-run, and an input that vanishes before its job starts.

The disk tests mount a 4 MiB tmpfs as output_dir (root only; skipped with the reason when the
mount is refused) and run six jobs whose 1.5 MiB outputs together need more than twice that:
jobs that hit ENOSPC must fail cleanly, no temporary output may remain, launching must stop
while free space is below the reserve, the operator must be told, completed outputs must be
intact and the exit code must be 1.
"""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from tests import helpers
from tests.helpers import Workspace, start_run

MIB = 1024 * 1024
INPUT_SIZE = 3 * MIB // 2
JOBS = 6
TMPFS_SIZE = "4m"


@pytest.fixture(name="small_disk")
def fixture_small_disk(tmpfs) -> Callable[[Path], Path]:
    """`small_disk(folder)` mounts a 4 MiB tmpfs on `folder`."""
    return lambda folder: tmpfs(folder, size=TMPFS_SIZE)


def disk_workspace(workspace, small_disk, **resources) -> Workspace:
    """Six 1.5 MiB inputs copied progressively over ~1 s each into a 4 MiB output tmpfs."""
    ws = workspace(JOBS,
                   size=INPUT_SIZE,
                   worker_args=["--seconds", "1"],
                   resources={
                       "sample_interval": 0.05,
                       **resources
                   })
    small_disk(ws.output_dir)
    return ws


def run_cli(ws: Workspace, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real command, headless, to completion."""
    try:
        return helpers.run_cli(str(ws.config), "--headless", *args, cwd=ws.root, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"orch-tui did not end within {timeout}s; output so far:\n"
                             f"{exc.stdout!r}") from None


def assert_outputs_intact(ws: Workspace) -> list[str]:
    """Every output present is a byte-exact copy of its input; no temporary output is left.
    Returns the names of the outputs."""
    temp = ws.output_dir / ".orch-tui" / "tmp"
    leftovers = [str(p) for p in temp.rglob("*")] if temp.exists() else []
    assert leftovers == [], "temporary outputs (and their run folders) must be removed"
    names = []
    for source in ws.inputs:
        output = ws.output_dir / f"{source.stem}_out{source.suffix}"
        if output.exists():
            assert output.read_bytes() == source.read_bytes(), f"{output.name} is damaged"
            names.append(output.name)
    return names


def counts_of(stdout: str) -> dict[str, int]:
    """The final summary line's counts, e.g. {'succeeded': 2, 'failed': 4, ...}."""
    last = [line for line in stdout.splitlines() if line.startswith(("done:", "interrupted:"))]
    assert last, stdout
    summary = last[-1].split(": ", 1)[1].split(" in ")[0]
    return {
        name: int(number)
        for number, name in (part.split(" ", 1) for part in summary.split(", "))
    }


def test_enospc_mid_run_fails_those_jobs_cleanly_and_keeps_completed_outputs(workspace, small_disk):
    ws = disk_workspace(workspace, small_disk)
    result = run_cli(ws, "--max-procs", "2")

    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    counts = counts_of(result.stdout)
    assert counts["succeeded"] >= 1 and counts["failed"] >= 1, result.stdout
    assert counts["succeeded"] + counts["failed"] + counts.get("not run", 0) == JOBS
    assert "disk below its reserve" in result.stdout, "the operator is told about the disk"
    assert len(assert_outputs_intact(ws)) == counts["succeeded"]


async def test_launching_stops_while_free_disk_is_below_its_reserve(workspace, small_disk):
    ws = disk_workspace(workspace, small_disk)
    running = await start_run(ws.plan(), max_procs=2)
    code = await running.result(timeout=60)
    events = running.recorder.events

    assert code == 1
    pressure = [
        e for e in events if isinstance(e, ev.ResourcePressure) and e.resource is ev.Resource.DISK
    ]
    assert pressure and pressure[
        0].level is ev.PressureLevel.LOW, "a disk pressure event is published"
    assert all(e.available < e.reserve for e in pressure if e.level is ev.PressureLevel.LOW)
    # No launch while the disk is below its reserve: from each 'low' to the next 'ok'.
    low = False
    for event in events:
        if isinstance(event, ev.ResourcePressure) and event.resource is ev.Resource.DISK:
            low = event.level is not ev.PressureLevel.OK
        elif isinstance(event, ev.JobStateChanged) and event.state is JobState.RUNNING:
            assert not low, f"job {event.job_id} launched while disk was below its reserve"
    jobs = running.orchestrator.jobs.values()
    failed = [job for job in jobs if job.state is JobState.FAILED]
    succeeded = [job for job in jobs if job.state is JobState.SUCCEEDED]
    assert failed and succeeded
    for job in failed:
        assert job.exit_code not in (None, 0), "the worker saw ENOSPC and exited non-zero"
        assert job.spec.temp_output_path is not None
        assert not job.spec.temp_output_path.exists()
        assert not job.spec.output_path.exists(), "a failed job never leaves a final output"
    assert sorted(assert_outputs_intact(ws)) == sorted(j.spec.output_path.name for j in succeeded)


def test_run_ends_with_exit_1_when_disk_stays_below_its_reserve_with_nothing_running(
        workspace, small_disk):
    # A 30 % reserve (~1.2 MiB of the 4 MiB): after two outputs only ~1 MiB is left, so nothing
    # more may launch. With nothing running nothing will free space: the run must end (exit 1,
    # the rest not run) instead of waiting forever.
    ws = disk_workspace(workspace, small_disk, disk_fraction=0.7)
    result = run_cli(ws, "--max-procs", "2", timeout=20)

    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert "disk below its reserve" in result.stdout
    counts = counts_of(result.stdout)
    assert counts["succeeded"] == 2, result.stdout
    assert counts["succeeded"] + counts["failed"] + counts.get("not run", 0) == JOBS
    assert len(assert_outputs_intact(ws)) == 2


def test_a_full_output_filesystem_at_start_is_one_error_line_not_a_traceback(workspace, small_disk):
    ws = disk_workspace(workspace, small_disk)
    filler = ws.output_dir / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * MIB)
                handle.flush()
        except OSError:
            pass
    result = run_cli(ws, "--max-procs", "2")

    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (1, 2), result.stdout + result.stderr
    if result.returncode == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("orch-tui: error: "), result.stderr
        assert str(ws.output_dir) in lines[0]
    assert sorted(p.name for p in ws.output_dir.iterdir() if p.name != ".orch-tui") == ["filler"]


async def test_an_input_vanished_before_its_job_started_ends_missing_and_the_run_goes_on(workspace):
    ws = workspace(4, worker_args=["--seconds", "0.6"])
    running = await start_run(ws.plan(), max_procs=1)
    try:
        await running.wait_for(lambda: running.state(1) is JobState.RUNNING)
        ws.inputs[2].unlink()
        code = await running.result(timeout=30)
    finally:
        if not running.task.done():
            running.orchestrator.shutdown(kill=True)
            await running.result(timeout=30)

    assert code == 1
    assert running.state(3) is JobState.MISSING
    job = running.orchestrator.jobs[3]
    assert "vanished" in job.reason
    assert [running.state(i) for i in (1, 2, 4)] == [JobState.SUCCEEDED] * 3
    final = running.recorder.final()
    assert final.counts.get("missing") == 1 and final.counts.get("succeeded") == 3
    assert not job.spec.output_path.exists() and not job.spec.temp_output_path.exists()
