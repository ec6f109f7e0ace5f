"""The guardian, alone: what it is told reaches it, batched, and it acts on all of it when the
orchestrator's end of the pipe closes without a goodbye (what `kill -9` of the orchestrator
does). Real processes: each job is a `sleep` in a session of its own, so its pgid is its pid."""

# pylint: disable=missing-function-docstring  # test names say what each test checks
from __future__ import annotations

import asyncio
import os

from orch_tui.core import guardian as gd
from tests.helpers import alive, eventually, kill_quietly
from tests.tmux import wait_until


def _sleeper() -> int:
    return os.posix_spawn("/bin/sleep", ["/bin/sleep", "600"], os.environ, setsid=True)


def _die(guardian: gd.Guardian) -> None:
    """The orchestrator dies: its write end closes with no `exit` line."""
    os.close(guardian._write_end)  # pylint: disable=protected-access  # simulating a death


def _reap(pids: list[int]) -> None:
    kill_quietly(pids)
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _pipe_writes(guardian: gd.Guardian, monkeypatch) -> list[bytes]:
    """Every write to the guardian's pipe from now on, as it happens."""
    writes: list[bytes] = []
    real_write = os.write

    def counting(fd: int, data: bytes) -> int:
        if fd == guardian._write_end:  # pylint: disable=protected-access  # its pipe only
            writes.append(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting)
    return writes


async def test_a_burst_of_starts_is_one_write_sent_without_a_release(monkeypatch):
    pids = [_sleeper() for _ in range(20)]
    guardian = gd.Guardian(asyncio.get_running_loop())
    try:
        writes = _pipe_writes(guardian, monkeypatch)
        for pid in pids:
            guardian.watch(pid)
        assert not writes, "registrations wait to share a write"
        await eventually(lambda: writes, "the registrations' write")
        assert len(writes) == 1 and writes[0].count(b"\n") == len(pids)
        _die(guardian)
        wait_until(lambda: all(not alive(pid) for pid in pids), what="the guardian's kill")
        os.waitpid(guardian.pid, 0)
    finally:
        _reap(pids)


async def test_a_release_goes_at_once_with_the_starts_waiting_and_spares_its_group():
    kept, released = _sleeper(), _sleeper()
    guardian = gd.Guardian(asyncio.get_running_loop())
    try:
        guardian.watch(kept)
        guardian.watch(released)
        guardian.release(released)  # written now, before the caller would reap it
        _die(guardian)  # no loop turn has passed: the batch timer never fired
        wait_until(lambda: not alive(kept), what="the registered job's kill")
        os.waitpid(guardian.pid, 0)  # the guardian acted on everything and ended
        assert alive(released), "a released group is never killed"
    finally:
        _reap([kept, released])


def test_without_a_loop_every_line_is_written_at_once():
    pid = _sleeper()
    guardian = gd.Guardian()
    try:
        guardian.watch(pid)
        _die(guardian)
        wait_until(lambda: not alive(pid), what="the guardian's kill")
        os.waitpid(guardian.pid, 0)
    finally:
        _reap([pid])


def test_a_clean_close_kills_nothing():
    pid = _sleeper()
    guardian = gd.Guardian()
    try:
        guardian.watch(pid)
        guardian.close()  # `exit`: the orchestrator ended its jobs itself
        assert alive(pid)
    finally:
        _reap([pid])


def _fake_run_group(tmp_path, groups: dict[str, str]):
    """A run group as the guardian sees one: a folder with cgroup.kill and, per job group, its
    cgroup.procs (plain files: the guardian only reads and writes them)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "cgroup.kill").write_text("", encoding="ascii")
    for key, members in groups.items():
        (run / key).mkdir()
        (run / key / "cgroup.procs").write_text(members, encoding="ascii")
    return run


async def test_in_cgroup_mode_a_release_waits_for_the_batch_and_no_group_is_signalled(
        tmp_path, monkeypatch):
    run = _fake_run_group(tmp_path, {"job-1": ""})
    pid = _sleeper()  # registered, yet in no group of the run: only cgroup.kill could reach it
    guardian = gd.Guardian(asyncio.get_running_loop())
    try:
        guardian.contain(f"c{bytes(run).hex()}")
        writes = _pipe_writes(guardian, monkeypatch)
        guardian.watch(pid, "job-1")
        guardian.release(pid + 1, now=False)  # a job that ended: it waits for the batch
        assert not writes, "without group signals a release shares the next write"
        await eventually(lambda: writes, "the batch's write")
        assert len(writes) == 1 and writes[0] == f"+{pid} job-1 \n-{pid + 1}\n".encode()
        _die(guardian)
        os.waitpid(guardian.pid, 0)
        assert (run / "cgroup.kill").read_text(encoding="ascii") == "1"
        assert alive(pid), "in cgroup mode the guardian signals no process group"
    finally:
        _reap([pid])


def test_in_cgroup_mode_the_note_goes_to_the_job_its_group_hosts_now(tmp_path):
    # job-1 was reused: its first job ended, its release not yet sent; the second runs there now
    # with one more process. job-2's leader is gone: what is left there is not blamed on it (its
    # group may host a job not yet registered). Ids above pid_max: a guardian that signalled
    # groups could not hit a real one.
    with open("/proc/sys/kernel/pid_max", encoding="ascii") as handle:
        first, second, other, gone, left = range(int(handle.read()) + 1, int(1e9))[:5]
    run = _fake_run_group(tmp_path, {"job-1": f"{second}\n{other}\n", "job-2": f"{left}\n"})
    logs = {name: tmp_path / f"{name}.log" for name in ("first", "second", "gone")}
    for log in logs.values():
        log.write_text("", encoding="utf-8")
    guardian = gd.Guardian()
    guardian.contain(f"c{bytes(run).hex()}")
    guardian.watch(first, "job-1", logs["first"])
    guardian.watch(second, "job-1", logs["second"])
    guardian.watch(gone, "job-2", logs["gone"])
    _die(guardian)
    os.waitpid(guardian.pid, 0)
    note = "orch-tui: orchestrator gone; killed the job and 1 other process\n"
    assert logs["second"].read_text(encoding="utf-8") == note
    assert logs["first"].read_text(encoding="utf-8") == ""
    assert logs["gone"].read_text(encoding="utf-8") == ""


def test_in_cgroup_mode_a_failed_cgroup_kill_still_kills_every_member(tmp_path):
    pid = _sleeper()
    run = _fake_run_group(tmp_path, {"job-1": f"{pid}\n"})
    (run / "cgroup.kill").unlink()
    (run / "cgroup.kill").mkdir()  # the write fails: the members listed are killed one by one
    guardian = gd.Guardian()
    try:
        guardian.contain(f"c{bytes(run).hex()}")
        _die(guardian)
        wait_until(lambda: not alive(pid), what="the fallback's kill")
        os.waitpid(guardian.pid, 0)
    finally:
        _reap([pid])
