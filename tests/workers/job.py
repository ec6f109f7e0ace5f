"""A configurable test job: the real process the integration tests schedule.

    python job.py [options] INPUT OUTPUT

It reads INPUT sequentially, burns CPU, holds memory, starts grandchildren and writes OUTPUT
progressively, as asked, so tests can check what the orchestrator measures and controls."""

import argparse
import os
import signal
import subprocess
import sys
import time


class _Daemon:
    """Stands in for a Popen in the pid list."""

    def __init__(self, pid: int) -> None:
        self.pid = pid


def start_daemon() -> int:
    """The classic double fork: the grandchild leaves our session and, its parent gone, our
    tree; it ignores SIGTERM like a stubborn daemon. Returns its pid."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(write_end, str(os.getpid()).encode())
            os.close(write_end)
            time.sleep(600)
        os._exit(0)  # pylint: disable=protected-access  # a forked child skips the parent's cleanup
    os.close(write_end)
    os.waitpid(middle, 0)
    with os.fdopen(read_end, "rb") as pipe:
        return int(pipe.read())


def grow(grown: int, args: argparse.Namespace, chunks: list) -> int:
    """Touch 50 ms worth of `--grow-mb-per-second`, up to `--grow-to-mb`: the growth follows
    the time the job ran, so a stopped job does not jump when it continues. Bytes added."""
    add = min(int(args.grow_mb_per_second * 1024 * 1024 * 0.05),
              args.grow_to_mb * 1024 * 1024 - grown)
    if add <= 0:
        return 0
    chunk = bytearray(add)
    for i in range(0, add, 4096):
        chunk[i] = 1
    chunks.append(chunk)
    return add


def main() -> int:
    """Do what the options say, in order: hold memory, spawn, read/burn, write, exit."""
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output", nargs="?")
    parser.add_argument("--seconds", type=float, default=0.0, help="total run time")
    parser.add_argument("--burn", action="store_true", help="busy-loop instead of sleeping")
    parser.add_argument("--hold-mb", type=int, default=0)
    parser.add_argument("--grow-mb-per-second",
                        type=float,
                        default=0.0,
                        help="grow the held memory while running (not while stopped)")
    parser.add_argument("--grow-to-mb", type=int, default=0)
    parser.add_argument("--grandchildren", type=int, default=0)
    parser.add_argument("--setsid-grandchild", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--daemon",
                        action="store_true",
                        help="double-fork a setsid daemon ignoring SIGTERM (sleeps 600 s)")
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--no-output", action="store_true")
    parser.add_argument("--ratio", type=float, default=1.0, help="output bytes / input bytes")
    parser.add_argument("--pidfile", help="append this process's pid and children pids here")
    parser.add_argument("--record", help="append the input's file name here (counts runs)")
    args = parser.parse_args()

    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    held = bytearray(args.hold_mb * 1024 * 1024)
    for i in range(0, len(held), 4096):
        held[i] = 1
    kids = []
    for _ in range(args.grandchildren):
        code = "import time; time.sleep(600)"
        if args.setsid_grandchild:
            code = "import os, time; os.setsid(); time.sleep(600)"
        kids.append(subprocess.Popen([sys.executable, "-c", code]))  # pylint: disable=consider-using-with
    if args.daemon:
        kids.append(_Daemon(start_daemon()))
    if args.record:
        with open(args.record, "a", encoding="utf-8") as handle:
            handle.write(os.path.basename(args.input) + "\n")
    if args.pidfile:
        with open(args.pidfile, "a", encoding="utf-8") as handle:
            handle.write(" ".join(str(p) for p in [os.getpid()] + [k.pid for k in kids]) + "\n")

    grown, grown_chunks = args.hold_mb * 1024 * 1024, []
    size = os.path.getsize(args.input)
    steps = 20
    chunk = max(1, size // steps)
    out = None
    if args.output and not args.no_output:
        out = open(args.output, "wb")  # pylint: disable=consider-using-with
    with open(args.input, "rb") as source:
        for _ in range(steps):
            data = source.read(chunk)
            if out is not None and data:
                out.write(data[:int(len(data) * args.ratio)] or b"")
                out.flush()
            deadline = time.monotonic() + args.seconds / steps
            while time.monotonic() < deadline:
                if not args.burn:
                    time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                grown += grow(grown, args, grown_chunks)
        rest = source.read()
        if out is not None and rest:
            out.write(rest[:int(len(rest) * args.ratio)])
    if out is not None:
        out.close()
    del held
    return args.exit


if __name__ == "__main__":
    sys.exit(main())
