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


async def test_a_burst_of_starts_is_one_write_sent_without_a_release(monkeypatch):
    pids = [_sleeper() for _ in range(20)]
    guardian = gd.Guardian(asyncio.get_running_loop())
    writes = []
    real_write = os.write

    def counting(fd: int, data: bytes) -> int:
        if fd == guardian._write_end:  # pylint: disable=protected-access  # its pipe only
            writes.append(data)
        return real_write(fd, data)

    try:
        monkeypatch.setattr(os, "write", counting)
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
