"""Dispatch cost against xargs -P, GNU parallel and a bare asyncio loop (prints, never asserts).

    python tests/bench/bench_dispatch.py [--jobs 2000] [--procs 2] [--sweep-jobs 64]

Runs N `true` jobs P at a time with each tool and prints wall seconds, CPU seconds of the
dispatcher, and the ratio to xargs ("Python floor" is floor_dispatch.py: the least a Python
process does per job under orch-tui's process rules); then the cost of one monitoring sweep
over M sleeping jobs (one /proc pass) against psutil's children(recursive=True) per job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from orch_tui.core import procfs

TRUE = shutil.which("true") or "/bin/true"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, func) -> tuple[str, float, float]:
    """Run `func()`; return (label, wall seconds, CPU seconds of everything it started)."""
    cpu0, self0 = _children_cpu(), time.process_time()
    start = time.perf_counter()
    func()
    wall = time.perf_counter() - start
    return label, wall, (_children_cpu() - cpu0) + (time.process_time() - self0)


def make_items(workdir: Path, count: int) -> Path:
    """`count` empty input files in `workdir/in`, and the list of them (one a line) to feed
    every tool the same jobs."""
    inputs = workdir / "in"
    inputs.mkdir()
    for i in range(count):
        (inputs / f"{i:06d}").touch()
    items = workdir / "items.txt"
    items.write_text("".join(f"{inputs / f'{i:06d}'}\n" for i in range(count)), encoding="utf-8")
    return items


def bench_xargs(items: Path, procs: int) -> None:
    """xargs -P: the floor every dispatcher is measured against."""
    with open(items, "rb") as stdin:
        subprocess.run(["xargs", "-P", str(procs), "-n", "1", TRUE], stdin=stdin, check=True)


def bench_parallel(items: Path, procs: int) -> None:
    """GNU parallel -j P."""
    with open(items, "rb") as stdin:
        subprocess.run(["parallel", "--will-cite", "-j",
                        str(procs), TRUE, "{}"],
                       stdin=stdin,
                       check=True,
                       stdout=subprocess.DEVNULL)


def bench_floor(workdir: Path, items: Path, procs: int) -> None:
    """floor_dispatch.py: a Python process doing only what orch-tui's process rules ask of each
    job (own session, stdin /dev/null, a log file each, pidfd, wait4); a fresh logs folder."""
    logs = workdir / "floor-logs"
    shutil.rmtree(logs, ignore_errors=True)
    subprocess.run([
        sys.executable,
        str(Path(__file__).with_name("floor_dispatch.py")), TRUE,
        str(items),
        str(procs),
        str(logs)
    ],
                   check=True)


def bench_asyncio(count: int, procs: int) -> None:
    """A bare asyncio loop with create_subprocess_exec and a semaphore."""

    async def main() -> None:
        gate = asyncio.Semaphore(procs)

        async def one(i: int) -> None:
            async with gate:
                proc = await asyncio.create_subprocess_exec(TRUE, str(i))
                await proc.wait()

        await asyncio.gather(*(one(i) for i in range(count)))

    asyncio.run(main())


def orch_config(workdir: Path, items: Path) -> Path:
    """The config of a run of `true {input_file}` over `items`, its output in `workdir/out`
    (emptied first: every run starts fresh)."""
    config = workdir / "config.yaml"
    config.write_text(json.dumps({
        "binary": {
            "path": TRUE,
            "flags": ["{input_file}"]
        },
        "directories": {
            "input_file_list": str(items),
            "output_dir": str(workdir / "out")
        },
    }),
                      encoding="utf-8")
    shutil.rmtree(workdir / "out", ignore_errors=True)
    return config


def orch_argv(workdir: Path, items: Path, procs: int) -> list[str]:
    """The command line of an orch-tui headless run with --max-procs (no calibration), logs and
    all, over `items` (see orch_config). Made before the clock starts: emptying the output
    folder of the previous run is no part of the run."""
    return [
        sys.executable, "-m", "orch_tui",
        str(orch_config(workdir, items)), "--headless", "--max-procs",
        str(procs)
    ]


def bench_orch(argv: list[str], report: Path | None = None) -> int:
    """orch-tui headless with --max-procs (no calibration), logs and all; its exit code. Its
    report goes to the file `report` (a failed run's last lines say why), or nowhere."""
    if report is None:
        return subprocess.run(argv, check=False, stdout=subprocess.DEVNULL).returncode
    with open(report, "wb") as out:
        return subprocess.run(argv, check=False, stdout=out).returncode


def bench_sweep(count: int, rounds: int = 50) -> tuple[float, float]:
    """Milliseconds per sweep: one /proc pass for all jobs vs psutil children() per job."""
    # pylint: disable-next=consider-using-with
    kids = [subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(count)]
    try:
        roots = [k.pid for k in kids]
        start = time.process_time()
        for _ in range(rounds):
            procfs.group_by_root(procfs.scan_processes(), roots)
        ours = (time.process_time() - start) / rounds * 1000
        start = time.process_time()
        for _ in range(max(1, rounds // 10)):
            for pid in roots:
                psutil.Process(pid).children(recursive=True)
        theirs = (time.process_time() - start) / max(1, rounds // 10) * 1000
        return ours, theirs
    finally:
        for kid in kids:
            kid.kill()
            kid.wait()


def main() -> None:
    """Run every benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--sweep-jobs", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        items = make_items(workdir, args.jobs)
        rows = [timed("xargs -P", lambda: bench_xargs(items, args.procs))]
        if shutil.which("parallel"):
            rows.append(timed("GNU parallel", lambda: bench_parallel(items, args.procs)))
        rows.append(timed("bare asyncio", lambda: bench_asyncio(args.jobs, args.procs)))
        rows.append(timed("Python floor", lambda: bench_floor(workdir, items, args.procs)))
        argv = orch_argv(workdir, items, args.procs)
        rows.append(timed("orch-tui", lambda: bench_orch(argv)))
    base = rows[0][1]
    print(f"{args.jobs} `true` jobs, {args.procs} at a time, {os.cpu_count()} cores")
    print(f"{'tool':<14}{'wall s':>9}{'cpu s':>9}{'vs xargs':>10}")
    for label, wall, cpu in rows:
        print(f"{label:<14}{wall:>9.2f}{cpu:>9.2f}{wall / base:>9.1f}x")
    ours, theirs = bench_sweep(args.sweep_jobs)
    print(f"monitor sweep over {args.sweep_jobs} jobs: {ours:.2f} ms CPU (one /proc pass) vs "
          f"{theirs:.1f} ms (psutil children(recursive=True) per job): {theirs / ours:.0f}x")


if __name__ == "__main__":
    main()
