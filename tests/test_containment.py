"""A job's escaped descendants never outlive it: a double-forked setsid daemon (ignoring SIGTERM)
in each containment mode, for every way a job can end."""

# Test names say what each test checks; pytest fixtures are parameters named like themselves.
# pylint: disable=missing-function-docstring,redefined-outer-name
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from orch_tui.core import containment as ct
from orch_tui.core import local_runner
from orch_tui.core.errors import OrchError
from tests.helpers import CMD, kill_quietly, process_state, run_cli, start_run
from tests.tmux import wait_until

LEFT_ONE = "orch-tui: left 1 process behind; killed"
GUARDIAN_ONE = "orch-tui: orchestrator gone; killed the job and 1 other process"


def _cgroup_unavailable() -> str | None:
    try:
        probe = ct.CgroupContainment.create("probe" + secrets.token_hex(4))
    except ct.ContainmentError as exc:
        return str(exc)
    probe.close()
    return None


@pytest.fixture(params=["cgroup", "subreaper"])
def mode(request, monkeypatch):
    """The containment forced through ORCH_TUI_CONTAINMENT (inherited by the CLI)."""
    if request.param == "cgroup":
        reason = _cgroup_unavailable()
        if reason:
            pytest.skip(f"no usable cgroup v2 with cgroup.kill here: {reason}")
    monkeypatch.setenv(ct.MODE_VARIABLE, request.param)
    return request.param


def written(pidfile: Path) -> bool:
    return pidfile.exists() and len(pidfile.read_text(encoding="utf-8").split()) >= 2


def job_pids(pidfile: Path) -> tuple[int, int]:
    """(main, daemon) once the worker has written them."""
    wait_until(lambda: written(pidfile), what="the daemon's pid")
    main, daemon = (int(p) for p in pidfile.read_text(encoding="utf-8").split()[:2])
    return main, daemon


def ppid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def gone(pid: int) -> bool:
    """Gone, or a zombie that is not ours to reap (init's business)."""
    state = process_state(pid)
    return state is None or (state == "Z" and ppid_of(pid) != os.getpid())


def our_zombies() -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit() and process_state(int(name)) == "Z" and ppid_of(int(name)) == os.getpid():
            found.add(int(name))
    return found


def contained_as(daemon: int, mode: str) -> Path:
    """Check the daemon is held the way `mode` says; return the run's cgroup directory (which
    must exist in cgroup mode only, and never after the run)."""
    environ = Path(f"/proc/{daemon}/environ").read_bytes().split(b"\0")
    markers = [e for e in environ if e.startswith(b"ORCH_TUI_JOB=")]
    assert len(markers) == 1, "every job carries its marker"
    token, job_id = markers[0].split(b"=", 1)[1].decode().split(":")
    assert len(token) == 16 and job_id == "1"
    line = next(line
                for line in Path(f"/proc/{daemon}/cgroup").read_text(encoding="ascii").splitlines()
                if line.startswith("0::"))
    mount, own = ct.find_cgroup2()
    run_dir = mount / own.lstrip("/") / f"orch-tui-{token}"
    if mode == "cgroup":
        expected = f"{own.rstrip('/')}/orch-tui-{token}/job-"
        assert line[3:].startswith(expected), f"really in its job's cgroup: {line}"
        assert run_dir.is_dir()
    else:
        assert "orch-tui-" not in line and not run_dir.exists()
    return run_dir


def job_log(ws) -> str:
    logs = list((ws.output_dir / ".orch-tui" / "logs").rglob("*.log"))
    assert len(logs) == 1
    return logs[0].read_text(encoding="utf-8", errors="replace")


def start_cli(ws, *extra):
    return subprocess.Popen(  # pylint: disable=consider-using-with  # the caller ends it
        [*CMD, "--headless", str(ws.config), "--max-procs", "1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True)


def daemon_workspace(workspace, tmp_path, seconds):
    return workspace(
        1, worker_args=["--daemon", "--pidfile",
                        str(tmp_path / "pids"), "--seconds",
                        str(seconds)])


@contextlib.contextmanager
def daemon_run(mode, workspace, tmp_path, seconds):
    """The real CLI running one job that left a setsid daemon: (process, workspace, [main pid,
    daemon pid], the run's cgroup folder); nothing survives the test, whatever it asserts."""
    ws = daemon_workspace(workspace, tmp_path, seconds)
    proc = start_cli(ws)
    pids: list[int] = []
    try:
        pids.extend(job_pids(tmp_path / "pids"))
        yield proc, ws, pids, contained_as(pids[1], mode)
    finally:
        proc.kill()
        kill_quietly(pids)


def test_the_daemon_dies_when_its_job_exits_by_itself(mode, workspace, tmp_path):
    with daemon_run(mode, workspace, tmp_path, 3) as (proc, ws, pids, run_dir):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        wait_until(lambda: gone(pids[1]), what="the daemon's end")
        assert LEFT_ONE in job_log(ws)
        assert not run_dir.exists()


async def test_the_daemon_dies_when_the_operator_kills_its_job(mode, workspace, tmp_path):
    ws = daemon_workspace(workspace, tmp_path, 600)
    zombies_before = our_zombies()
    run = await start_run(ws.plan(), max_procs=1)
    pids: list[int] = []
    try:
        await run.wait_for(lambda: written(tmp_path / "pids"))
        pids = list(job_pids(tmp_path / "pids"))
        run_dir = contained_as(pids[1], mode)
        assert run.orchestrator.kill(1)
        assert await run.result() == 1
        await run.wait_for(lambda: gone(pids[1]))
        assert LEFT_ONE in job_log(ws)
        assert not run_dir.exists()
        assert not our_zombies() - zombies_before, "adopted processes are reaped"
    finally:
        kill_quietly(pids)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_daemon_dies_when_the_orchestrator_is_stopped(mode, signum, workspace, tmp_path):
    with daemon_run(mode, workspace, tmp_path, 600) as (proc, ws, pids, run_dir):
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + signum, out + err
        wait_until(lambda: all(gone(p) for p in pids), what="the job's and daemon's end")
        assert LEFT_ONE in job_log(ws)
        assert not run_dir.exists()


def test_the_daemon_dies_when_the_orchestrator_is_killed_9(mode, workspace, tmp_path):
    with daemon_run(mode, workspace, tmp_path, 600) as (proc, ws, pids, run_dir):
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_until(lambda: all(gone(p) for p in pids), what="the guardian's kill")
        wait_until(lambda: not run_dir.exists(), what="the run's cgroup removal")
        wait_until(lambda: GUARDIAN_ONE in job_log(ws), what="the guardian's note")


@pytest.mark.parametrize("mode,root", [("cgroup", "no-cgroup-here"), ("bogus", None)])
def test_a_containment_that_cannot_be_had_is_one_line_exit_2_and_writes_nothing(
        workspace, tmp_path, monkeypatch, mode, root):
    """Refused before the output folder, its state folder, journal or the joblog exist."""
    ws = workspace(1)
    monkeypatch.setenv(ct.MODE_VARIABLE, mode)
    if root is not None:
        monkeypatch.setenv(ct.ROOT_VARIABLE, str(tmp_path / root))
    joblog = tmp_path / "joblog"
    result = run_cli(str(ws.config),
                     "--headless",
                     "--max-procs",
                     "1",
                     "--joblog",
                     str(joblog),
                     timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"ORCH_TUI_CONTAINMENT{'=' if root else ''}" in lines[0], \
        result.stderr
    assert "Traceback" not in result.stderr
    assert not ws.output_dir.exists() and not joblog.exists()


def test_auto_falls_back_to_the_subreaper_and_a_bad_mode_is_refused(tmp_path):
    fallback = ct.select_containment("t0", "auto", root=tmp_path / "none")
    try:
        assert fallback.mode == "subreaper"
    finally:
        fallback.close()
    with pytest.raises(ct.ContainmentError) as caught:
        ct.select_containment("t0", "cgroups")
    assert caught.value.exit_code == 2 and "ORCH_TUI_CONTAINMENT" in str(caught.value)


def test_the_note_is_grammatical():
    assert ct.left_behind_note(1) == LEFT_ONE + "\n"
    assert ct.left_behind_note(2) == "orch-tui: left 2 processes behind; killed\n"


def _spawn_in(containment, job_id: int, argv: list[str]) -> int:
    """Start `argv` in `job_id`'s group (as LocalRunner does) and return its pid."""
    with containment.spawning(job_id):
        pid = os.posix_spawn(argv[0], argv, os.environ, setsid=True)
    containment.started(job_id, pid)
    return pid


def _group_of(pid: int) -> str:
    text = Path(f"/proc/{pid}/cgroup").read_text(encoding="ascii")
    return next(line[3:] for line in text.splitlines() if line.startswith("0::"))


def _end(containment, job_id: int, pid: int) -> int:
    """Reap a job as LocalRunner does: leftovers first, then the zombie, then the group."""
    wait_until(lambda: process_state(pid) in ("Z", None), what=f"job {job_id}'s exit")
    left = containment.kill_leftovers(job_id)
    os.waitpid(pid, 0)
    containment.finished(job_id)
    return left


@pytest.fixture
def own() -> str:
    """This process's cgroup v2 group (the test is skipped where cgroups cannot be had)."""
    reason = _cgroup_unavailable()
    if reason:
        pytest.skip(f"no usable cgroup v2 with cgroup.kill here: {reason}")
    return _group_of(os.getpid())


def test_an_emptied_group_is_reused_and_one_with_leftovers_never_is(own, tmp_path):
    containment = ct.CgroupContainment.create("reuse" + secrets.token_hex(4))
    daemon_pid: list[int] = []
    try:
        # Job 1 ends alone. We wait for each job in the group it will have: job 2 was born in
        # the one we moved to after job 1's spawn, alone in it, and we moved on into job 1's
        # emptied group, where job 3 is born.
        one = _spawn_in(containment, 1, ["/bin/sleep", "60"])
        first = _group_of(one)
        assert _group_of(os.getpid()) not in (own, first), "parked in the next job's group"
        os.kill(one, signal.SIGKILL)
        assert _end(containment, 1, one) == 0
        two = _spawn_in(containment, 2, ["/bin/sleep", "60"])
        assert _group_of(two) != first
        assert containment.members({}, [2])[2] == {two}, "the job is alone in its group"
        assert _group_of(os.getpid()) == first, "job 1's emptied group is the next one"
        # Job 3 leaves a daemon behind: its group must be removed once the daemon is gone, never
        # handed on (a member still dying would land in the next job's group).
        pidfile = tmp_path / "pid"
        three = _spawn_in(
            containment, 3,
            ["/bin/sh", "-c", f"setsid /bin/sleep 600 & echo $! > {pidfile}; sleep 0.2"])
        third = _group_of(three)
        assert third == first
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the daemon")
        daemon_pid.append(int(pidfile.read_text()))
        assert _end(containment, 3, three) == 1
        wait_until(lambda: gone(daemon_pid[0]), what="the daemon's kill")
        four = _spawn_in(containment, 4, ["/bin/sleep", "60"])
        assert _group_of(four) != third
        assert _group_of(os.getpid()) != third, "a group that held leftovers is never entered"
        for job_id, pid in ((2, two), (4, four)):
            os.kill(pid, signal.SIGKILL)
            _end(containment, job_id, pid)
        third_dir = ct.find_cgroup2()[0] / third.lstrip("/")

        def removed() -> bool:
            containment.tidy()
            return not third_dir.exists()

        wait_until(removed, what="the leftover group's removal")
    finally:
        kill_quietly(daemon_pid)
        containment.close()
    assert not containment.run.exists()
    assert _group_of(os.getpid()) == own, "closing leaves the run's groups"


def test_a_failed_spawn_leaves_its_group_empty_for_the_next_job(own, tmp_path):
    containment = ct.CgroupContainment.create("fail" + secrets.token_hex(4))
    pids: list[int] = []
    try:
        with pytest.raises(FileNotFoundError):
            _spawn_in(containment, 1, [str(tmp_path / "no-such-binary")])
        waiting = _group_of(os.getpid())
        assert waiting != own
        pids.append(_spawn_in(containment, 2, ["/bin/sleep", "60"]))
        assert _group_of(pids[0]) == waiting
        assert containment.members({}, [2])[2] == {pids[0]}
    finally:
        kill_quietly(pids)
        containment.close()
    assert _group_of(os.getpid()) == own
    assert not containment.run.exists()


def test_two_runs_in_one_process_keep_their_jobs_in_their_own_groups(own):
    """A process waits for each run's next job in that job's group: a second run (a cluster
    node serving two) must neither nest its groups in the first's nor let the first's next job
    be born in one of its own."""
    first = ct.CgroupContainment.create("one" + secrets.token_hex(4))
    pids: list[int] = []
    try:
        pids.append(_spawn_in(first, 1, ["/bin/sleep", "60"]))
        second = ct.CgroupContainment.create("two" + secrets.token_hex(4))
        try:
            assert second.run.parent == first.run.parent, "side by side, never nested"
            pids.append(_spawn_in(second, 1, ["/bin/sleep", "60"]))
            pids.append(_spawn_in(first, 2, ["/bin/sleep", "60"]))
            pids.append(_spawn_in(second, 2, ["/bin/sleep", "60"]))
            for pid, containment in zip(pids, (first, second, first, second)):
                assert f"/{containment.run.name}/job-" in _group_of(pid)
        finally:
            kill_quietly(pids)
            second.close()
    finally:
        kill_quietly(pids)
        first.close()
        for pid in pids:
            os.waitpid(pid, 0)
    assert _group_of(os.getpid()) == own
    assert not first.run.exists() and not second.run.exists()


@pytest.mark.parametrize("error", [OSError(24, "Too many open files"), RuntimeError("a bug")])
async def test_a_guardian_that_cannot_start_leaves_no_run_group(own, tmp_path, monkeypatch, error):
    containment = ct.CgroupContainment.create("noguard" + secrets.token_hex(4))
    run = containment.run
    assert run.is_dir()

    def failing(loop):
        raise error

    monkeypatch.setattr(local_runner, "Guardian", failing)
    expected = OrchError if isinstance(error, OSError) else RuntimeError
    try:
        with pytest.raises(expected):
            local_runner.LocalRunner(tmp_path / "out", containment=containment)
        assert not run.exists(), "the run group went with the runner that could not start"
        assert _group_of(os.getpid()) == own
    finally:
        if run.exists():  # only when the runner failed to remove it: no group left behind
            containment.close()
