"""Test helpers: real workspaces (inputs, list, config), an event recorder, a way to run the
orchestrator on the test's loop, and process-table probes."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orch_tui.core.plan import load_plan
from orch_tui.core import events as ev
from orch_tui.core.orchestrator import Orchestrator
from orch_tui.core.plan import Plan
from orch_tui.core.local_runner import LocalRunner

WORKER = Path(__file__).parent / "workers" / "job.py"
CMD = [sys.executable, "-m", "orch_tui"]


def run_cli(*args: str,
            cwd: Path | None = None,
            timeout: float = 60.0,
            preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m orch_tui ARGS` to completion, as an operator's shell would run it (stdin from
    /dev/null, output captured as text, the exit code left for the test to check)."""
    return subprocess.run([*CMD, *args],
                          cwd=cwd,
                          capture_output=True,
                          text=True,
                          timeout=timeout,
                          stdin=subprocess.DEVNULL,
                          preexec_fn=preexec_fn,
                          check=False)


@dataclass
class Workspace:
    """A folder with inputs, an input list and a config running tests/workers/job.py."""

    root: Path
    inputs: list[Path] = field(default_factory=list)

    @property
    def config(self) -> Path:
        """The config file's path."""
        return self.root / "config.yaml"

    @property
    def output_dir(self) -> Path:
        """Where outputs go."""
        return self.root / "out"

    def plan(self) -> Plan:
        """Load config + list + plan exactly as the CLI does."""
        return load_plan(self.config)


def not_a_video(size: int) -> bytes:
    """Bytes no ffmpeg demuxer accepts, every time: random bytes now and then probe as MPEG
    audio or another raw format and transcode to exit 0."""
    line = b"this is not a video\n"
    return (line * (size // len(line) + 1))[:size]


def write_workspace(root: Path,
                    names: list[str] | int = 3,
                    *,
                    worker_args: list[str] | None = None,
                    size: int = 64 * 1024,
                    suffix: str = "_out",
                    resources: dict | None = None,
                    jobs: dict | None = None,
                    binary: str | None = None,
                    flags: list[str] | None = None) -> Workspace:
    """Write inputs, inputs.txt and config.yaml under `root`; returns the workspace."""
    root.mkdir(parents=True, exist_ok=True)
    if isinstance(names, int):
        names = [f"clip{i:02d}.bin" for i in range(1, names + 1)]
    (root / "in").mkdir(exist_ok=True)
    workspace = Workspace(root)
    for name in names:
        path = root / "in" / name
        path.write_bytes(os.urandom(size))
        workspace.inputs.append(path)
    (root / "inputs.txt").write_text("".join(f"in/{name}\n" for name in names), encoding="utf-8")
    flags = flags if flags is not None else [
        str(WORKER), *(worker_args or []), "{input_file}", "{output_file}"
    ]
    config = {
        "binary": {
            "path": binary or sys.executable,
            "flags": flags
        },
        "directories": {
            "input_file_list": "inputs.txt",
            "output_dir": "out",
            "output_suffix": suffix
        },
        "resources": {
            "stabilization_seconds": 0.5,
            "sample_interval": 0.1,
            **(resources or {})
        },
        "jobs": {
            "kill_grace": 1,
            **(jobs or {})
        },
    }
    # JSON is valid YAML: no hand-quoting of paths.
    workspace.config.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return workspace


class Recorder:
    """Collects every event published on a bus."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        """Events of one type, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    def states(self, job_id: int) -> list[ev.JobState]:
        """The states a job went through."""
        return [e.state for e in self.of(ev.JobStateChanged) if e.job_id == job_id]

    def final(self) -> ev.RunFinished:
        """The RunFinished event."""
        return self.of(ev.RunFinished)[-1]


@dataclass
class Running:
    """An orchestrator started on the test's loop, with its recorder and task."""

    orchestrator: Orchestrator
    recorder: Recorder
    task: asyncio.Task

    @property
    def runner(self) -> LocalRunner:
        """The local runner (to read pids in tests)."""
        runner = self.orchestrator.runner
        assert isinstance(runner, LocalRunner)
        return runner

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll until `predicate()` holds (fails the test after `timeout`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.02)

    def state(self, job_id: int) -> ev.JobState:
        """The scheduler's current state of a job."""
        return self.orchestrator.jobs[job_id].state

    async def result(self, timeout: float = 30.0) -> int:
        """The run's exit code."""
        return await asyncio.wait_for(self.task, timeout)


async def eventually(predicate: Callable[[], object],
                     what: str = "the condition",
                     timeout: float = 15.0) -> None:
    """Poll `predicate` on the running loop until it holds (never a fixed wait: a loaded
    machine only makes it take longer), failing after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def start_run(plan: Plan, runner: LocalRunner | None = None, **kwargs) -> Running:
    """Start an orchestrator for `plan` on the running loop (on `runner`, default a new one)."""
    bus = ev.EventBus()
    recorder = Recorder()
    bus.add_listener(recorder)
    runner = runner or LocalRunner(plan.config.directories.output_dir)
    orchestrator = Orchestrator(plan, runner, bus, **kwargs)
    task = asyncio.create_task(orchestrator.run())
    return Running(orchestrator, recorder, task)


def signal_in_mask(pid: int, mask: str, signum: int) -> bool:
    """Whether `signum` is in the process's `mask` line of /proc/PID/status ("SigIgn": set to
    ignore, "SigCgt": a handler of its own, "SigBlk": blocked)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        value = next(line for line in status if line.startswith(f"{mask}:")).split()[1]
    return bool(int(value, 16) >> (signum - 1) & 1)


def process_state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat (None when gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def process_runs(pid: int) -> bool:
    """True while `pid` runs, not stopped: R, S, or D (a moment in the kernel, such as paging its
    binary in just after exec, as a loaded CI machine showed once)."""
    return process_state(pid) in ("R", "S", "D")


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    state = process_state(pid)
    return state is not None and state != "Z"


def kill_quietly(pids: list[int]) -> None:
    """Cleanup for tests that may fail midway: leave no process behind."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def screen_text(app) -> str:
    """What a Textual app's terminal shows right now, as plain text (no styles)."""
    strips = app.screen._compositor.render_strips()  # pylint: disable=protected-access
    return "\n".join(strip.text for strip in strips)


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_dac_capabilities() -> None:
    """preexec_fn: stay uid 0 but lose the capabilities that let root ignore permission bits.

    setuid(nobody) is not an option when the interpreter lives where nobody cannot reach it (a
    pyenv under /root, mode 0700); without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in the
    bounding set, the exec'd interpreter is held to the file modes like any user (access(2)
    included), while everything owned by root and readable by its owner stays readable."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))


def unprivileged() -> Callable[[], None] | None:
    """The preexec_fn that makes permission bits bite (None when we are not root anyway)."""
    return _drop_dac_capabilities if os.geteuid() == 0 else None
