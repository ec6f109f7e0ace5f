"""A hostile world: the state folder removed mid-run, planted symlinks and hard links, foreign or
open state folders, closed and broken output streams, usage errors that must write nothing.

Every case runs the real command line against real files and checks what the operator is told
(one line, the right exit code, no traceback) and what is left on disk (nothing written through
a link, nothing lost, nothing half-written).
"""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orch_tui.core.plan import load_plan
from tests.helpers import CMD, Workspace, kill_quietly, run_cli
from tests.test_durability import runs_per_input, start, wait_lines

VICTIM = b"precious data that orch-tui must never touch\n"
NOBODY = 65534


def headless(ws: Workspace, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_cli(str(ws.config), "--headless", *args, cwd=ws.root, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2 with exactly one stderr line containing every fragment, and no traceback."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run_with_stdout_closed(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    """`orch-tui CONFIG ARGS >&-` (headless, 2 at a time by default): no stdout at all."""
    return subprocess.run(
        [*CMD, str(ws.config), *(args or ("--headless", "--max-procs", "2"))],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.close(1),
        timeout=60,
        check=False)


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_bytes(VICTIM)
    return path


def outputs_exact(ws: Workspace) -> list[str]:
    """Every output present is a byte-exact copy of its input; returns the input names done."""
    done = []
    for source in ws.inputs:
        output = ws.output_dir / f"{source.stem}_out{source.suffix}"
        if output.exists():
            assert output.read_bytes() == source.read_bytes(), output
            done.append(source.name)
    return done


# --- the lock holds whatever happens to the state folder ------------------------------------


def test_removing_the_state_folder_mid_run_keeps_a_second_run_out(workspace, tmp_path):
    record = tmp_path / "record"
    ws = workspace(6, worker_args=["--seconds", "3", "--record", str(record)])
    first = start(ws, "--max-procs", "2")
    try:
        wait_lines(record, 2)
        shutil.rmtree(ws.output_dir / ".orch-tui")
        second = headless(ws, "--max-procs", "2")
        one_error_line(second, f"pid {first.pid}", "another orch-tui")
        out, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert "Traceback" not in err
    assert first.returncode == 1, out + err
    assert "was removed or replaced during the run: no more launches" in out
    assert "4 not run" in out
    # The two running jobs' partial outputs went with the folder: they fail, nothing is renamed.
    assert outputs_exact(ws) == []
    assert runs_per_input(record) == {"clip01.bin": 1, "clip02.bin": 1}
    third = headless(ws, "--max-procs", "2")
    assert third.returncode == 0, third.stdout + third.stderr
    assert len(outputs_exact(ws)) == 6


def test_every_run_writes_its_temporary_outputs_in_a_folder_of_its_own(workspace):
    ws = workspace(2)
    one, two = load_plan(ws.config), load_plan(ws.config)
    assert one.run_temp_dir != two.run_temp_dir
    for plan in (one, two):
        for spec in plan.jobs:
            assert spec.temp_output_path is not None
            assert spec.temp_output_path.parent == plan.run_temp_dir
            assert spec.temp_output_path.name == spec.output_path.name
            assert str(spec.temp_output_path) in spec.argv


def test_preflight_removes_only_the_temporary_outputs_of_dead_runs(workspace, tmp_path):
    ws = workspace(2)
    tmp = ws.output_dir / ".orch-tui" / "tmp"
    dead, live = tmp / "0123456789abcdef", tmp / "fedcba9876543210"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "clip01_out.bin").write_bytes(b"partial")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(VICTIM)
    (tmp / "planted").symlink_to(outside)
    holder = subprocess.Popen(  # pylint: disable=consider-using-with  # ended in the test's finally
        [
            sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY);"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(live)
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = headless(ws, "--max-procs", "2")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed the temporary outputs of an interrupted run (0123456789abcdef)" in \
        result.stdout
    assert not dead.exists()
    assert (live / "clip01_out.bin").read_bytes() == b"partial", "a live run's folder is kept"
    assert (outside / "keep").read_bytes() == VICTIM and (tmp / "planted").is_symlink()
    assert len(outputs_exact(ws)) == 2


# --- nothing written through a planted link --------------------------------------------------


@pytest.mark.parametrize("name", ["lock", "logs", "tmp", "."])
def test_a_symlink_planted_in_the_state_folder_is_refused(workspace, tmp_path, name):
    ws = workspace(2)
    target = victim(tmp_path)
    if name in ("logs", "tmp", "."):
        target = tmp_path / "elsewhere"
        target.mkdir()
    state = ws.output_dir / ".orch-tui"
    state.mkdir(parents=True, mode=0o700) if name != "." else ws.output_dir.mkdir()
    link = state / name if name != "." else state
    link.symlink_to(target)
    result = headless(ws, "--max-procs", "2")
    one_error_line(result, str(link).rstrip("/."), "symlink")
    if target.is_dir():
        assert list(target.iterdir()) == [], "nothing was written through the link"
    else:
        assert target.read_bytes() == VICTIM
    assert outputs_exact(ws) == []


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_a_link_planted_at_a_log_fails_that_job_alone(workspace, tmp_path, how):
    ws = workspace(3)
    target = victim(tmp_path)
    logs = ws.output_dir / ".orch-tui" / "logs" / "000"
    logs.mkdir(parents=True)
    os.chmod(ws.output_dir / ".orch-tui", 0o700)
    os.chmod(logs.parent, 0o700)
    os.chmod(logs, 0o700)
    planted = logs / "00002-clip02.log"
    if how == "symlink":
        planted.symlink_to(target)
    else:
        os.link(target, planted)
    result = headless(ws, "--max-procs", "2")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    reason = "is a symlink" if how == "symlink" else "hard links"
    assert f"FAILED #2 clip02.bin: cannot create its log: {planted}" in result.stdout
    assert reason in result.stdout
    assert target.read_bytes() == VICTIM
    assert outputs_exact(ws) == ["clip01.bin", "clip03.bin"]


def test_a_dangling_symlink_at_an_output_name_is_replaced_never_followed(workspace, tmp_path):
    ws = workspace(1)
    ws.output_dir.mkdir()
    aimed = tmp_path / "aimed-at"
    (ws.output_dir / "clip01_out.bin").symlink_to(aimed)
    result = headless(ws, "--max-procs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    output = ws.output_dir / "clip01_out.bin"
    assert not output.is_symlink() and not aimed.exists()
    assert outputs_exact(ws) == ["clip01.bin"]


def test_a_symlink_at_run_log_is_not_followed_when_stdout_is_closed(workspace, tmp_path):
    ws = workspace(2)
    target = victim(tmp_path)
    state = ws.output_dir / ".orch-tui"
    state.mkdir(parents=True, mode=0o700)
    (state / "run.log").symlink_to(target)
    result = run_with_stdout_closed(ws)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert target.read_bytes() == VICTIM
    assert len(outputs_exact(ws)) == 2


# --- the state folder is private -------------------------------------------------------------


def test_with_umask_0_everything_in_the_state_folder_is_private(workspace):
    ws = workspace(2)
    result = subprocess.run([*CMD, str(ws.config), "--headless", "--max-procs", "2"],
                            capture_output=True,
                            text=True,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: os.umask(0),
                            timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    state = ws.output_dir / ".orch-tui"
    folders = [state, *(p for p in state.rglob("*") if p.is_dir())]
    files = [p for p in state.rglob("*") if p.is_file()]
    assert {p.name for p in folders} >= {".orch-tui", "logs", "tmp"}
    assert len(files) >= 4, files  # lock, journal, two logs
    for path in folders:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("spoil, fragment", [
    (lambda state: os.chmod(state, 0o777), "writable by group or others (mode 777)"),
    (lambda state: os.chmod(state, 0o770), "writable by group or others (mode 770)"),
    (lambda state: os.chown(state, NOBODY, NOBODY), f"owned by uid {NOBODY}"),
    (lambda state: os.chown(state / "logs", NOBODY, NOBODY), f"owned by uid {NOBODY}"),
    (lambda state: os.chmod(state / "tmp", 0o733), "writable by group or others"),
    (lambda state: os.chown(state / "lock", NOBODY, NOBODY), f"owned by uid {NOBODY}"),
    (lambda state: os.chmod(state / "lock", 0o666), "writable by group or others"),
],
                         ids=[
                             "state-777", "state-770", "state-foreign", "logs-foreign", "tmp-open",
                             "lock-foreign", "lock-open"
                         ])
def test_a_foreign_or_open_state_folder_or_file_is_refused(workspace, spoil, fragment):
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    ws = workspace(2)
    first = headless(ws, "--max-procs", "2", "--overwrite")
    assert first.returncode == 0, first.stdout + first.stderr
    spoil(ws.output_dir / ".orch-tui")
    result = headless(ws, "--max-procs", "2", "--overwrite")
    one_error_line(result, fragment, "refusing")
    assert "running" not in result.stdout


def test_a_state_folder_readable_by_others_from_an_older_run_is_made_private(workspace):
    ws = workspace(1)
    state = ws.output_dir / ".orch-tui"
    state.mkdir(parents=True)
    os.chmod(state, 0o755)
    result = headless(ws, "--max-procs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


# --- usage errors write nothing --------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing-folder", "a-folder", "symlink"])
def test_a_joblog_that_cannot_be_opened_is_exit_2_before_anything_is_touched(
        workspace, tmp_path, case):
    ws = workspace(2)
    target = victim(tmp_path)
    joblog = {
        "missing-folder": tmp_path / "no" / "such" / "joblog",
        "a-folder": tmp_path,
        "symlink": tmp_path / "joblog-link",
    }[case]
    if case == "symlink":
        joblog.symlink_to(target)
    result = headless(ws, "--max-procs", "2", "--joblog", str(joblog))
    one_error_line(result, "cannot write the joblog", str(joblog))
    assert not ws.output_dir.exists(), "no output or state folder, lock or journal"
    assert target.read_bytes() == VICTIM


def test_a_refused_run_leaves_no_new_joblog(workspace, tmp_path):
    ws = workspace(2)
    state = ws.output_dir / ".orch-tui"
    state.mkdir(parents=True)
    os.chmod(state, 0o777)
    joblog = tmp_path / "joblog"
    result = headless(ws, "--max-procs", "2", "--joblog", str(joblog))
    one_error_line(result, "writable by group or others")
    assert not joblog.exists()


def test_an_output_name_longer_than_name_max_is_exit_2_naming_the_input(workspace):
    long_name = "n" * 248 + ".bin"  # a legal 252-byte input; its output needs 256 bytes
    ws = workspace(["a.bin", long_name])
    result = headless(ws, "--max-procs", "2")
    one_error_line(result, "line 2", long_name, "256 bytes", "directories.output_suffix")
    assert not ws.output_dir.exists()


# --- output streams that go away -------------------------------------------------------------


def test_headless_with_stdout_closed_runs_to_the_end_and_keeps_run_log(workspace):
    ws = workspace(3)
    result = run_with_stdout_closed(ws)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    run_log = (ws.output_dir / ".orch-tui" / "run.log").read_text(encoding="utf-8")
    assert "preflight: 3 inputs" in run_log and "done: 3 succeeded" in run_log
    assert len(outputs_exact(ws)) == 3
    # Read later, so every line says when; and one line per job start and end.
    lines = run_log.splitlines()
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")
    assert all(stamp.match(line) for line in lines), run_log
    for job_id in (1, 2, 3):
        assert sum(f" start #{job_id} " in line for line in lines) == 1, run_log
        assert sum(f" succeeded #{job_id} " in line for line in lines) == 1, run_log


def test_dry_run_with_stdout_closed_or_into_a_broken_pipe_never_crashes(workspace):
    ws = workspace(3000, size=10)
    closed = run_with_stdout_closed(ws, "--dry-run")
    assert (closed.returncode, closed.stderr) == (0, "")
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # ended in the test's finally
        [*CMD, str(ws.config), "--dry-run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err
    assert b"clip01.bin" in first and not ws.output_dir.exists()


def test_headless_into_a_broken_pipe_runs_to_the_end_and_keeps_run_log(workspace):
    ws = workspace(3, worker_args=["--seconds", "0.5"])
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # ended in the test's finally
        [*CMD, str(ws.config), "--headless", "--max-procs", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
    finally:
        kill_quietly([proc.pid])
    assert first.startswith(b"preflight: 3 inputs")
    assert proc.returncode == 0 and err == "", err
    run_log = (ws.output_dir / ".orch-tui" / "run.log").read_text(encoding="utf-8")
    assert "done: 3 succeeded" in run_log
    assert len(outputs_exact(ws)) == 3


def test_an_input_that_vanishes_mid_run_is_named(workspace, tmp_path):
    record = tmp_path / "record"
    ws = workspace(3, worker_args=["--seconds", "1", "--record", str(record)])
    proc = start(ws, "--max-procs", "1")
    try:
        wait_lines(record, 1)
        ws.inputs[1].unlink()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "Traceback" not in err, out + err
    assert "MISSING #2 clip02.bin: input vanished before its job started" in out
    assert "1 missing" in out


def test_the_lock_pid_of_a_live_holder_is_named_even_without_the_lock_file(workspace):
    ws = workspace(1)
    ws.output_dir.mkdir()
    fd = os.open(ws.output_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = headless(ws, "--max-procs", "1")
    finally:
        os.close(fd)
    one_error_line(result, f"pid {os.getpid()}", "another orch-tui")
    assert not (ws.output_dir / ".orch-tui").exists()
