"""The monitor's /proc primitives, built so one sampling sweep costs one pass over /proc.

Walking each job's tree with psutil (``children(recursive=True)``) rescans /proc once per job;
with dozens of jobs sampled every second that dominates the orchestrator's own CPU use. Instead
``scan_processes`` reads every ``/proc/PID/stat`` once, ``group_by_root`` assigns the processes
to jobs from that snapshot alone, and the meters below only keep small per-process state.

Processes vanish between listing /proc and reading their files, and /proc may deny access
(hidepid, other users): such processes are skipped, never raised about.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLK_TCK: int = os.sysconf("SC_CLK_TCK")
PAGE_SIZE: int = os.sysconf("SC_PAGE_SIZE")

_PROC = "/proc"


@dataclass(frozen=True, slots=True)
# A record: the /proc/PID/stat fields the scheduler reads.
# pylint: disable-next=too-many-instance-attributes
class ProcStat:
    """The fields of /proc/PID/stat the orchestrator uses (plus comm, for display)."""

    pid: int
    ppid: int
    pgrp: int
    session: int
    state: str
    ticks: int  # utime + stime, in CLK_TCK units
    rss_bytes: int
    starttime: int  # clock ticks after boot: with pid, identifies a process across pid reuse
    comm: str = ""

    @property
    def key(self) -> tuple[int, int]:
        """(pid, starttime): unique for the life of the machine, unlike the pid alone."""
        return (self.pid, self.starttime)


def parse_stat(data: bytes | str) -> ProcStat:
    """Parse one /proc/PID/stat line; raises ValueError when it is malformed.

    The comm field is in parentheses but may itself contain spaces and ')' (any process can
    rename itself), so the fields are split after the LAST ')'.
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    head, sep, tail = data.rpartition(")")
    pid_text, open_paren, comm = head.partition("(")
    if not sep or not open_paren:
        raise ValueError(f"malformed stat line: {data[:80]!r}")
    fields = tail.split()
    if len(fields) < 22:
        raise ValueError(f"stat line has {len(fields)} fields after comm, expected >= 22")
    # fields[0] is field 3 of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt
    # majflt cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss
    return ProcStat(pid=int(pid_text),
                    ppid=int(fields[1]),
                    pgrp=int(fields[2]),
                    session=int(fields[3]),
                    state=fields[0],
                    ticks=int(fields[11]) + int(fields[12]),
                    rss_bytes=int(fields[21]) * PAGE_SIZE,
                    starttime=int(fields[19]),
                    comm=comm)


def _read_small(path: str) -> bytes:
    """Read a small /proc file with raw syscalls: cheaper than open() for thousands of files."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_stat(pid: int) -> ProcStat | None:
    """The stat of one process, or None when it is gone, denied or unreadable."""
    try:
        return parse_stat(_read_small(f"{_PROC}/{pid}/stat"))
    except (OSError, ValueError):  # FileNotFoundError, ProcessLookupError, PermissionError...
        return None


def scan_processes() -> dict[int, ProcStat]:
    """Every visible process, pid -> stat, from one pass over /proc."""
    table: dict[int, ProcStat] = {}
    try:
        names = os.listdir(_PROC)
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        stat = read_stat(int(name))
        if stat is not None:
            table[stat.pid] = stat
    return table


def group_by_root(table: Mapping[int, ProcStat], roots: Iterable[int]) -> dict[int, list[ProcStat]]:
    """Assign the processes of one sweep to the job roots they belong to.

    A process belongs to root R when its session id is R (every job is started with setsid, so
    its pid is its session id) or when its ppid chain reaches R or another member of R's session
    (a grandchild that called setsid itself, even after R exited and it was reparented). The root
    comes first when alive; every root gets a key, possibly with an empty list. The maps are built
    once per call, so the cost is one pass over the table plus the size of the groups.
    """
    children: dict[int, list[int]] = {}
    by_session: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
        by_session.setdefault(stat.session, []).append(stat.pid)
    groups: dict[int, list[ProcStat]] = {}
    for root in roots:
        seen: set[int] = set()
        members: list[ProcStat] = []
        # The root is a seed even when gone: its surviving children still point at it.
        pending = sorted(by_session.get(root, ()), reverse=True)
        pending.append(root)  # pop() takes the root first, then the session in pid order
        while pending:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            found = table.get(pid)
            if found is not None:
                members.append(found)
            pending.extend(reversed(children.get(pid, ())))
        groups[root] = members
    return groups


class CpuMeter:
    """Cores used per process between sweeps, from utime+stime deltas.

    Keyed by (pid, starttime) so a recycled pid starts over instead of producing a negative or
    huge delta. ``update`` may be given a whole sweep or one job's processes at a time: entries
    are refreshed, never dropped for not being in that call; entries unseen for ``stale_after``
    seconds are dropped.
    """

    def __init__(self, *, clk_tck: int = CLK_TCK, stale_after: float = 30.0) -> None:
        self._clk_tck = clk_tck
        self._stale_after = stale_after
        self._last: dict[tuple[int, int], tuple[int, float]] = {}  # key -> (ticks, when)

    def __len__(self) -> int:
        return len(self._last)

    def update(self, procs: Iterable[ProcStat], now: float) -> dict[int, float]:
        """pid -> cores used since this process was last seen (0.0 the first time).

        ``now`` is a monotonic clock reading (time.monotonic()) taken at the sweep.
        """
        cores: dict[int, float] = {}
        for stat in procs:
            key = (stat.pid, stat.starttime)
            previous = self._last.get(key)
            if previous is None or now <= previous[1]:
                cores[stat.pid] = 0.0
            else:
                delta = max(0, stat.ticks - previous[0])
                cores[stat.pid] = delta / self._clk_tck / (now - previous[1])
            self._last[key] = (stat.ticks, now)
        horizon = now - self._stale_after
        stale = [key for key, (_, when) in self._last.items() if when < horizon]
        for key in stale:
            del self._last[key]
        return cores


class ReadOffsetTracker:
    """How far a process tree has read a given file: the ``pos:`` of its fd in /proc/PID/fdinfo.

    Finding the fd means a readlink per open fd; the answer is cached per pid so later sweeps
    cost one readlink (to re-verify that the fd still names the file) and one fdinfo read.
    """

    def __init__(self) -> None:
        self._fds: dict[int, tuple[str, int]] = {}  # pid -> (resolved target, fd)
        self._resolved: dict[str, str] = {}

    def cached_fd(self, pid: int) -> int | None:
        """The fd remembered for ``pid``, if any (for diagnostics and tests)."""
        entry = self._fds.get(pid)
        return entry[1] if entry is not None else None

    def offset(self, pids: Iterable[int], target: Path) -> int | None:
        """The largest read position among the pids' fds open on ``target``; None if none is."""
        key = os.fspath(target)
        real = self._resolved.get(key)
        if real is None:
            real = self._resolved[key] = os.path.realpath(key)
        best: int | None = None
        for pid in pids:
            pos = self._cached_pos(pid, real)
            if pos is None:
                pos = self._search(pid, real)
            if pos is not None and (best is None or pos > best):
                best = pos
        return best

    def forget(self, pid: int) -> None:
        """Drop the cached fd of a finished process."""
        self._fds.pop(pid, None)

    def _cached_pos(self, pid: int, real: str) -> int | None:
        entry = self._fds.get(pid)
        if entry is None or entry[0] != real:
            return None
        pos = _fd_pos_if(pid, entry[1], real)
        if pos is None:
            del self._fds[pid]  # closed, or the number now names another file
        return pos

    def _search(self, pid: int, real: str) -> int | None:
        fd_dir = f"{_PROC}/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return None
        best_pos: int | None = None
        best_fd = -1
        for name in names:
            pos = _fd_pos_if(pid, int(name), real)
            if pos is not None and (best_pos is None or pos > best_pos):
                best_pos, best_fd = pos, int(name)
        if best_pos is not None:
            self._fds[pid] = (real, best_fd)
        return best_pos


def _fd_pos_if(pid: int, fd: int, real: str) -> int | None:
    """The position of ``fd`` of ``pid`` if it is open on ``real``, else None."""
    try:
        if os.readlink(f"{_PROC}/{pid}/fd/{fd}") != real:
            return None
        info = _read_small(f"{_PROC}/{pid}/fdinfo/{fd}")
    except OSError:
        return None
    for line in info.splitlines():
        if line.startswith(b"pos:"):
            try:
                return int(line[4:])
            except ValueError:
                return None
    return None
