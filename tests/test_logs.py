"""Job logs at scale: shard folders of a thousand jobs, `jobs.keep_logs`, and the fast --version.

Real runs of the demo worker (one input that fails like ffmpeg) through the command line; the
sharding of a plan too big to run is checked on the plan alone."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from orch_tui import __version__
from orch_tui.core.plan import load_plan
from orch_tui.core.statedir import StateDir, UnsafeFileError
from tests.helpers import Workspace, run_cli

STATE = ".orch-tui"


def logs_of(ws: Workspace) -> Path:
    return ws.output_dir / STATE / "logs"


def one_fails(workspace, **jobs) -> Workspace:
    """Two inputs of the demo worker: clip01 succeeds, clip02 (`bad`) fails with ffmpeg's
    words."""
    return workspace(["clip01.bin", "clip02-bad.bin"],
                     flags=[
                         "-m", "orch_tui.demo.worker", "--seconds", "0.1", "--fail-pattern", "bad",
                         "{input_file}", "{output_file}"
                     ],
                     jobs=jobs)


def headless(ws: Workspace) -> subprocess.CompletedProcess:
    return run_cli(str(ws.config), "--headless", "--max-procs", "2", cwd=ws.root)


def log_files(ws: Workspace) -> list[str]:
    """Every log, as `shard/name`, sorted."""
    logs = logs_of(ws)
    return sorted(str(p.relative_to(logs)) for p in logs.rglob("*.log"))


def test_a_plan_puts_each_thousand_jobs_in_a_shard_folder_of_its_own(workspace):
    ws = workspace(1001, size=1)
    plan = load_plan(ws.config)
    logs = logs_of(ws)
    by_id = {job.job_id: job.log_path for job in plan.jobs}
    assert by_id[1] == logs / "000" / "00001-clip01.log"
    assert by_id[999].parent == logs / "000"
    assert by_id[1000] == logs / "001" / "01000-clip1000.log"
    assert by_id[1001].parent == logs / "001"
    # Folder then name sorts exactly as the jobs do.
    paths = [by_id[job_id] for job_id in sorted(by_id)]
    assert sorted(paths) == paths
    assert not logs.exists(), "building a plan creates nothing"


def test_logs_are_written_in_shards_and_read_back_for_the_failure_line(workspace):
    ws = one_fails(workspace)
    result = headless(ws)
    assert result.returncode == 1, result.stdout + result.stderr
    assert log_files(ws) == ["000/00001-clip01.log", "000/00002-clip02-bad.log"]
    shard = logs_of(ws) / "000"
    assert stat.S_IMODE(shard.lstat().st_mode) == 0o700
    bad = shard / "00002-clip02-bad.log"
    # The failure line carries the job's last words, read from its sharded log, and its path.
    assert (f"FAILED #2 clip02-bad.bin: {ws.root / 'in' / 'clip02-bad.bin'}: Invalid data found "
            f"when processing input (exit 1) (log: {bad})") in result.stdout


@pytest.mark.parametrize("keep, left", [
    ("all", ["000/00001-clip01.log", "000/00002-clip02-bad.log"]),
    ("failed", ["000/00002-clip02-bad.log"]),
])
def test_keep_logs_failed_drops_the_succeeded_jobs_logs_at_the_end(workspace, keep, left):
    ws = one_fails(workspace, keep_logs=keep)
    result = headless(ws)
    assert result.returncode == 1, result.stdout + result.stderr
    assert log_files(ws) == left
    assert (ws.output_dir / "clip01_out.bin").exists()


def test_keep_logs_failed_removes_a_shard_it_emptied(workspace):
    ws = workspace(2, worker_args=["--seconds", "0.1"], jobs={"keep_logs": "failed"})
    result = headless(ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(logs_of(ws).iterdir()) == []


def test_a_bad_keep_logs_value_is_a_located_error(workspace):
    ws = workspace(1)
    config = json.loads(ws.config.read_text(encoding="utf-8"))
    config["jobs"]["keep_logs"] = "some"
    ws.config.write_text(json.dumps(config, indent=2), encoding="utf-8")
    line = next(n for n, text in enumerate(ws.config.read_text().splitlines(), 1)
                if "keep_logs" in text)
    result = run_cli(str(ws.config), "--headless", cwd=ws.root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{ws.config}:{line}" in result.stderr
    assert "jobs.keep_logs" in result.stderr and "all, failed" in result.stderr


def test_a_symlink_planted_as_a_shard_folder_is_replaced_never_followed(workspace, tmp_path):
    ws = workspace(2, worker_args=["--seconds", "0.1"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    logs = logs_of(ws)
    logs.mkdir(parents=True)
    os.chmod(logs.parent, 0o700)
    os.chmod(logs, 0o700)
    (logs / "000").symlink_to(elsewhere)
    result = headless(ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(elsewhere.iterdir()) == [], "nothing was written through the link"
    assert stat.S_ISDIR((logs / "000").lstat().st_mode)
    assert log_files(ws) == ["000/00001-clip01.log", "000/00002-clip02.log"]


def test_an_older_runs_unsharded_log_is_still_found_and_outsiders_are_refused(tmp_path):
    state = StateDir.open(tmp_path / "out")
    try:
        old = state.logs_path / "00001-a.log"  # where a journal row of an older run points
        fd = state.open_log(old)
        os.write(fd, b"old words\n")
        os.close(fd)
        dir_fd, name = state.log_location(old)
        assert (dir_fd, name) == (state.logs_fd, "00001-a.log")
        with pytest.raises(UnsafeFileError):
            state.log_location(tmp_path / "elsewhere" / "000" / "00001-a.log")
        with pytest.raises(FileNotFoundError):
            state.log_location(state.logs_path / "007" / "07001-a.log", create=False)
        state.remove_log(old)
        assert not old.exists()
    finally:
        state.close()


def test_version_answers_the_same_on_the_fast_path_and_through_argparse(tmp_path):
    fast = run_cli("--version", cwd=tmp_path)
    # Any other words take the full command line, whose argparse prints the same line.
    full = run_cli("--config", "absent.yaml", "--version", cwd=tmp_path)
    assert fast.returncode == full.returncode == 0
    assert fast.stdout == full.stdout == f"orch-tui {__version__}\n"
