#!/usr/bin/env python3
"""A stand-in transcoder that looks like ffmpeg to a process monitor.

The demo needs a command that behaves like a real encode without ffmpeg or any media. It reads
its input sequentially (so the read offset in /proc/PID/fdinfo advances), keeps CPU cores busy,
holds memory, grows its output file progressively and prints ffmpeg-style progress lines to
stderr. Inputs whose name contains the fail pattern are rejected the way ffmpeg rejects a broken
file.

Stdlib only, no orch_tui imports: the demo workspace runs a copy of this file as a plain script.
It never reads stdin and leaves SIGTERM at its default, so SIGTERM ends it at once; its
CPU-burning children (``--threads``) leave as soon as their parent is gone.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

MIB = 1024 * 1024
PAGE = 4096
FPS = 30
PROGRESS_INTERVAL = 0.5  # seconds between progress lines, like ffmpeg's stats period
BURN_BLOCK = b"\x5a" * 16384  # hashed repeatedly to keep a core busy in short, checkable slices
BURN_SLICE = 0.05  # seconds: how often a burner checks its deadline, parent and stop flag
# A fixed byte permutation: the "encoded" output is a transformed copy of the input bytes.
TRANSFORM = bytes((b * 167 + 13) % 256 for b in range(256))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the ffmpeg-free command line: options, then INPUT and OUTPUT."""
    parser = argparse.ArgumentParser(
        prog="worker.py",
        description="Stand-in transcoder for the orch-tui demo: reads INPUT sequentially, burns "
        "CPU, holds memory and writes OUTPUT progressively, printing ffmpeg-like progress.")
    parser.add_argument("input", metavar="INPUT", help="file to read")
    parser.add_argument("output", metavar="OUTPUT", help="file to write (overwritten)")
    parser.add_argument("--seconds",
                        type=float,
                        default=4.0,
                        help="target wall-clock duration (default 4)")
    parser.add_argument("--memory-mb",
                        type=float,
                        default=40.0,
                        help="memory to hold while working, MiB (default 40)")
    parser.add_argument("--output-ratio",
                        type=float,
                        default=0.5,
                        help="output bytes / input bytes (default 0.5)")
    parser.add_argument("--fail-pattern",
                        default="corrupt",
                        help="fail like ffmpeg on a broken file when the input name contains this "
                        "text (default 'corrupt'; empty disables)")
    parser.add_argument("--threads",
                        type=int,
                        default=1,
                        help="cores to keep busy; extra cores are child processes (default 1)")
    parser.add_argument("--cpu",
                        type=float,
                        default=1.0,
                        help="share of each thread's core kept busy, 0..1 (default 1)")
    args = parser.parse_args(argv)
    if args.seconds < 0:
        parser.error("--seconds must be >= 0")
    if args.memory_mb < 0:
        parser.error("--memory-mb must be >= 0")
    if args.output_ratio < 0:
        parser.error("--output-ratio must be >= 0")
    if not 0 <= args.cpu <= 1:
        parser.error("--cpu must be between 0 and 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def say(line: str) -> None:
    """Write one line to stderr at once, so a log tail sees it while the job runs."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def clock(seconds: float) -> str:
    """Format media time the way ffmpeg does: HH:MM:SS.cc."""
    centis = int(round(max(seconds, 0.0) * 100))
    hours, rest = divmod(centis, 360000)
    minutes, rest = divmod(rest, 6000)
    return f"{hours:02d}:{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


def progress_line(media_seconds: float, elapsed: float, written: int) -> str:
    """One ffmpeg stats line; media time runs at 1.0x of --seconds when on schedule."""
    frame = int(media_seconds * FPS)
    fps = frame / elapsed if elapsed > 0 else 0.0
    bitrate = written * 8 / 1000 / media_seconds if media_seconds > 0 else 0.0
    speed = media_seconds / elapsed if elapsed > 0 else 0.0
    return (f"frame={frame:5d} fps={fps:4.0f} q=28.0 size={written // 1024:8d}kB "
            f"time={clock(media_seconds)} bitrate={bitrate:7.1f}kbits/s speed={speed:4.2f}x")


def burn_until(deadline: float, cpu: float = 1.0) -> None:
    """Keep this core `cpu` busy until the deadline (hashing, like an encoder's arithmetic).

    Below 1.0 the time is cut into short slices, busy for that share of each and asleep for the
    rest, so a sampler sees a steady fraction of a core rather than bursts.
    """
    digest = b""
    while (now := time.monotonic()) < deadline:
        slice_end = min(deadline, now + BURN_SLICE)
        busy_end = min(slice_end, now + BURN_SLICE * cpu)
        while time.monotonic() < busy_end:
            digest = hashlib.sha256(digest + BURN_BLOCK).digest()
        rest = slice_end - time.monotonic()
        if rest > 0 and cpu < 1.0:
            time.sleep(rest)


def burner(stop: Event, parent: int, cpu: float) -> None:
    """Child process body: burn one core until told to stop or orphaned by a killed parent."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends a child quietly, no traceback
    while not stop.is_set() and os.getppid() == parent:
        burn_until(time.monotonic() + BURN_SLICE, cpu)


def start_burners(count: int, cpu: float) -> tuple[Event, list]:
    """Start `count` CPU-burning children before any file is open or memory is held.

    Forked early so the children hold neither the input's descriptor (which would confuse read
    progress) nor copies of the big buffer (which would double-count RSS across the tree).
    """
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    children = []
    for _ in range(count):
        child = context.Process(target=burner, args=(stop, os.getpid(), cpu), daemon=True)
        child.start()
        children.append(child)
    return stop, children


def stop_burners(stop: Event, children: list) -> None:
    """Tell the children to finish and wait for them, so exit means the whole tree is done."""
    stop.set()
    for child in children:
        child.join(timeout=2)
        if child.is_alive():
            child.terminate()
            child.join()


def hold_memory(megabytes: float) -> bytearray:
    """Allocate and touch every page, so the memory really counts in RSS."""
    size = int(megabytes * MIB)
    buffer = bytearray(size)
    if size:
        pages = range(0, size, PAGE)
        buffer[::PAGE] = b"\x01" * len(pages)
    return buffer


def chunk_size_for(size: int) -> int:
    """About 40 reads per file, page-aligned, so the read offset advances in visible steps."""
    return min(max(size // 40 // PAGE * PAGE, PAGE), MIB)


def stretch(data: bytes, length: int) -> bytes:
    """Exactly `length` bytes derived from `data` (cut short or repeated)."""
    if length <= len(data):
        return data[:length]
    return (data * (length // len(data) + 1))[:length]


def fail_like_ffmpeg(path: str) -> int:
    """Read a little of a "broken" input, then report it the way ffmpeg does."""
    with open(path, "rb") as source:
        source.read(64 * 1024)
    time.sleep(0.2)
    say(f"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x{id(path):x}] moov atom not found")
    say(f"{path}: Invalid data found when processing input")
    return 1


def transcode(args: argparse.Namespace, source: BinaryIO, target: BinaryIO, size: int) -> int:
    """Read, burn, write on schedule; returns the number of bytes written."""
    chunk = chunk_size_for(size)
    start = time.monotonic()
    done = written = 0
    last_report = start
    while True:
        data = source.read(chunk)
        if not data:
            break
        done += len(data)
        fraction = min(done / size, 1.0)
        want = int(round(done * args.output_ratio)) - written
        if want > 0:
            target.write(stretch(data.translate(TRANSFORM), want))
            target.flush()  # make the growth visible to stat() while the job runs
            written += want
        burn_until(start + args.seconds * fraction, args.cpu)
        now = time.monotonic()
        if now - last_report >= PROGRESS_INTERVAL:
            say(progress_line(args.seconds * fraction, now - start, written))
            last_report = now
    say(progress_line(args.seconds, time.monotonic() - start, written))
    return written


def usable_size(args: argparse.Namespace) -> int | None:
    """The input's size; None once the input's failure is said in ffmpeg's words."""
    try:
        if args.fail_pattern and args.fail_pattern in os.path.basename(args.input):
            fail_like_ffmpeg(args.input)
            return None
        size = os.path.getsize(args.input)
    except OSError as error:
        say(f"{args.input}: {error.strerror or error}")
        return None
    if size == 0:
        say(f"{args.input}: Invalid data found when processing input")
        return None
    return size


def encode(args: argparse.Namespace, size: int) -> int:
    """Open both files and transcode; returns the exit status."""
    with open(args.input, "rb") as source:
        try:
            target = open(args.output, "wb")  # pylint: disable=consider-using-with
        except OSError as error:
            say(f"{args.output}: {error.strerror or error}")
            return 1
        with target:
            say(f"Output #0, demo, to '{args.output}':")
            written = transcode(args, source, target, size)
    say(f"video:{written // 1024}kB audio:0kB subtitle:0kB other streams:0kB "
        "global headers:0kB muxing overhead: 0.000000%")
    return 0


def run(args: argparse.Namespace) -> int:
    """The whole job; returns the exit status."""
    say(f"demo worker (orch-tui stand-in for ffmpeg), pid {os.getpid()}, "
        f"{args.threads} thread(s) at {args.cpu:g} core, {args.memory_mb:g} MiB")
    size = usable_size(args)
    if size is None:
        return 1
    stop, children = start_burners(args.threads - 1, args.cpu)
    try:
        memory = hold_memory(args.memory_mb)
        say(f"Input #0, demo, from '{args.input}':")
        say(f"  Duration: {clock(args.seconds)}, size: {size} bytes")
        status = encode(args, size)
        del memory
        return status
    except OSError as error:
        say(f"{error.filename or args.input}: {error.strerror or error}")
        return 1
    except KeyboardInterrupt:
        say("Exiting normally, received signal 2.")
        return 255
    finally:
        stop_burners(stop, children)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `python -m orch_tui.demo.worker` and `python worker.py`."""
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
