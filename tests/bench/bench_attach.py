"""What one attached client costs a run (prints, never asserts).

    python tests/bench/bench_attach.py [--jobs 2000] [--procs 2] [--rounds 3]

The dispatch benchmark's jobs (bench_dispatch.py: N `true` jobs P at a time), run by orch-tui
headless with no client, with one client that reads and decodes every event, and with one
client that connects, says hello and never reads again; xargs -P on the same jobs for the
floor. Rounds are interleaved (the machine may be shared: its load is printed at start and
end) and each figure is the median of the rounds.

A client is a process of its own (this script, `--client read|stall OUTPUT_DIR`), started right
after the run, that connects as soon as the socket exists: the run never waits for it, so the
table says how many jobs had already ended when it attached (the snapshot's) and how many it
saw end as events. A stalled client either gets every event (the socket's buffers and the
server's queue held them) or is dropped by the server (its queue full even after coalescing
samples); which one is told by whether its stream holds RunFinished, and the run's own line
about it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_dispatch import bench_xargs, make_items, orch_argv, timed

from orch_tui import __version__
from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.control import server
from orch_tui.core.control.client import ControlClient
from orch_tui.core.control.location import find_socket

VARIANTS = ("none", "read", "stall")
LABELS = {"none": "orch-tui, no client", "read": "+ reading client", "stall": "+ stalled client"}

# --- the client (a process of its own)


@dataclass
class Seen:
    """What a client got: counted from typed events, never from the run's words."""

    attached_after: int = 0  # jobs already finished in the snapshot
    events: int = 0
    ended: set[int] = field(default_factory=set)  # jobs seen finishing as an event
    finished: bool = False  # RunFinished arrived: the client was never dropped
    held_bytes: int = 0  # stall: bytes waiting in the client's socket when the run was over
    attach_seconds: float = 0.0  # from the client's start to its snapshot

    def snapshot(self, snap: Any) -> None:
        """The snapshot the client got on attaching."""
        self.attached_after = sum(1 for job in snap.jobs if job.state.finished)

    def event(self, event: ev.Event) -> None:
        """One event of the run."""
        self.events += 1
        if isinstance(event, ev.JobStateChanged) and event.state.finished:
            self.ended.add(event.job_id)
        elif isinstance(event, ev.RunFinished):
            self.finished = True

    def report(self) -> dict[str, Any]:
        """One JSON line for the bench."""
        return {
            "attached_after": self.attached_after,
            "events": self.events,
            "ended": len(self.ended),
            "finished": self.finished,
            "held_bytes": self.held_bytes,
            "attach_seconds": self.attach_seconds
        }


def wait_socket(output_dir: Path) -> Path:
    """The run's socket as soon as it exists (polling: the run must not wait for us)."""
    deadline = time.monotonic() + 60
    while (path := find_socket(output_dir)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"no control socket in {output_dir} after 60 s")
        time.sleep(0.002)
    return path


#: Between bind() and listen() a connection is refused; a dead run's socket may still be there.
NOT_YET = (ConnectionRefusedError, FileNotFoundError)


async def read_client(output_dir: Path, seen: Seen, start: float) -> None:
    """A screen's share of the work: every event decoded into its typed Event."""
    while True:
        client = ControlClient.connect(wait_socket(output_dir))
        try:
            await client.open()
            break
        except NOT_YET:
            await asyncio.sleep(0.002)
    try:
        seen.attach_seconds = time.perf_counter() - start
        seen.snapshot(client.snapshot)
        async for message in client.events():
            if message.get("kind") == "event":
                seen.event(wire.parse_event(message))
    finally:
        await client.close()


def stall_client(output_dir: Path, seen: Seen, start: float) -> None:
    """Hello, then nothing read until the bench says the run is over (stdin closes); then
    count what the socket held and what came through."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        while True:
            try:
                sock.connect(str(wait_socket(output_dir)))
                break
            except NOT_YET:
                time.sleep(0.002)
        sock.sendall(wire.encode(wire.hello(os.getpid(), __version__)))
        seen.attach_seconds = time.perf_counter() - start
        sys.stdin.buffer.read()
        seen.held_bytes = int.from_bytes(fcntl.ioctl(sock, termios.FIONREAD, bytes(4)),
                                         sys.byteorder)
        chunks = []
        try:
            while chunk := sock.recv(1 << 20):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    *lines, _cut = b"".join(chunks).split(b"\n")  # a dropped client's last line may be cut
    for line in lines:
        message = wire.decode(line, limit=None)
        if message.get("kind") == "snapshot":
            seen.snapshot(wire.parse_snapshot(message))
        elif message.get("kind") == "event":
            seen.event(wire.parse_event(message))


def client_main(mode: str, output_dir: Path) -> None:
    """`--client read|stall OUTPUT_DIR`: attach, count, print one JSON line."""
    seen, start = Seen(), time.perf_counter()
    if mode == "read":
        asyncio.run(read_client(output_dir, seen, start))
    else:
        stall_client(output_dir, seen, start)
    print(json.dumps(seen.report()))


# --- the bench


@dataclass
class Round:
    """One run's figures."""

    wall: float
    cpu: float  # the run and every job it started
    rss_mb: float  # the largest of the run's processes (the orchestrator)
    client: dict[str, Any] = field(default_factory=dict)
    client_cpu: float = 0.0
    said: list[str] = field(default_factory=list)  # the run's lines about control clients


def _reap(proc: subprocess.Popen[bytes]) -> os.struct_rusage:
    """Wait for `proc` and return its resource usage (with its waited-for children's)."""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage


def run_orch(workdir: Path, items: Path, procs: int, mode: str) -> Round:
    """One headless run; with a client process (mode read or stall) started right after it."""
    argv = orch_argv(workdir, items, procs)
    output = workdir / "run.out"
    with open(output, "wb") as out:
        start = time.perf_counter()
        # pylint: disable-next=consider-using-with  # reaped with wait4, for its rusage
        run = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        client = None
        if mode != "none":
            # pylint: disable-next=consider-using-with  # reaped with wait4, for its rusage
            client = subprocess.Popen(
                [sys.executable, __file__, "--client", mode,
                 str(workdir / "out")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE)
        usage = _reap(run)
        wall = time.perf_counter() - start
    result = Round(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
    if client is not None:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.close()
        line = client.stdout.read()
        cusage = _reap(client)
        result.client = json.loads(line)
        result.client_cpu = cusage.ru_utime + cusage.ru_stime
    result.said = [
        line for line in output.read_text(encoding="utf-8", errors="replace").splitlines()
        if "control client" in line
    ]
    return result


def _median(rounds: list[Round], get: Any) -> float:
    return statistics.median(get(r) for r in rounds)


def report(args: argparse.Namespace, results: dict[str, list[Round]], xargs: list[float],
           loads: tuple[Any, Any]) -> None:
    """The table: medians of the rounds."""
    print(f"{args.jobs} `true` jobs, {args.procs} at a time, {os.cpu_count()} cores, "
          f"medians of {args.rounds} rounds; load average {loads[0]} at start, {loads[1]} at end")
    print(f"server bounds: {server.MAX_QUEUED} queued messages a client (coalesced, then dropped "
          f"above {server.MAX_QUEUED * 3 // 4}), {server.WRITE_BUFFER // 1024} KiB transport "
          f"buffer, {server.FLUSH_TIMEOUT:.0f} s flush at the end")
    none, floor = _median(results["none"], lambda r: r.wall), statistics.median(xargs)
    print(f"{'':<22}{'wall s':>8}{'cpu s':>8}{'vs none':>9}{'vs xargs':>10}{'RSS MB':>8}"
          f"{'events':>8}{'ended':>7}{'before':>8}{'client cpu s':>14}")
    print(f"{'xargs -P':<22}{floor:>8.2f}{'':>8}{floor / none:>8.2f}x{1:>9.2f}x")
    for mode in VARIANTS:
        rounds = results[mode]
        wall = _median(rounds, lambda r: r.wall)
        row = (f"{LABELS[mode]:<22}{wall:>8.2f}{_median(rounds, lambda r: r.cpu):>8.2f}"
               f"{wall / none:>8.2f}x{wall / floor:>9.2f}x"
               f"{_median(rounds, lambda r: r.rss_mb):>8.1f}")
        if mode != "none":
            row += (f"{_median(rounds, lambda r: r.client['events']):>8.0f}"
                    f"{_median(rounds, lambda r: r.client['ended']):>7.0f}"
                    f"{_median(rounds, lambda r: r.client['attached_after']):>8.0f}"
                    f"{_median(rounds, lambda r: r.client_cpu):>14.2f}")
        print(row)
    print("events: events the client got; ended: jobs it saw finish as an event; before: jobs "
          "already finished in its snapshot (ended + before = all jobs when nothing was lost)")
    for mode in ("read", "stall"):
        for i, r in enumerate(results[mode], 1):
            fate = "got RunFinished" if r.client["finished"] else "DROPPED (no RunFinished)"
            print(f"{LABELS[mode]} round {i}: wall {r.wall:.2f} s, attached after "
                  f"{r.client['attach_seconds']:.2f} s, {fate}, {r.client['held_bytes']} bytes "
                  f"held in its socket at the end; the run said: {r.said or 'nothing'}")


def main() -> None:
    """Interleaved rounds of every variant, then the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", nargs=2, metavar=("MODE", "OUTPUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client[0], Path(args.client[1]))
        return
    start_load = os.getloadavg()
    results: dict[str, list[Round]] = {mode: [] for mode in VARIANTS}
    xargs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        items = make_items(workdir, args.jobs)
        for _ in range(args.rounds):
            xargs.append(timed("xargs -P", lambda: bench_xargs(items, args.procs))[1])
            for mode in VARIANTS:
                results[mode].append(run_orch(workdir, items, args.procs, mode))
    loads = (" ".join(f"{x:.2f}" for x in start_load), " ".join(f"{x:.2f}"
                                                                for x in os.getloadavg()))
    report(args, results, xargs, loads)


if __name__ == "__main__":
    main()
