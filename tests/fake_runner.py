"""A runner without processes and a clock without waiting, for the scheduler's own tests.

`FakeRunner` implements the runner interface: each job follows a `Script` (how long it runs in
fake seconds, how it ends, what its samples say, whether it can start at all), and the node's
figures are plain attributes a test changes to make memory or disk scarce. With `nodes` (see
`several_nodes`) it is a cluster of fake nodes: each job goes to the next node that takes jobs
(round-robin) or to its script's `node`, samples and figures name that node, a node can fail
every job given to it, and `set_node_state` sets one aside or loses it as a cluster runner would
tell (NodeStateChanged on the run's bus). `FakeClock` is the
orchestrator's clock: nothing moves until the test advances it, and `run_until` jumps from one
timer to the next, so a run of minutes takes milliseconds and never depends on the machine's
load. Outputs are real files (a successful job writes its temporary output, as a real one
would), so the scheduler's renaming and cleanup are the real code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orch_tui.core import events as ev
from orch_tui.core.errors import SpawnError
from orch_tui.core.events import ProgressSource
from orch_tui.core.orchestrator import Orchestrator
from orch_tui.core.plan import JobSpec, Plan
from orch_tui.core.probes import RUNNING_CAP, Progress
from orch_tui.core.runner import ExitCallback, ExitStatus, NodeStats, ProcessSample, Runner, Started
from orch_tui.core.scaling import CapacitySource
from tests.helpers import Recorder

GB = 1024**3
MB = 1024**2
NODE = "fake-node"

#: How many loop turns make "everything that can happen now has happened".
_SETTLE_TURNS = 30


class FakeTimer:
    """A pending FakeClock call."""

    def __init__(self, when: float, callback: Callable[..., object], args: tuple) -> None:
        self.when, self.callback, self.args = when, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run it."""
        self.cancelled = True


class FakeClock:
    """Time that moves only when the test says so (the orchestrator's `Clock`)."""

    def __init__(self) -> None:
        self.time = 1000.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """Fake seconds."""
        return self.time

    def call_later(self, seconds: float, callback: Callable[..., object], *args:
                   object) -> FakeTimer:
        """Run `callback(*args)` once the clock reaches now + `seconds`."""
        timer = FakeTimer(self.time + max(0.0, seconds), callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of fake time."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_later(seconds, lambda: done.done() or done.set_result(None))
        await done

    @staticmethod
    async def settle() -> None:
        """Let every ready callback and task run (no time passes)."""
        for _ in range(_SETTLE_TURNS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Let `seconds` of fake time pass, firing every timer due on the way, in order."""
        end = self.time + seconds
        await self.run_until(lambda: False, timeout=seconds, quiet=True)
        self.time = max(self.time, end)
        await self.settle()

    async def run_until(self,
                        predicate: Callable[[], bool],
                        timeout: float = 3600.0,
                        what: str = "condition",
                        quiet: bool = False) -> None:
        """Advance timer by timer until `predicate()` holds; fail after `timeout` fake seconds
        (or when nothing is left to happen) unless `quiet`."""
        deadline = self.time + timeout
        while True:
            await self.settle()
            if predicate():
                return
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            if not self._timers or self._timers[0][0] > deadline:
                if quiet:
                    return
                raise AssertionError(f"{what} not reached within {timeout:g} fake seconds")
            when, _, timer = heapq.heappop(self._timers)
            self.time = max(self.time, when)
            timer.callback(*timer.args)


@dataclass
class Script:
    """What one attempt of a job does."""

    seconds: float = 1.0  # fake seconds of running (pauses do not count)
    exit_code: int = 0
    signal: int | None = None  # dies of this signal instead of exiting
    cpu_cores: float = 1.0
    rss_bytes: int = 50 * MB
    output_ratio: float = 1.0  # output size over input size, written as it runs
    writes_output: bool = True  # exit 0 with no output is a failure the scheduler must catch
    ignore_term: bool = False  # only SIGKILL (after the grace period) ends it
    start_error: SpawnError | None = None
    start_seconds: float = 0.0  # fake seconds its start takes (a cluster's round trip)
    rss_growth: float = 0.0  # bytes per fake second of running, on top of rss_bytes
    rss_max: int | None = None  # where the growth stops
    ffmpeg: bool = False  # samples carry ffmpeg's media progress, as the ffmpeg probe gives it
    read_ahead: float = 0.0  # the read offset runs this fraction of the input ahead of the work
    node: str | None = None  # several nodes: the one it runs on (None: the next, round-robin)


@dataclass
class _Job:
    spec: JobSpec
    script: Script
    on_exit: ExitCallback
    pid: int
    ran: float = 0.0  # fake seconds run before the current stretch
    since: float | None = None  # start of the current running stretch (None: paused)
    timer: FakeTimer | None = None
    kill_timer: FakeTimer | None = None
    terminated: bool = False
    node: str = NODE

    def rss(self, ran: float) -> int:
        """Its memory after `ran` fake seconds of running (a paused job does not grow)."""
        script = self.script
        grown = int(script.rss_bytes + script.rss_growth * ran)
        return grown if script.rss_max is None else min(grown, script.rss_max)


@dataclass
class FakeRunner(Runner):  # pylint: disable=too-many-instance-attributes  # a test double's knobs
    """Runs scripted jobs on one fake node; `scripts(spec, attempt)` says what each does."""

    clock: FakeClock
    scripts: Callable[[JobSpec, int], Script] = lambda spec, attempt: Script()
    stats_of: NodeStats = field(default_factory=lambda: NodeStats(node=NODE,
                                                                  logical_cores=8,
                                                                  cpu_percent=10.0,
                                                                  total_memory=10 * GB,
                                                                  available_memory=9 * GB,
                                                                  free_disk=100 * GB,
                                                                  disk_total=200 * GB))
    running: dict[int, _Job] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    paused: set[int] = field(default_factory=set)
    peak: int = 0  # the most jobs ever running at once
    memory_limit: int | None = None  # a fake cgroup: the node's memory is this less the jobs'
    oom_kills: int = 0  # jobs the fake kernel killed for going over `memory_limit`
    closed: bool = False
    #: Several nodes: each one's figures with none of our jobs running, by name (empty: the
    #: one node `stats_of`). Their CPU and memory in use grow with the jobs running there.
    nodes: dict[str, NodeStats] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)  # set aside or lost: given no more jobs
    failing: set[str] = field(default_factory=set)  # every job there exits 1 (no ffmpeg there)
    lost: set[str] = field(default_factory=set)  # gone for good: no figures from them any more
    bus: ev.EventBus | None = None  # where `set_node_state` tells the run
    _pids: itertools.count = field(default_factory=lambda: itertools.count(4000))
    _turn: itertools.count = field(default_factory=itertools.count)

    def node(self, name: str | None = None, /, **figures: float) -> None:
        """Change a node's figures (available_memory=..., free_disk=...): the one node's, or
        node `name`'s of several."""
        if name is None:
            self.stats_of = dataclasses.replace(self.stats_of, **figures)
        else:
            self.nodes[name] = dataclasses.replace(self.nodes[name], **figures)

    def set_node_state(self, name: str, state: ev.NodeState, failures: int = 0) -> None:
        """What a cluster runner tells of a node: set aside (QUARANTINED) or LOST take it out
        of the round (a lost one's figures go too), UP puts it back; published on `bus`."""
        if state is ev.NodeState.UP:
            self.down.discard(name)
        else:
            self.down.add(name)
        if self.bus is not None:
            port = 40000 + sorted(self.nodes).index(name)
            self.bus.publish(
                ev.NodeStateChanged(time=self.clock.now(),
                                    node=name,
                                    state=state,
                                    failures=failures,
                                    address=f"tcp://127.0.0.1:{port}"))
        if state is ev.NodeState.LOST:
            self.lost.add(name)

    def _place(self, script: Script) -> str:
        """Where a job runs: its script's node, else the next node that takes jobs."""
        if not self.nodes:
            return NODE
        if script.node is not None:
            return script.node
        up = [name for name in sorted(self.nodes) if name not in self.down]
        if not up:
            raise SpawnError("no node takes jobs")
        return up[next(self._turn) % len(up)]

    async def start(self, spec: JobSpec, on_exit: ExitCallback) -> Started:
        attempt = self.attempts[spec.job_id] = self.attempts.get(spec.job_id, 0) + 1
        script = self.scripts(spec, attempt)
        await asyncio.sleep(0)  # a real start takes at least a turn of the loop
        if script.start_seconds:
            await self.clock.sleep(script.start_seconds)
        if script.start_error is not None:
            raise script.start_error
        node = self._place(script)
        if node in self.failing:
            script = dataclasses.replace(script, exit_code=1, writes_output=False)
        job = _Job(spec, script, on_exit, next(self._pids), since=self.clock.now(), node=node)
        job.timer = self.clock.call_later(script.seconds, self._end, spec.job_id, None)
        self.running[spec.job_id] = job
        self.peak = max(self.peak, len(self.running))
        return Started(node, job.pid)

    def _ran(self, job: _Job) -> float:
        return job.ran + (self.clock.now() - job.since if job.since is not None else 0.0)

    def _end(self, job_id: int, sig: int | None) -> None:
        job = self.running.pop(job_id, None)
        if job is None:
            return
        for timer in (job.timer, job.kill_timer):
            if timer is not None:
                timer.cancel()
        self.paused.discard(job_id)
        script, spec = job.script, job.spec
        sig = sig if sig is not None else script.signal
        code = None if sig is not None else script.exit_code
        if code == 0 and script.writes_output and spec.temp_output_path is not None:
            spec.temp_output_path.write_bytes(
                spec.input_path.read_bytes()[:int(script.output_ratio * spec.input_size)])
        ran = self._ran(job)
        job.on_exit(job_id, ExitStatus(code, sig, script.cpu_cores * ran, job.rss(ran)))

    def restart(self, job_id: int, node: str) -> None:
        """What a cluster does when a running job's node is lost: the job starts over from
        nothing on `node`, with a new pid, and the runner tells its owner (`on_restart`)."""
        job = self.running[job_id]
        for timer in (job.timer, job.kill_timer):
            if timer is not None:
                timer.cancel()
        job.node, job.pid, job.ran, job.since = node, next(self._pids), 0.0, self.clock.now()
        job.kill_timer = None
        job.timer = self.clock.call_later(job.script.seconds, self._end, job_id, None)
        self.paused.discard(job_id)
        if self.on_restart is not None:
            self.on_restart(job_id, Started(node, job.pid))

    def pause(self, job_id: int) -> None:
        job = self.running.get(job_id)
        if job is None or job.since is None:
            return
        job.ran, job.since = self._ran(job), None
        if job.timer is not None:
            job.timer.cancel()
        self.paused.add(job_id)

    def resume(self, job_id: int) -> None:
        job = self.running.get(job_id)
        if job is None or job.since is not None:
            return
        job.since = self.clock.now()
        job.timer = self.clock.call_later(job.script.seconds - job.ran, self._end, job_id, None)
        self.paused.discard(job_id)

    def terminate(self, job_id: int, grace: float) -> None:
        job = self.running.get(job_id)
        if job is None:
            return
        if not job.script.ignore_term:
            self.clock.call_later(0, self._end, job_id, signal.SIGTERM)
        elif job.kill_timer is None or job.kill_timer.when > self.clock.now() + grace:
            if job.kill_timer is not None:  # a second ask with less grace: sooner, as locally
                job.kill_timer.cancel()
            self.resume(job_id)  # SIGCONT comes with SIGTERM
            job.kill_timer = self.clock.call_later(grace, self._end, job_id, signal.SIGKILL)

    def kill_all(self) -> None:
        for job_id in list(self.running):
            self.clock.call_later(0, self._end, job_id, signal.SIGKILL)

    def close(self) -> None:
        self.closed = True

    def _used(self) -> int:
        return sum(job.rss(self._ran(job)) for job in self.running.values())

    def _oom(self) -> None:
        """The fake kernel: over the limit, the biggest job dies of SIGKILL."""
        if self.memory_limit is None or not self.running or self._used() <= self.memory_limit:
            return
        biggest = max(self.running.values(), key=lambda job: job.rss(self._ran(job)))
        self.oom_kills += 1
        self._end(biggest.spec.job_id, signal.SIGKILL)

    def sample(self) -> dict[int, ProcessSample]:
        self._oom()
        samples = {}
        for job_id, job in self.running.items():
            spec, script = job.spec, job.script
            done = min(1.0, self._ran(job) / script.seconds) if script.seconds > 0 else 1.0
            samples[job_id] = ProcessSample(
                job_id=job_id,
                node=job.node,
                pid=job.pid,
                cpu_cores=script.cpu_cores if job.since is not None else 0.0,
                rss_bytes=job.rss(self._ran(job)),
                processes=1,
                read_offset=int(min(1.0, done + script.read_ahead) * spec.input_size),
                output_bytes=int(done * script.output_ratio * spec.input_size),
                progress=Progress(ProgressSource.FFMPEG, min(RUNNING_CAP, done))
                if script.ffmpeg else None)
        return samples

    def stats(self) -> dict[str, NodeStats]:
        if self.nodes:
            return {name: self._loaded(name) for name in self.nodes if name not in self.lost}
        if self.memory_limit is None:
            return {NODE: self.stats_of}
        self._oom()
        available = max(0, self.memory_limit - self._used())
        return {
            NODE:
            dataclasses.replace(self.stats_of,
                                total_memory=self.memory_limit,
                                available_memory=available,
                                memory_source=CapacitySource.CGROUP)
        }

    def _loaded(self, name: str) -> NodeStats:
        """Node `name`'s figures with the jobs running there: their cores on its CPU, their
        memory out of what is available."""
        base = self.nodes[name]
        here = [job for job in self.running.values() if job.node == name]
        busy = sum(job.script.cpu_cores for job in here if job.since is not None)
        used = sum(job.rss(self._ran(job)) for job in here)
        return dataclasses.replace(
            base,
            cpu_percent=min(100.0, base.cpu_percent + 100.0 * busy / max(1, base.logical_cores)),
            available_memory=max(0, base.available_memory - used))


def several_nodes(*names: str, cores: int = 4, memory: int = 8 * GB) -> dict[str, NodeStats]:
    """Figures of nodes `names` alike (a FakeRunner's `nodes`): `cores` each, `memory` each
    (7/8 of it available at rest), a shared output filesystem of 200 GB with 100 free."""
    return {
        name:
        NodeStats(node=name,
                  logical_cores=cores,
                  cpu_percent=2.0,
                  total_memory=memory,
                  available_memory=memory * 7 // 8,
                  free_disk=100 * GB,
                  disk_total=200 * GB)
        for name in names
    }


@dataclass
class FakeRun:
    """An orchestrator on a fake runner and clock, with its recorder and task."""

    orchestrator: Orchestrator
    runner: FakeRunner
    clock: FakeClock
    recorder: Recorder
    task: asyncio.Task

    def state(self, job_id: int) -> ev.JobState:
        """The scheduler's current state of a job."""
        return self.orchestrator.jobs[job_id].state

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 600.0) -> None:
        """Advance fake time until `predicate()` holds (fails after `timeout` fake seconds)."""
        await self.clock.run_until(predicate, timeout)

    async def result(self, timeout: float = 3600.0) -> int:
        """Run to the end in fake time; the run's exit code."""
        await self.clock.run_until(self.task.done, timeout, what="the end of the run")
        return self.task.result()


async def start_fake_run(plan: Plan,
                         scripts: Callable[[JobSpec, int], Script] | Script | None = None,
                         *,
                         nodes: Sequence[str] = (),
                         **kwargs) -> FakeRun:
    """Start an orchestrator for `plan` on a fake runner; `scripts` is one Script for every job
    or a function of (spec, attempt); `nodes` names several fake nodes (`several_nodes`)."""
    clock = FakeClock()
    if isinstance(scripts, Script):
        script = scripts
        runner = FakeRunner(clock, lambda spec, attempt: script)
    else:
        runner = FakeRunner(clock, scripts) if scripts is not None else FakeRunner(clock)
    bus = ev.EventBus()
    runner.bus = bus
    if nodes:
        runner.nodes = several_nodes(*nodes)
    recorder = Recorder()
    bus.add_listener(recorder)
    orchestrator = Orchestrator(plan, runner, bus, clock=clock, **kwargs)
    task = asyncio.create_task(orchestrator.run())
    return FakeRun(orchestrator, runner, clock, recorder, task)
