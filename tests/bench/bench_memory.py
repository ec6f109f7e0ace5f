"""Peak RSS of the orchestrator for a large plan, headless, TUI and model only (prints figures,
never asserts).

    python tests/bench/bench_memory.py [--jobs 100000] [--procs 2] [--seconds 240]
        [--samples 60] [--code DIR ...] [--only headless,tui,model]

For each checkout given with --code (default: this one; give two to compare a change with the
code before it, e.g. a `git worktree` of the parent commit) it measures, each in a fresh
process:

- headless: `python -m orch_tui --headless -j PROCS config` over a workspace of JOBS one-byte
  inputs (in /dev/shm when there is one) whose command is `cp {input_file} {output_file}`, so
  a job costs a fork and an exec and nothing else. Stopped with SIGINT after --seconds if it has
  not finished (the figure then covers the jobs done so far; the table says how many). Peak RSS
  is the orchestrator's ru_maxrss from wait4 (its own; `cp` is a few MB and never counts more).
- tui: the same command without --headless, with --yes, in an 80x24 tmux session (as
  tests/tmux.py drives it); peak RSS is VmHWM from /proc/<pid>/status, read until the finished
  screen shows or --seconds pass.
- model: RunModel.from_plan-sized rows for JOBS jobs, each run to success with --samples
  JobSample events (what the TUI keeps after the jobs end, without a terminal); VmHWM.

Figures are MiB, side by side per checkout. Issue 8, part 5 (2 shared cores; cp, -j 2; every
run finished its 100,000 jobs), before (dfcf2aa) | after (fixed-size history, slots rows):
    headless  362 MiB (240 s) | 346 MiB (216 s)  the TUI's model is not in headless
    tui       649 MiB (270 s) | 400 MiB (247 s)
    model    2367 MiB         | 235 MiB          60 samples a job, every job ended
A dry run (the plan alone) peaks at 241 MiB: most of the headless figure is the plan's Paths.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# After PYTHONPATH: the model child must import the checkout under test, not this one.
sys.path.append(str(ROOT))

# pylint: disable-next=wrong-import-position  # needs the repository on sys.path first
from tests.tmux import TMUX, clean_environment, wait_until  # noqa: E402


def vm_hwm(pid: int) -> int | None:
    """Peak resident set of `pid` in KiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def write_workspace(root: Path,
                    jobs: int,
                    *,
                    binary: str = "/bin/cp",
                    flags: tuple[str, ...] = ("{input_file}", "{output_file}"),
                    content: bytes = b"x") -> Path:
    """JOBS inputs holding `content`, their list and a config running `binary` with `flags` on
    each (by default copying it to its output)."""
    inputs = root / "in"
    inputs.mkdir(parents=True)
    names = [f"f{i:06d}.bin" for i in range(jobs)]
    for name in names:
        (inputs / name).write_bytes(content)
    (root / "inputs.txt").write_text("".join(f"in/{name}\n" for name in names), encoding="utf-8")
    config = {
        "binary": {
            "path": binary,
            "flags": list(flags)
        },
        "directories": {
            "input_file_list": "inputs.txt",
            "output_dir": "out",
            "output_suffix": "_out"
        },
    }
    path = root / "config.yaml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def fresh_output(root: Path) -> None:
    """Remove the outputs and the journal of a previous measurement (each starts from zero)."""
    subprocess.run(["rm", "-rf", str(root / "out")], check=True)


def count_outputs(root: Path) -> int:
    """Jobs finished so far (their renamed outputs)."""
    try:
        return sum(1 for name in os.listdir(root / "out") if name.endswith("_out.bin"))
    except FileNotFoundError:
        return 0


def environment(code: Path) -> dict[str, str]:
    """The environment running `code`'s orch_tui."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(code)
    return env


def headless(code: Path, root: Path, config: Path, procs: int, seconds: float) -> tuple[int, str]:
    """Peak RSS (KiB) of a headless run and what it did."""
    fresh_output(root)
    argv = [sys.executable, "-m", "orch_tui", "--headless", "-j", str(procs), str(config)]
    start = time.monotonic()
    with subprocess.Popen(argv,
                          cwd=root,
                          env=environment(code),
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as process:
        # wait4 gives this child's own rusage (Popen.wait would reap it without).
        interrupted = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if not interrupted and time.monotonic() - start > seconds:
                process.send_signal(signal.SIGINT)
                interrupted = True
            time.sleep(0.2)  # a polling period, not a wait for a condition
        process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - start
    done = count_outputs(root)
    return usage.ru_maxrss, f"exit {process.returncode}, {done} done in {elapsed:.0f}s"


def is_finished(screen: str) -> bool:
    """The finished screen shows (its summary names the journal)."""
    screen = screen.lower()
    return "finished" in screen and "journal" in screen


def tui(code: Path, root: Path, config: Path, procs: int, seconds: float) -> tuple[int, str]:
    """Peak RSS (KiB) of a TUI run in tmux, read until the finished screen or `seconds`."""
    fresh_output(root)
    socket = f"orch-bench-{os.getpid()}"
    pid_file = root / "tui.pid"
    pid_file.unlink(missing_ok=True)
    program = shlex.join([sys.executable, "-m", "orch_tui", "--yes", "-j", str(procs), str(config)])
    script = f"echo $$ > {shlex.quote(str(pid_file))}; exec {program}"
    env = clean_environment()
    env["PYTHONPATH"] = str(code)
    shell = shlex.join(["env", f"PYTHONPATH={code}", "TERM=xterm-256color", "sh", "-c", script])
    tmux = [TMUX, "-u", "-L", socket, "-f", "/dev/null"]
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "-c",
         str(root), shell],
        check=True,
        env=env,
        timeout=10)
    start = time.monotonic()
    try:
        pid = int(
            wait_until(lambda: pid_file.read_text().strip()
                       if pid_file.exists() else None, 30, "the TUI's pid") or 0)
        finished = False
        while not finished and time.monotonic() - start < seconds:
            time.sleep(1.0)  # a polling period, not a wait for a condition
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "t"],
                                    capture_output=True,
                                    text=True,
                                    check=False,
                                    env=env).stdout
            finished = is_finished(screen)
        peak = vm_hwm(pid) or 0  # a high-water mark: read once, before the process goes
        # A hangup would only detach the TUI (the run goes on headless): stop the run itself.
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: vm_hwm(pid) is None, 60, "the TUI to exit")
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, env=env, capture_output=True)
    elapsed = time.monotonic() - start
    what = "finished" if finished else "stopped"
    return peak, f"{what}, {count_outputs(root)} done in {elapsed:.0f}s"


def model_only(code: Path, jobs: int, samples: int) -> tuple[int, str]:
    """Peak RSS (KiB) of a process holding a RunModel of `jobs` finished jobs."""
    result = subprocess.run(
        [sys.executable, __file__, "--model-child", "--jobs",
         str(jobs), "--samples",
         str(samples)],
        env=environment(code),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.split()[0]), f"{samples} samples a job"


def model_child(jobs: int, samples: int) -> None:
    """In the child: build and feed the model, print VmHWM (KiB)."""
    # pylint: disable=import-outside-toplevel  # the checkout under test, from PYTHONPATH
    from orch_tui.core import events as ev
    from orch_tui.core.events import JobState
    from orch_tui.tui.model import Given, JobRow, RunModel

    rows = [
        JobRow(job_id=i,
               name=f"f{i:06d}.bin",
               input_size=1,
               planned=Given(argv=("cp", f"/in/f{i:06d}.bin", f"/out/f{i:06d}_out.bin"),
                             log_path=Path(f"/out/.orch-tui/logs/{i}.log"),
                             output_path=Path(f"/out/f{i:06d}_out.bin")))
        for i in range(1, jobs + 1)
    ]
    model = RunModel(rows, clock=time.monotonic)
    for row in rows:
        job_id = row.job_id
        model.apply(
            ev.JobStateChanged(time=0.0,
                               job_id=job_id,
                               name=row.name,
                               state=JobState.RUNNING,
                               previous=JobState.QUEUED,
                               attempt=1,
                               node="local",
                               pid=1000))
        for second in range(samples):
            model.apply(
                ev.JobSample(time=float(second),
                             job_id=job_id,
                             node="local",
                             pid=1000,
                             cpu_cores=0.5 + second % 7 / 10,
                             rss_bytes=50_000_000 + second * 4096,
                             processes=1,
                             read_fraction=second / samples,
                             output_bytes=second * 1000,
                             elapsed=float(second)))
        model.apply(
            ev.JobStateChanged(time=float(samples),
                               job_id=job_id,
                               name=row.name,
                               state=JobState.SUCCEEDED,
                               previous=JobState.RUNNING,
                               attempt=1,
                               exit_code=0))
    print(vm_hwm(os.getpid()) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> None:
    """Measure every checkout, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--code", type=Path, action="append")
    parser.add_argument("--only", default="headless,tui,model")
    parser.add_argument("--model-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model_child:
        model_child(args.jobs, args.samples)
        return
    codes = [path.resolve() for path in (args.code or [ROOT])]
    only = args.only.split(",")
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="orch-bench-", dir=base) as folder:
        root = Path(folder)
        config = write_workspace(root, args.jobs) if {"headless", "tui"} & set(only) else None
        table: dict[str, list[str]] = {}
        for code in codes:
            for kind in only:
                if kind == "model":
                    kib, what = model_only(code, args.jobs, args.samples)
                else:
                    assert config is not None
                    measure = headless if kind == "headless" else tui
                    kib, what = measure(code, root, config, args.procs, args.seconds)
                line = f"{kib / 1024:8.1f} MiB  ({what})"
                table.setdefault(kind, []).append(line)
                print(f"{code}  {kind:8s} {line}", flush=True)
    print(f"\npeak RSS, {args.jobs:,} jobs ({' | '.join(str(code) for code in codes)})")
    for kind, lines in table.items():
        print(f"{kind:8s} " + "  |  ".join(lines))


if __name__ == "__main__":
    main()
