"""The /proc primitives against real processes (no mocks), plus pure checks on synthetic stats.

Nothing here is timed: the cost of a sweep is measured out of tree, never asserted, because a
loaded CI machine would make any speed assertion flaky. Every child started here is stopped and
reaped in a fixture's teardown; children that own grandchildren reap them before exiting, so no
zombie is left for PID 1 (which, in containers, may not reap).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_tui.core.procfs import (CLK_TCK, PAGE_SIZE, CpuMeter, ProcStat, ReadOffsetTracker,
                                  group_by_root, parse_stat, read_stat, scan_processes)

MB = 1024 * 1024


class Children:
    """Starts `python -c` children in their own sessions and guarantees they are reaped."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.extra: list[ProcStat] = []  # grandchildren to kill if their parent cannot reap them

    def start(self, code: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a child; it talks over stdout lines and exits cleanly when stdin closes."""
        # The child must outlive this call; stop_all() is the matching "with" exit.
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            start_new_session=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def read_line(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> str:
        """One line from the child, failing instead of hanging if it never comes."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            assert remaining > 0, "child did not answer in time"
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                assert chunk, f"child exited early with code {proc.wait()}"
                buf += chunk
        return buf.decode().strip()

    @staticmethod
    def send(proc: subprocess.Popen[bytes], line: str) -> None:
        """Tell a waiting child to take its next step."""
        assert proc.stdin is not None
        proc.stdin.write(line.encode() + b"\n")

    def stop_all(self) -> None:
        """Close stdin (children exit and reap their own), then SIGKILL whatever is left."""
        for proc in self.procs:
            if proc.stdin is not None and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        graceful = True
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                graceful = False
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if not graceful:
            for stat in self.extra:
                current = read_stat(stat.pid)
                if current is not None and current.starttime == stat.starttime:
                    os.kill(stat.pid, signal.SIGKILL)


@pytest.fixture(name="children")
def children_fixture() -> Iterator[Children]:
    """A Children registry whose processes are all gone after the test."""
    registry = Children()
    try:
        yield registry
    finally:
        registry.stop_all()


BURN = """
import sys, threading
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("ready", flush=True)
while not stop.is_set():
    pass
"""

ALLOCATE = """
import sys
block = b"\\x01" * (200 * 1024 * 1024)  # bytes * n writes every page: all of it is resident
print("ready", flush=True)
sys.stdin.read()
"""

TREE = """
import subprocess, sys
WAIT = "import os, sys; print(os.getpid(), flush=True); sys.stdin.read()"
SETSID = "import os, sys; os.setsid(); print(os.getpid(), flush=True); sys.stdin.read()"
kids = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE) for code in (WAIT, SETSID)]
pids = [kid.stdout.readline().decode().strip() for kid in kids]  # both ready, setsid done
print(*pids, flush=True)
sys.stdin.read()
for kid in kids:
    kid.stdin.close()
    kid.wait()
"""

READER = """
import os, sys
target = open(sys.argv[1], "rb", buffering=0)
def read(n):
    while n:
        n -= len(target.read(min(n, 65536)))
read(5 * 1024 * 1024)
print("ready", flush=True)
sys.stdin.readline()
read(2 * 1024 * 1024)
print("ready", flush=True)
sys.stdin.readline()
os.dup2(os.open(sys.argv[2], os.O_RDONLY), target.fileno())  # same fd number, other file
print("ready", flush=True)
sys.stdin.read()
"""

RENAME = """
import sys
with open("/proc/self/comm", "w") as comm:
    comm.write("x) (y z")
print("ready", flush=True)
sys.stdin.read()
"""


def _stat_line(pid: int, comm: str, ppid: int = 1, utime: int = 7, stime: int = 5) -> str:
    """A stat line in the kernel's layout: fields 3..24 then the rest."""
    fields = ["S", ppid, 40, 41, 0, -1, 4194304, 10, 0, 0, 0, utime, stime, 0, 0, 20, 0, 1, 0]
    fields += [12345, 1000000, 250, 18446744073709551615]
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n"


def _stat(pid: int, ppid: int, session: int, ticks: int = 0, starttime: int = 1) -> ProcStat:
    return ProcStat(pid=pid,
                    ppid=ppid,
                    pgrp=session,
                    session=session,
                    state="S",
                    ticks=ticks,
                    rss_bytes=0,
                    starttime=starttime)


# --- parsing ------------------------------------------------------------------------------


def test_parse_stat_fields() -> None:
    """Fields land where proc(5) puts them; rss is pages times PAGE_SIZE."""
    stat = parse_stat(_stat_line(321, "ffmpeg", ppid=9).encode())
    assert stat == ProcStat(pid=321,
                            ppid=9,
                            pgrp=40,
                            session=41,
                            state="S",
                            ticks=12,
                            rss_bytes=250 * PAGE_SIZE,
                            starttime=12345,
                            comm="ffmpeg")
    assert stat.key == (321, 12345)


@pytest.mark.parametrize("comm", ["a b) c", "x) (y z", ") S 1 2 3", "((", "", "a\nb"])
def test_parse_stat_hostile_comm(comm: str) -> None:
    """Any process may rename itself; splitting at the last ')' survives it."""
    stat = parse_stat(_stat_line(55, comm, ppid=3))
    assert (stat.pid, stat.ppid, stat.comm, stat.ticks, stat.starttime) == (55, 3, comm, 12, 12345)


@pytest.mark.parametrize("line", ["", "12 (x S 1 2 3", "12 x) S 1 2", "12 (x) S 1 2 3 4"])
def test_parse_stat_malformed(line: str) -> None:
    """Garbage raises ValueError (read_stat turns it into None)."""
    with pytest.raises(ValueError):
        parse_stat(line)


def test_constants_come_from_sysconf() -> None:
    """Ticks and pages are machine-specific; never hard-code 100 or 4096."""
    assert CLK_TCK == os.sysconf("SC_CLK_TCK") > 0
    assert PAGE_SIZE == os.sysconf("SC_PAGE_SIZE") > 0


# --- real processes -----------------------------------------------------------------------


def test_read_stat_of_self_and_scan() -> None:
    """The sweep sees us, with the same identity as a direct read."""
    mine = read_stat(os.getpid())
    assert mine is not None
    assert (mine.pid, mine.ppid, mine.state) == (os.getpid(), os.getppid(), "R")
    assert mine.rss_bytes > 0 and mine.starttime > 0
    table = scan_processes()
    assert table[os.getpid()].starttime == mine.starttime
    assert all(pid == stat.pid for pid, stat in table.items())


def test_comm_with_spaces_and_parens(children: Children) -> None:
    """A real process named 'x) (y z' parses with correct ids."""
    proc = children.start(RENAME)
    assert children.read_line(proc) == "ready"
    stat = read_stat(proc.pid)
    assert stat is not None
    assert stat.comm == "x) (y z"
    assert (stat.pid, stat.ppid, stat.pgrp, stat.session) == (proc.pid, os.getpid(), proc.pid,
                                                              proc.pid)
    assert stat.state in "RS" and stat.rss_bytes > 0
    assert scan_processes()[proc.pid].comm == "x) (y z"


def test_vanished_and_impossible_pids_give_none() -> None:
    """Gone or impossible pids are skipped silently, never raised."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()
    assert read_stat(gone.pid) is None
    assert read_stat(0) is None
    assert read_stat(-1) is None
    assert read_stat(10**9) is None


def test_zombie_is_reported_until_reaped() -> None:
    """An exited, unreaped job shows as Z with no memory, then vanishes."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as proc:  # exit reaps it
        deadline = time.monotonic() + 20
        stat = read_stat(proc.pid)
        while stat is not None and stat.state != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
            stat = read_stat(proc.pid)
        assert stat is not None and stat.state == "Z" and stat.rss_bytes == 0
    assert read_stat(proc.pid) is None


def test_busy_child_measures_about_one_core(children: Children) -> None:
    """A child spinning on one core measures about 1.0 core."""
    proc = children.start(BURN)
    assert children.read_line(proc) == "ready"
    meter = CpuMeter()
    first = meter.update(group_by_root(scan_processes(), [proc.pid])[proc.pid], time.monotonic())
    assert first == {proc.pid: 0.0}
    seen: list[float] = []

    def one_core_measured() -> bool:
        # On a loaded machine the child gets less than a core for a while: the meter must read
        # about one core over some window in which the child really had one (each read starts
        # the next window), not over a fixed pause that the load decides.
        group = group_by_root(scan_processes(), [proc.pid])[proc.pid]
        cores = meter.update(group, time.monotonic())[proc.pid]
        seen.append(round(cores, 2))
        return 0.6 <= cores <= 1.3

    deadline = time.monotonic() + 30
    time.sleep(0.5)  # a window long enough for whole clock ticks
    while not one_core_measured():
        assert time.monotonic() < deadline, f"never about one core: {seen}"
        time.sleep(0.5)


def test_allocating_child_shows_its_rss(children: Children) -> None:
    """200 MB touched by the child shows in its group's RSS."""
    proc = children.start(ALLOCATE)
    assert children.read_line(proc) == "ready"
    group = group_by_root(scan_processes(), [proc.pid])[proc.pid]
    assert [stat.pid for stat in group] == [proc.pid]
    assert sum(stat.rss_bytes for stat in group) >= 180 * MB


def test_tree_with_grandchildren_is_grouped_under_its_root(children: Children) -> None:
    """Grandchildren, including one that left the session with setsid, count for the job."""
    proc = children.start(TREE)
    other = children.start(ALLOCATE.replace("200 *", "1 *"))
    waiting, setsid = (int(pid) for pid in children.read_line(proc).split())
    assert children.read_line(other) == "ready"
    table = scan_processes()
    children.extra += [table[waiting], table[setsid]]
    assert table[waiting].session == proc.pid
    assert table[setsid].session == setsid != proc.pid  # only the ppid chain links it
    groups = group_by_root(table, [proc.pid, other.pid])
    assert groups[proc.pid][0].pid == proc.pid
    assert {stat.pid for stat in groups[proc.pid]} == {proc.pid, waiting, setsid}
    assert [stat.pid for stat in groups[other.pid]] == [other.pid]


def test_read_offset_follows_the_file(children: Children, tmp_path: Path) -> None:
    """The offset tracks reads, resolves symlinks, keeps the max and re-verifies its cached fd."""
    target = tmp_path / "input.bin"
    target.write_bytes(os.urandom(10 * MB))
    elsewhere = tmp_path / "other.bin"
    elsewhere.write_bytes(b"x")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    proc = children.start(READER, str(target), str(elsewhere))
    tracker = ReadOffsetTracker()

    assert children.read_line(proc) == "ready"
    assert tracker.offset([proc.pid], target) == 5 * MB
    fd = tracker.cached_fd(proc.pid)
    assert fd is not None and fd > 2
    assert ReadOffsetTracker().offset([proc.pid], link) == 5 * MB  # symlinks resolved
    assert tracker.offset([os.getpid()], target) is None  # we do not have it open (yet)

    children.send(proc, "next")
    assert children.read_line(proc) == "ready"
    assert tracker.offset([os.getpid(), proc.pid], target) == 7 * MB
    assert tracker.cached_fd(proc.pid) == fd

    with open(target, "rb") as mine:  # the tree's answer is the furthest reader
        mine.seek(9 * MB)
        assert tracker.offset([proc.pid, os.getpid()], target) == 9 * MB

    children.send(proc, "next")
    assert children.read_line(proc) == "ready"
    assert tracker.offset([proc.pid], target) is None  # cached fd re-verified: other file now
    assert tracker.cached_fd(proc.pid) is None
    assert tracker.offset([proc.pid], elsewhere) == 0
    tracker.forget(proc.pid)
    assert tracker.cached_fd(proc.pid) is None


def test_read_offset_of_gone_process_is_none(tmp_path: Path) -> None:
    """A finished process has no offset, and no error."""
    target = tmp_path / "f"
    target.write_bytes(b"data")
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()
    assert ReadOffsetTracker().offset([gone.pid], target) is None
    assert ReadOffsetTracker().offset([], target) is None


# --- grouping and metering on synthetic sweeps -------------------------------------------


def test_group_by_root_session_and_ppid_chain() -> None:
    """Session and ppid links, orphans of a dead root and loops, on a synthetic sweep."""
    table = {
        stat.pid: stat
        for stat in [
            _stat(1, 0, 1),
            _stat(50, 1, 50),  # the orchestrator
            _stat(100, 50, 100),  # job root
            _stat(101, 100, 100),
            _stat(102, 101, 102),  # called setsid: linked by ppid only
            _stat(103, 102, 102),  # its child
            _stat(301, 1, 300),  # root 300 exited: orphan of its session, reparented to init
            _stat(302, 301, 302),  # setsid child of that orphan
            _stat(500, 500, 500),  # a self-parented oddity must not loop
        ]
    }
    groups = group_by_root(table, [100, 300, 400, 500])
    assert [stat.pid for stat in groups[100]] == [100, 101, 102, 103]
    assert [stat.pid for stat in groups[300]] == [301, 302]
    assert groups[400] == []
    assert [stat.pid for stat in groups[500]] == [500]
    assert not group_by_root(table, [])


def test_cpu_meter_deltas_and_recycled_pids() -> None:
    """Cores are tick deltas over wall time; a recycled pid starts over at 0."""
    meter = CpuMeter(clk_tck=100)
    assert meter.update([_stat(7, 1, 7, ticks=1000, starttime=5)], 10.0) == {7: 0.0}
    assert meter.update([_stat(7, 1, 7, ticks=1150, starttime=5)], 11.0) == {7: 1.5}
    # Same pid, new process (later starttime, fewer ticks): starts over, no negative burst.
    assert meter.update([_stat(7, 1, 7, ticks=3, starttime=900)], 12.0) == {7: 0.0}
    assert meter.update([_stat(7, 1, 7, ticks=53, starttime=900)], 12.0) == {7: 0.0}  # no time
    assert meter.update([_stat(7, 1, 7, ticks=53, starttime=900)], 12.5) == {7: 0.0}


def test_cpu_meter_forgets_gone_processes() -> None:
    """Per-call updates keep other jobs' entries; gone ones are dropped."""
    meter = CpuMeter(clk_tck=100, stale_after=5.0)
    meter.update([_stat(1, 0, 1, starttime=1), _stat(2, 0, 2, starttime=1)], 0.0)
    meter.update([_stat(3, 0, 3, starttime=1)], 1.0)  # one job at a time: nothing dropped yet
    assert len(meter) == 3
    meter.update([_stat(3, 0, 3, starttime=1)], 10.0)  # 1 and 2 unseen for 10 s > stale_after
    assert len(meter) == 1
