"""Every speed target of issue 11 in one run, side by side with xargs and GNU parallel (prints
figures, never asserts).

    python tests/bench/bench_speed.py [--runs 3] [--only large,dispatch,version,adaptive]
        [--jobs-large 100000] [--dispatch-jobs 2000] [--full] [--ffmpeg] [--clip-seconds 30]
        [--clips 6] [--code DIR]

Quick check: `python tests/bench/bench_speed.py --only large --jobs-large 5000 --runs 1`.

- large: JOBS_LARGE zero-byte inputs, `/bin/sleep 1000` each, 4 at a time. Seconds from the
  start to the first `sleep` (a new process working in the workspace: wherever it hangs in the
  process tree, which in the TUI is below the run process the TUI starts) headless, in the TUI
  (`--yes`, tmux 80x24) and for `parallel -j4`; peak RSS (VmHWM) 3 s after that first launch of
  orch-tui headless, of the TUI and of its run process; the wall time of `--dry-run`.
- dispatch: DISPATCH_JOBS `true {input}` jobs two at a time by xargs -P 2, parallel -j2,
  the Python floor (floor_dispatch.py: spawn, log file, pidfd, wait4 and nothing else), orch-tui
  headless (journal, guardian, containment, logs: the defaults) and the TUI (until its
  run process exits; the finished screen's time is printed beside it). With --full also 10,000
  jobs per job (ms) for orch-tui and xargs. Beside the times, what they are made of: the CPU
  seconds of the xargs and orch-tui runs (their jobs' included), orch-tui's own CPU per job
  (its run's less xargs' run's: the same jobs), the share of every core each run kept busy
  (`*_busy`), and `cpu_bound_ratio`, the least dispatch_ratio orch-tui's CPU allows: its run's
  CPU seconds over the cores, against xargs' wall time.
- version: `python -m orch_tui --version` and the `orch-tui` script, median of 10, ms.
- adaptive (only with --ffmpeg or --only adaptive: it takes about half an hour): makespans of
  real 1080p->720p ffmpeg jobs, parallel -j1..4 against orch-tui's seed rule and --adaptive
  (tests/bench/bench_adaptive.py).

Each figure is measured --runs times (a fresh output folder each time, the contenders of a
section in turn within each repeat) and printed as a median; ratios are of medians. The code
under test is --code's orch_tui (default: this checkout), given to every process it starts by
PYTHONPATH. The machine is shared: the load average is printed before and after each section,
and the last line holds every figure as key=value.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The bench's own helpers come from this checkout; the code under test from PYTHONPATH (--code).
sys.path.insert(0, str(ROOT))

# pylint: disable=wrong-import-position  # they need the checkout on sys.path first
from tests.bench import bench_adaptive, bench_dispatch, bench_memory  # noqa: E402
from tests.tmux import Terminal, orch_command, read_int, wait_until  # noqa: E402

# pylint: enable=wrong-import-position

SLEEP = "/bin/sleep"
CORES = len(os.sched_getaffinity(0))
POLL = 0.005  # seconds between two looks for the first launch: its resolution
LAUNCH_TIMEOUT = 180.0
EXIT_TIMEOUT = 60.0
SECTIONS = ("large", "dispatch", "version", "adaptive")


class Figures:
    """Every measurement by key, the medians and the key=value line made of them."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def add(self, key: str, value: float | None) -> None:
        """One measurement (None: it did not happen; the key is still listed)."""
        self.samples.setdefault(key, [])
        if value is not None:
            self.samples[key].append(value)

    def median(self, key: str) -> float | None:
        """The median of `key`, None when nothing was measured."""
        values = self.samples.get(key)
        return statistics.median(values) if values else None

    def ratio(self, key: str, top: str, bottom: str) -> None:
        """Record median(top) / median(bottom) as `key`."""
        upper, lower = self.median(top), self.median(bottom)
        self.add(key, upper / lower if upper is not None and lower else None)

    def line(self) -> str:
        """key=value for every key, in the order measured (`-` for nothing measured)."""
        return " ".join(f"{key}={_format(key, self.median(key))}" for key in self.samples)


def _format(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.endswith("_s") or "ratio" in key:
        return f"{value:.3f}"
    if key.startswith("load") or key.endswith("_busy"):
        return f"{value:.2f}"
    if key.endswith("_ms"):
        return f"{value:.2f}"
    return f"{value:.1f}"  # MiB


def say(text: str) -> None:
    """One line of progress, at once (the command runs for minutes)."""
    print(text, flush=True)


def load_line(when: str) -> float:
    """Print the load averages; the one-minute one."""
    load = os.getloadavg()
    say(f"load average {when}: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return load[0]


# --- processes, read from /proc


def _stat(pid: int) -> tuple[str, str, int] | None:
    """(command name, state, parent pid) of `pid`; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    head, _, tail = data.rpartition(b")")  # the name may hold spaces and parentheses
    fields = tail.split()
    return head.partition(b"(")[2].decode(errors="replace"), fields[0].decode(), int(fields[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _ended(pid: int, timeout: float = EXIT_TIMEOUT) -> bool:
    """Wait until `pid` is gone (or a zombie); False if it is still there after `timeout`."""
    try:
        wait_until(lambda: not _alive(pid), timeout, f"pid {pid} to exit")
    except AssertionError:
        return False
    return True


class Processes:
    """The processes started since it was made: a /proc listing less the pids there before, so
    one look costs a directory read and a few small files, cheap enough to repeat every 5 ms
    beside the process under test on 2 cores."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = str(workspace.resolve())
        self.before = self._pids()

    @staticmethod
    def _pids() -> set[int]:
        return {int(name) for name in os.listdir("/proc") if name.isdigit()}

    def new(self, command: str = "") -> list[int]:
        """New live processes whose command name starts with `command`."""
        found = []
        for pid in sorted(self._pids() - self.before):
            stat = _stat(pid)
            if stat is not None and stat[1] != "Z" and stat[0].startswith(command):
                found.append(pid)
        return found

    def sleeps(self) -> list[int]:
        """New `sleep` processes working in the workspace: the jobs of the run under test,
        wherever they hang in the tree (below the run process the TUI started, or under init
        once their parent is gone)."""
        found = []
        for pid in self.new("sleep"):
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd == self.workspace or cwd.startswith(self.workspace + "/"):
                found.append(pid)
        return found

    def first_sleep(self, start: float, alive: Callable[[], bool]) -> tuple[float, int] | None:
        """Seconds from `start` to the first job, and its pid; None if the program under test
        ended (`alive` false) or LAUNCH_TIMEOUT passed first."""
        while time.perf_counter() - start < LAUNCH_TIMEOUT:
            found = self.sleeps()
            if found:
                return time.perf_counter() - start, found[0]
            if not alive():
                return None
            time.sleep(POLL)
        return None

    def sweep(self) -> int:
        """Kill every `sleep` left in the workspace (each by its process group: a job leads its
        own); how many were jobs (`SLEEP 1000`, orch-tui's or parallel's). Nothing of a
        measurement outlives it. Any other `sleep` there is said apart, as no job of the run
        measured: GNU parallel forks `sleep 10101` to probe the process limit, and one was seen
        orphaned in the workspace during the TUI's measurement after a killed parallel."""
        left = self.sleeps()
        argvs = {pid: _cmdline(pid) for pid in left}
        named = {
            pid: f"{pid} {' '.join(argv).strip()} (parent {(_stat(pid) or ('', '', 0))[2]})"
            for pid, argv in argvs.items()
        }
        jobs = [pid for pid, argv in argvs.items() if argv[:2] == [SLEEP, "1000"]]
        for pid in left:
            try:
                group = os.getpgid(pid)
                if group == os.getpgrp():
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if jobs:
            say(f"  ! {len(jobs)} job(s) left running, killed: "
                f"{'; '.join(named[pid] for pid in jobs)}")
        others = [named[pid] for pid in left if pid not in jobs]
        if others:
            say(f"  ! {len(others)} other process(es) in the workspace, no job of this run, "
                f"killed: {'; '.join(others)}")
        return len(jobs)


def _peak_mib(pid: int | None) -> float | None:
    kib = bench_memory.vm_hwm(pid) if pid else None
    return kib / 1024 if kib else None


def _settle() -> None:
    """Let the run go on for a while before its peak RSS is read: the figure the issue targets
    is the peak while the list is being loaded and the first jobs run, not just at launch."""
    time.sleep(3.0)  # a fixed period of running, not a wait for a condition


def _tail(path: Path) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-3:])
    except OSError:
        return ""


def _orch(*args: str) -> list[str]:
    return [sys.executable, "-m", "orch_tui", *args]


# --- 1. large lists


def large_headless(root: Path, config: Path, figures: Figures) -> None:
    """First launch and peak RSS of `orch-tui --headless --max-procs 4`; then SIGINT."""
    bench_memory.fresh_output(root)
    procs = Processes(root)
    errors = root / "headless.err"
    start = time.perf_counter()
    with open(errors, "wb") as stderr, subprocess.Popen(_orch("--headless", "--max-procs", "4",
                                                              str(config)),
                                                        cwd=root,
                                                        stdin=subprocess.DEVNULL,
                                                        stdout=subprocess.DEVNULL,
                                                        stderr=stderr) as process:
        first = procs.first_sleep(start, lambda: process.poll() is None)
        if first is not None:
            _settle()
        peak = _peak_mib(process.pid)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            say("  ! headless run still there a minute after SIGINT: killed")
            process.kill()
    procs.sweep()
    figures.add("first_launch_headless_s", first[0] if first else None)
    figures.add("rss_headless_mib", peak)
    say(f"  headless  first launch {_show(first)}  peak RSS {_mib(peak)}  "
        f"exit {process.returncode} {_tail(errors) if first is None else ''}")


def _start_tui(root: Path, args: list[str]) -> tuple[Terminal, float, int]:
    """The TUI running `orch-tui ARGS` in an 80x24 tmux session: the terminal, the time it was
    started at and the TUI's pid."""
    pid_file = root / "tui.pid"
    pid_file.unlink(missing_ok=True)
    terminal = Terminal(root)
    command = orch_command(args,
                           env={
                               "PYTHONPATH": os.environ["PYTHONPATH"],
                               "TERM": "xterm-256color"
                           },
                           pid_file=pid_file)
    start = time.perf_counter()
    terminal.start(command, cwd=root)
    pid = wait_until(lambda: read_int(pid_file), 30, "the TUI's pid")
    assert pid is not None  # wait_until returns a true value or raises
    return terminal, start, pid


def _close_tui(terminal: Terminal, tui_pid: int) -> None:
    """Close the terminal (the TUI gets SIGHUP and goes) and make sure the TUI is gone."""
    terminal.close()
    if not _ended(tui_pid, 10):
        os.kill(tui_pid, signal.SIGKILL)


def _stop_tui(root: Path, terminal: Terminal, tui_pid: int, run_pid: int | None) -> None:
    """`orch-tui stop` the run, close the terminal, and make sure both processes are gone."""
    try:
        subprocess.run(_orch("stop", str(root / "out")),
                       cwd=root,
                       stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL,
                       check=False,
                       timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass  # the run is stopped by signal below
    if run_pid is not None and not _ended(run_pid):
        say(f"  ! run process {run_pid} still there after `orch-tui stop`: SIGTERM")
        os.kill(run_pid, signal.SIGTERM)
        _ended(run_pid)
    _close_tui(terminal, tui_pid)


def large_tui(root: Path, config: Path, figures: Figures) -> None:
    """First launch and peak RSS of the TUI (`--yes`) and of the run process it starts."""
    bench_memory.fresh_output(root)
    procs = Processes(root)
    terminal, start, tui_pid = _start_tui(root, ["--yes", "--max-procs", "4", str(config)])
    run_pid = None
    try:
        first = procs.first_sleep(start, lambda: _alive(tui_pid))
        if first is not None:
            stat = _stat(first[1])
            run_pid = stat[2] if stat else None
            _settle()
        else:
            say("  ! no launch in the TUI; last screen:\n" + terminal.screen())
        peak, run_peak = _peak_mib(tui_pid), _peak_mib(run_pid)
        if first is not None and run_peak is None:
            say(f"  ! the run process (pid {run_pid}, the first job's parent) was gone 3 s "
                f"after it; its run.log ends: {_tail(root / 'out' / '.orch-tui' / 'run.log')}")
    finally:
        _stop_tui(root, terminal, tui_pid, run_pid)
        procs.sweep()
    figures.add("first_launch_tui_s", first[0] if first else None)
    figures.add("rss_tui_mib", peak)
    figures.add("rss_tui_run_mib", run_peak)
    say(f"  tui       first launch {_show(first)}  peak RSS TUI {_mib(peak)}, "
        f"its run process {_mib(run_peak)}")


def large_parallel(root: Path, figures: Figures) -> None:
    """GNU parallel's first launch on the same list; then it and its jobs are killed."""
    procs = Processes(root)
    start = time.perf_counter()
    with subprocess.Popen(["parallel", "--will-cite", "-j4", SLEEP, "1000", "::::", "inputs.txt"],
                          cwd=root,
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL,
                          start_new_session=True) as process:
        first = procs.first_sleep(start, lambda: process.poll() is None)
        os.killpg(process.pid, signal.SIGKILL)  # first, so it starts nothing more
    procs.sweep()
    figures.add("parallel_first_launch_s", first[0] if first else None)
    say(f"  parallel  first launch {_show(first)}")


def large_dry_run(root: Path, config: Path, figures: Figures) -> None:
    """Wall time of `--dry-run` (every command printed, to /dev/null)."""
    bench_memory.fresh_output(root)
    start = time.perf_counter()
    done = subprocess.run(_orch("--dry-run", str(config)),
                          cwd=root,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE,
                          check=False)
    wall = time.perf_counter() - start
    figures.add("dry_run_s", wall if done.returncode == 0 else None)
    say(f"  dry run   {wall:.3f} s  exit {done.returncode} {done.stderr[-300:]!r}" if done.
        returncode else f"  dry run   {wall:.3f} s")


def section_large(base: Path, args: argparse.Namespace, figures: Figures) -> None:
    """Section 1: a list of args.jobs_large inputs."""
    root = Path(tempfile.mkdtemp(prefix="large-", dir=base))
    say(f"\n== large lists: {args.jobs_large:,} zero-byte inputs, {SLEEP} 1000, 4 at a time")
    config = bench_memory.write_workspace(root,
                                          args.jobs_large,
                                          binary=SLEEP,
                                          flags=("1000", ),
                                          content=b"")
    try:
        for run in range(args.runs):
            say(f" run {run + 1}/{args.runs}")
            large_headless(root, config, figures)
            large_tui(root, config, figures)
            large_parallel(root, figures)
            large_dry_run(root, config, figures)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _table(figures, [
        "first_launch_headless_s", "first_launch_tui_s", "parallel_first_launch_s", "dry_run_s",
        "rss_headless_mib", "rss_tui_mib", "rss_tui_run_mib"
    ])


# --- 2. dispatch


def _timed_orch(argv: list[str], report: Path) -> tuple[float | None, float | None]:
    """Wall and CPU seconds (its jobs' included) of a headless run; None, None if it failed (its
    time would mean nothing, and the last lines of its report, kept in `report`, say why)."""
    exits: list[int] = []
    _, wall, cpu = bench_dispatch.timed(
        "orch-tui", lambda: exits.append(bench_dispatch.bench_orch(argv, report)))
    if exits == [0]:
        return wall, cpu
    lines = report.read_text(encoding="utf-8", errors="replace").splitlines()[-3:]
    say(f"  ! orch-tui exited {exits[0]}:" + "".join(f"\n    {line}" for line in lines))
    return None, None


def _busy(cpu: float | None, wall: float | None) -> float | None:
    """The share of every core a run kept busy: its CPU seconds (its jobs' included) over
    cores x wall seconds."""
    return cpu / (CORES * wall) if cpu is not None and wall else None


def tui_dispatch(workdir: Path, items: Path, procs: int) -> tuple[float | None, float | None]:
    """Seconds from starting the TUI to its run process's exit, and to the finished screen."""
    config = bench_dispatch.orch_config(workdir, items)
    watch = Processes(workdir)
    terminal, start, tui_pid = _start_tui(
        workdir,
        ["--yes", "--max-procs", str(procs), str(config)])

    # The run process is the child of one started as `orch_tui --headless --ready-fd=N ...`
    # that exits once it has forked it: one of the two is there from the first's start to the
    # run's end.
    def running() -> bool:
        return any(
            any(word.startswith("--ready-fd") for word in _cmdline(pid))
            for pid in watch.new("python"))

    try:
        seen = False
        while not seen and time.perf_counter() - start < LAUNCH_TIMEOUT:
            seen = running()
            time.sleep(POLL)
        while seen and running():
            time.sleep(POLL)
        ran = time.perf_counter() - start if seen else None
        terminal.wait_for(bench_memory.is_finished, EXIT_TIMEOUT, "the finished screen")
        screen = time.perf_counter() - start
    finally:
        _close_tui(terminal, tui_pid)
    return ran, screen


def section_dispatch(base: Path, args: argparse.Namespace, figures: Figures) -> None:
    """Section 2: many `true` jobs two at a time."""
    procs = 2
    workdir = Path(tempfile.mkdtemp(prefix="dispatch-", dir=base))
    say(f"\n== dispatch: {args.dispatch_jobs:,} `true` jobs, {procs} at a time")
    try:
        items = bench_dispatch.make_items(workdir, args.dispatch_jobs)
        for run in range(args.runs):
            _, xargs, xargs_cpu = bench_dispatch.timed(
                "xargs", lambda: bench_dispatch.bench_xargs(items, procs))
            _, parallel, _ = bench_dispatch.timed(
                "parallel", lambda: bench_dispatch.bench_parallel(items, procs))
            _, floor, floor_cpu = bench_dispatch.timed(
                "floor", lambda: bench_dispatch.bench_floor(workdir, items, procs))
            orch, orch_cpu = _timed_orch(bench_dispatch.orch_argv(workdir, items, procs),
                                         workdir / "orch-report.txt")
            tui, screen = tui_dispatch(workdir, items, procs)
            # The jobs cost what they cost under xargs, whose own share is a few ms.
            own_ms = (None if orch_cpu is None else
                      (orch_cpu - xargs_cpu) / args.dispatch_jobs * 1000)
            runs = {
                "dispatch_xargs_s": xargs,
                "dispatch_parallel_s": parallel,
                "dispatch_floor_s": floor,
                "dispatch_orch_s": orch,
                "tui_dispatch_s": tui,
                "dispatch_xargs_cpu_s": xargs_cpu,
                "dispatch_orch_cpu_s": orch_cpu,
                "xargs_busy": _busy(xargs_cpu, xargs),
                "floor_busy": _busy(floor_cpu, floor),
                "orch_busy": _busy(orch_cpu, orch),
                "orch_own_cpu_ms": own_ms,
            }
            for key, value in runs.items():
                figures.add(key, value)
            say(f" run {run + 1}/{args.runs}: xargs {xargs:.3f} s, parallel {parallel:.3f} s, "
                f"Python floor {floor:.3f} s, orch-tui {_secs(orch)}, TUI {_secs(tui)} "
                f"(finished screen at {_secs(screen)})")
        if args.full:
            per_job(workdir, args.runs, figures)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures.ratio("dispatch_ratio", "dispatch_orch_s", "dispatch_xargs_s")
    figures.ratio("parallel_ratio", "dispatch_parallel_s", "dispatch_xargs_s")
    figures.ratio("floor_ratio", "dispatch_floor_s", "dispatch_xargs_s")
    figures.ratio("orch_floor_ratio", "dispatch_orch_s", "dispatch_floor_s")
    figures.ratio("tui_ratio", "tui_dispatch_s", "dispatch_orch_s")
    # The least dispatch_ratio the CPU orch-tui's run uses allows: every core busy all along.
    cpu, xargs_wall = figures.median("dispatch_orch_cpu_s"), figures.median("dispatch_xargs_s")
    figures.add("cpu_bound_ratio",
                cpu / CORES / xargs_wall if cpu is not None and xargs_wall else None)
    _table(figures, [
        "dispatch_xargs_s", "dispatch_parallel_s", "dispatch_floor_s", "dispatch_orch_s",
        "tui_dispatch_s", "dispatch_ratio", "parallel_ratio", "floor_ratio", "orch_floor_ratio",
        "tui_ratio", "dispatch_xargs_cpu_s", "dispatch_orch_cpu_s", "orch_own_cpu_ms", "xargs_busy",
        "floor_busy", "orch_busy", "cpu_bound_ratio", "per_job_orch_ms", "per_job_xargs_ms"
    ])


def per_job(workdir: Path, runs: int, figures: Figures) -> None:
    """--full: milliseconds per job over 10,000 `true` jobs, orch-tui headless and xargs."""
    count, procs = 10_000, 2
    big = workdir / "per-job"
    big.mkdir()
    items = bench_dispatch.make_items(big, count)
    for _ in range(runs):
        _, xargs, _ = bench_dispatch.timed("xargs",
                                           lambda: bench_dispatch.bench_xargs(items, procs))
        orch, _ = _timed_orch(bench_dispatch.orch_argv(big, items, procs), big / "orch-report.txt")
        figures.add("per_job_xargs_ms", xargs / count * 1000)
        figures.add("per_job_orch_ms", orch / count * 1000 if orch is not None else None)
        say(f" {count:,} jobs: xargs {xargs:.2f} s, orch-tui {_secs(orch)}")


# --- 3. version


def version_ms(argv: list[str], count: int = 10) -> float:
    """Median wall milliseconds of `count` runs of `argv`."""
    walls = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        walls.append((time.perf_counter() - start) * 1000)
    return statistics.median(walls)


def section_version(_base: Path, _args: argparse.Namespace, figures: Figures) -> None:
    """Section 3: `--version`, the module and the console script."""
    say("\n== --version (median of 10)")
    figures.add("version_ms", version_ms(_orch("--version")))
    # The console script of the Python under test (its venv's), not whichever is first on PATH
    # (a pyenv shim is a shell script that costs more than the answer).
    beside = Path(sys.executable).with_name("orch-tui")
    script = str(beside) if beside.exists() else shutil.which("orch-tui")
    figures.add("version_script_ms", version_ms([script, "--version"]) if script else None)
    _table(figures, ["version_ms", "version_script_ms"])


# --- 4. adaptive


def section_adaptive(base: Path, args: argparse.Namespace, figures: Figures) -> None:
    """Section 4: real ffmpeg, parallel -j1..4 against the seed rule and --adaptive."""
    say(f"\n== adaptive: {args.clips} clips of {args.clip_seconds} s, 1080p->720p veryfast")
    medians = bench_adaptive.makespans(args.clip_seconds, args.clips, args.runs, base=base)
    best = bench_adaptive.best_parallel(medians)
    for name, value in medians.items():
        figures.add(f"{name}_s", value)
        say(f"  {name:<16}{value:8.2f} s  {value / best:5.2f}x the best parallel")
    figures.add("adaptive_ratio", medians["orch_adaptive"] / best)
    figures.add("default_ratio", medians["orch_default"] / best)


# --- printing


def _show(first: tuple[float, int] | None) -> str:
    return "none" if first is None else f"{first[0]:.3f} s"


def _secs(value: float | None) -> str:
    return "failed" if value is None else f"{value:.3f} s"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} MiB"


def _table(figures: Figures, keys: list[str]) -> None:
    """The section's medians (with every repeat's value)."""
    for key in keys:
        if key in figures.samples:
            values = ", ".join(_format(key, value) for value in figures.samples[key])
            say(f"  {key:<26}{_format(key, figures.median(key)):>10}   ({values})")


def main() -> None:
    """Measure every section asked for, print the medians and the key=value line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs-large", type=int, default=100_000)
    parser.add_argument("--dispatch-jobs", type=int, default=2000)
    parser.add_argument("--only", help=f"a comma list of {','.join(SECTIONS)}")
    parser.add_argument("--full", action="store_true", help="also 10,000 jobs per job")
    parser.add_argument("--ffmpeg", action="store_true", help="also the adaptive section")
    parser.add_argument("--clip-seconds", type=int, default=30)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout under test")
    args = parser.parse_args()
    sections = args.only.split(",") if args.only else [
        section for section in SECTIONS if section != "adaptive" or args.ffmpeg
    ]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    os.environ["PYTHONPATH"] = str(args.code.resolve())
    # Bytecode as an installed copy has it (pip compiles at install time): where the environment
    # says PYTHONDONTWRITEBYTECODE, every run would otherwise compile orch-tui from source first.
    compileall.compile_dir(args.code.resolve() / "orch_tui", quiet=1)
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path(tempfile.gettempdir())
    figures = Figures()
    say(f"orch-tui from {args.code.resolve()}, {os.cpu_count()} cores, {args.runs} run(s) each")
    load1 = load_line("before")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="orch-speed-", dir=base) as folder:
        measure = {
            "large": section_large,
            "dispatch": section_dispatch,
            "version": section_version,
            "adaptive": section_adaptive
        }
        for section in sections:
            measure[section](Path(folder), args, figures)
            load_line(f"after {section}")
    figures.add("load1", load1)
    figures.add("load1_after", os.getloadavg()[0])
    say(f"\n{time.monotonic() - started:.0f} s in all")
    print(figures.line())


if __name__ == "__main__":
    main()
