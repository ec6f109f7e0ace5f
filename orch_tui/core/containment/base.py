"""What every containment shares: the runner's interface to it, and the few file and signal
helpers both kinds use."""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from orch_tui.core import procfs
from orch_tui.core.errors import OrchError

MODE_VARIABLE = "ORCH_TUI_CONTAINMENT"
#: The cgroup v2 mount to use instead of the one /proc/self/mountinfo names (tests, odd mounts).
ROOT_VARIABLE = "ORCH_TUI_CGROUP_ROOT"
MARKER_VARIABLE = "ORCH_TUI_JOB"
MODES = ("auto", "cgroup", "subreaper")

SETTLE_SECONDS = 2.0  # how long closing waits for killed processes to be gone


class ContainmentError(OrchError):
    """The containment ORCH_TUI_CONTAINMENT asks for cannot be had here (exit 2, one line)."""


def left_behind_note(count: int) -> str:
    """The line a job's log gets when its main process left `count` processes running."""
    noun = "process" if count == 1 else "processes"
    return f"orch-tui: left {count} {noun} behind; killed\n"


def append_note(path: Path, text: str) -> None:
    """Append to an existing job log; never create one, never follow a link planted there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, text.encode())
    except OSError:
        pass  # a full filesystem: the kill itself still happened
    finally:
        os.close(fd)


def read_all(path: str | Path) -> bytes:
    """A (small, /proc or cgroup) file's whole content, never through stdio buffering."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_to(path: str | Path, data: bytes) -> None:
    """One write to an existing control file (cgroup.procs, cgroup.kill)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def kill_pid(pid: int, sig: int) -> bool:
    """Signal `pid`; False when it is gone or not ours."""
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class Containment(abc.ABC):
    """What the runner asks of a containment, keyed by job id (one attempt at a time)."""

    mode = ""
    #: True when the guardian kills every job process through the run's containment alone (one
    #: cgroup.kill): it then signals no process group, so a job's release may reach it late.
    guardian_kills_all = False

    def __init__(self, run_token: str) -> None:
        self.run_token = run_token

    def marker(self, job_id: int) -> str:
        """The value of ORCH_TUI_JOB in this job's environment."""
        return f"{self.run_token}:{job_id}"

    @contextlib.contextmanager
    def spawning(self, job_id: int) -> Iterator[None]:
        """Wraps the job's posix_spawn: whatever makes the child contained from birth."""
        del job_id
        yield

    @abc.abstractmethod
    def started(self, job_id: int, pid: int) -> None:
        """The job's main process is `pid`."""

    def ignore_child(self, pid: int) -> None:
        """`pid` is a child of ours that belongs to no job (the guardian)."""

    @abc.abstractmethod
    def guardian_key(self, job_id: int) -> str:
        """How the guardian names this job's containment (no spaces)."""

    @abc.abstractmethod
    def guardian_lines(self) -> list[str]:
        """What the guardian must know about the run (sent once, at start)."""

    @abc.abstractmethod
    def members(self, table: Mapping[int, procfs.ProcStat],
                job_ids: Iterable[int]) -> dict[int, set[int]]:
        """Live pids of each job that its process tree in `table` may not show."""

    @abc.abstractmethod
    def kill(self, job_id: int) -> None:
        """SIGKILL everything of a running job at once (beyond what signalling its tree does)."""

    @abc.abstractmethod
    def kill_leftovers(self, job_id: int) -> int:
        """The main process exited (a zombie, not yet reaped): SIGKILL what it left running;
        return how many processes that was."""

    @abc.abstractmethod
    def finished(self, job_id: int) -> None:
        """The job's main process was reaped: forget the job, remove what held it."""

    def tidy(self, table: Mapping[int, procfs.ProcStat] | None = None) -> None:
        """Now and then: finish removals and reaps that had to wait."""

    def close(self) -> None:
        """The run is over (every job reaped): kill any straggler, undo what start did."""
