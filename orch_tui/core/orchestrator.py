"""The scheduler: launches, steers and accounts for every job, coordinating its parts.

The limit is `limits.LimitPolicy`'s, the queue and its bytes `JobQueue`'s, samples and pressure
`Monitor`'s, time the injected `Clock`'s; processes are touched only through a `Runner`, and the
world hears only events on an `EventBus`. Commands (pause, resume, kill, requeue, pause all, set
limit, shutdown) are plain method calls made on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping

from orch_tui.core import events as ev
from orch_tui.core.calibration import CalibrationMeter, calibrated_profile, typical_input_size
from orch_tui.core.clock import Clock, LoopClock, wait_at_most
from orch_tui.core.commands import OperatorCommands
from orch_tui.core.config import KeepLogs
from orch_tui.core.eager import start_eagerly
from orch_tui.core.eta import EtaModel
from orch_tui.core.events import JobState, LimitSource, NoticeLevel, PauseReason, StopReason
from orch_tui.core.fsutil import file_size
from orch_tui.core.job import Job
from orch_tui.core.jobqueue import JobQueue
from orch_tui.core.limits import LimitPolicy, capacity, cluster
from orch_tui.core.lifecycle import Lifecycle
from orch_tui.core.monitor import Monitor, projected_disk_use
from orch_tui.core.plan import Plan
from orch_tui.core.runner import Runner
from orch_tui.core.scaling import ProcessProfile, ScalingDecision, SystemCapacity
from orch_tui.core.statedir import StateDir
from orch_tui.core.tally import Counts


# The run's state, in one place.
# pylint: disable-next=too-many-instance-attributes
class Orchestrator(OperatorCommands):
    """Runs a `Plan` through a `Runner`, publishing everything it does on `bus`."""

    # The run's parts, all keyword-only but plan, runner, bus.
    # pylint: disable-next=too-many-arguments
    def __init__(self,
                 plan: Plan,
                 runner: Runner,
                 bus: ev.EventBus,
                 *,
                 max_procs: int | None = None,
                 overwrite: bool = False,
                 done_before: frozenset[int] = frozenset(),
                 recovered: Mapping[int, ev.JobRecovered] | None = None,
                 profile: ProcessProfile | None = None,
                 state: StateDir | None = None,
                 clock: Clock | None = None,
                 adaptive: bool = False) -> None:
        self.plan, self.runner, self.bus = plan, runner, bus
        self._config = plan.config
        self._overwrite, self._done_before, self._seed_profile = overwrite, done_before, profile
        self._recovered = dict(recovered or {})
        self._own_state = state is None
        self._clock = clock or LoopClock()
        self._loop = asyncio.get_running_loop()
        self.jobs: dict[int, Job] = {spec.job_id: Job(spec) for spec in plan.jobs}
        self._queue = JobQueue(lambda job_id: self.jobs[job_id].spec.input_size)
        self._mean_input = typical_input_size([spec.input_size for spec in plan.jobs])
        self._life = Lifecycle(self.jobs, runner, bus, self._clock, plan.config.jobs, self._ended,
                               self._refused)
        self._life.state = state
        self._starts: set[asyncio.Future[bool]] = set()
        # Launching happens where a slot frees (see _ended) once the queue drains; _in_launch
        # keeps a start that fails at once (and so ends a job) from launching recursively.
        self._draining = self._in_launch = False
        self._crash: BaseException | None = None
        adaptive = adaptive or plan.config.resources.adaptive
        self._policy = LimitPolicy(plan.config.resources, fixed=max_procs, adaptive=adaptive)
        # --adaptive measures the rate of work as the ETA does, from the same events.
        self._work: EtaModel | None = None
        if adaptive:
            self._work = EtaModel({spec.job_id: spec.input_size for spec in plan.jobs}, {})
            bus.add_listener(self._work.apply)
        self._monitor = Monitor(runner, bus, self._clock, plan.config.resources)
        self._wake = asyncio.Event()
        self.paused_all = self.halted = self.stopping = self._interrupted = False
        self._stop_signal: int | None = None
        self._consecutive_failures = 0
        self._memory_requeues: dict[int, int] = {}  # attempts that do not count as retries
        #: Failed jobs queued for a retry not yet started: how their last attempt failed.
        self._retrying: dict[int, tuple[str, StopReason | None, str]] = {}
        self._started = self._clock.now()

    @property
    def limit(self) -> int:
        """How many jobs may hold a process at once."""
        return self._policy.limit

    @limit.setter
    def limit(self, value: int) -> None:
        # Assignable as before this was a property (the TUI's Controller protocol says so);
        # the operator's way is set_limit, which also tells everyone.
        self._policy.limit = value

    @property
    def decision(self) -> ScalingDecision | None:
        """The scaling decision behind the limit (None before calibration, or with --jobs)."""
        return self._policy.decision

    def _now(self) -> float:
        return self._clock.now()

    def _active(self) -> list[Job]:
        return [self.jobs[job_id] for job_id in self._life.active]

    def _notice(self, level: NoticeLevel, message: str) -> None:
        self.bus.publish(ev.Notice(time=self._now(), level=level, message=message))

    def _publish_limit(self, change: ev.LimitChanged | None) -> None:
        if change is not None:
            self.bus.publish(change)
            decision = self._policy.decision
            if decision is not None:  # a cluster packs jobs by what one job needs
                self.runner.set_requests(decision.cpu.per_process, int(decision.memory.per_process))
        self._wake.set()

    def _capacity(self) -> SystemCapacity:
        active = [job.last for job in self._active() if job.last]
        return capacity(cluster(self._monitor.nodes), sum(s.rss_bytes for s in active),
                        sum(s.output_bytes for s in active))

    # --- the run

    async def run(self) -> int:
        """Run every job to a final state; return 0 when all succeeded or were already done."""
        sampler = asyncio.create_task(self._monitor.run(self.sweep), name="orch-tui sampler")
        try:
            opened = await self._open_runner()
            if opened:
                self._prepare()
            if opened and self._queue and not self.stopping:
                if self._policy.fixed is not None:
                    self._publish_limit(self._policy.start_fixed(self._now()))
                elif self._seed_profile is not None:
                    self._calibrated(self._seed_profile, LimitSource.PREVIOUS_RUN)
                else:
                    await self._calibrate()
                await self._drain()
        finally:
            sampler.cancel()
            if self._work is not None:
                self.bus.remove_listener(self._work.apply)
            for task in self._starts:
                task.cancel()
            await self.runner.aclose()
            if self._life.state is not None:
                self._life.state.release_run_temp()  # what killed jobs left half-written goes too
                self._prune_logs(self._life.state)
                if self._own_state:
                    self._life.state.close()
        return self._finish()

    async def _open_runner(self) -> bool:
        """Open the runner (a cluster's: reach its scheduler); False when a stop asked meanwhile
        cancelled it. SIGTERM used to wait for an open that could hang on a peer that never
        answers."""
        opening = asyncio.ensure_future(self.runner.open())
        while not opening.done() and not self.stopping:
            self._wake.clear()
            waking = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({opening, waking}, return_when=asyncio.FIRST_COMPLETED)
            waking.cancel()
        if not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
            return False
        opening.result()  # its refusal (ClusterError), as before
        return True

    def _prune_logs(self, state: StateDir) -> None:
        """keep_logs: failed: once every job is final (the run is over, so no operator is
        reading a running job's log), delete the logs of succeeded and skipped jobs. A
        succeeded job cannot be requeued (only failed, killed and cancelled ones can), so no
        log of a job that will run again goes; every other state keeps its log."""
        if self._config.jobs.keep_logs is not KeepLogs.FAILED:
            return
        for job in self.jobs.values():
            if job.state in (JobState.SUCCEEDED, JobState.SKIPPED):
                state.remove_log(job.spec.log_path)
        state.remove_empty_shards()

    def _prepare(self) -> None:
        """Open the private state folder, drop the temporary outputs of dead runs, make this
        run's own, mark skips, queue the rest."""
        if self._life.state is None:
            self._life.state = StateDir.open(self._config.directories.output_dir)
        state = self._life.state
        for name in state.remove_dead_runs():
            self._notice(
                NoticeLevel.INFO, f"removed the temporary outputs of an interrupted run ({name}): "
                "its jobs run again")
        if any(spec.temp_output_path is not None for spec in self.plan.jobs):
            self._life.temp = state.make_run_temp(self.plan.run_token)
        inputs = self.plan.inputs
        for job in self.jobs.values():
            if job.spec.job_id in self.plan.existing and not self._overwrite:
                self._recover(job)
                self._life.set_state(job, JobState.SKIPPED, "output exists")
            elif job.spec.job_id in self._done_before:
                self._life.set_state(job, JobState.SKIPPED, "done in a previous run")
            else:
                self._queue.push(job.spec.job_id)
        self._policy.runnable = runnable = len(self._queue)
        self.bus.publish(
            ev.PreflightDone(time=self._now(),
                             total=len(self.jobs) + len(inputs.problems),
                             runnable=runnable,
                             skipped=len(self.jobs) - runnable,
                             missing=len(inputs.problems),
                             duplicates=len(inputs.duplicates),
                             input_bytes=inputs.total_size,
                             problems=tuple((entry.line, entry.location, entry.problem or "")
                                            for entry in inputs.problems[:ev.PROBLEMS_SHOWN])))
        for entry in inputs.problems:
            self._notice(NoticeLevel.WARNING,
                         f"input {entry.problem}: {entry.path} (list line {entry.line})")
        self._monitor.prepare()

    def _recover(self, job: Job) -> None:
        """Tell a success the last run died before recording (session.recovered_before): the
        joblog writes its line, and run.log and the screens say so."""
        found = self._recovered.pop(job.spec.job_id, None)
        if found is None:
            return
        self.bus.publish(dataclasses.replace(found, time=self._now()))
        when = time.strftime("%H:%M:%S", time.localtime(found.ended_wall))
        self._notice(
            NoticeLevel.INFO, f"#{job.spec.job_id} {job.spec.name} succeeded at {when} "
            "in the run that was killed before recording it: counted as done, its joblog line "
            "written now")

    def _finish(self) -> int:
        counts = Counts.of((job.state for job in self.jobs.values()),
                           missing=len(self.plan.inputs.problems))
        code = counts.exit_code if self._stop_signal is None else 128 + self._stop_signal
        self.bus.publish(
            ev.RunFinished(time=self._now(),
                           counts=counts.as_dict(),
                           wall_seconds=self._now() - self._started,
                           exit_code=code,
                           interrupted=self._interrupted))
        return code

    def _may_launch(self) -> bool:
        return (not self.paused_all and not self.halted and not self.stopping
                and self._monitor.guard.may_launch())

    def _launch_ready(self) -> None:
        """Start queued jobs while there is room, each at once, up to its first real wait (a
        local start has none: the child exists when this returns)."""
        if self._in_launch:
            return  # a start inside this loop ended a job: the loop below takes its slot
        self._in_launch = True
        try:
            while (self._queue and len(self._life.active) + len(self._life.launching) < self.limit
                   and self._may_launch() and self._crash is None):
                job = self.jobs[self._queue.pop()]
                self._retrying.pop(job.spec.job_id, None)
                self._life.launching.add(job.spec.job_id)  # counted before its start is awaited
                task = start_eagerly(self._life.start(job))
                self._starts.add(task)
                task.add_done_callback(self._start_done)
                if task.done():
                    self._note_crash(task)  # a bug: no more starts, the run raises it
        finally:
            self._in_launch = False

    def _start_done(self, task: asyncio.Future[bool]) -> None:
        self._starts.discard(task)
        self._note_crash(task)
        self._wake.set()

    def _note_crash(self, task: asyncio.Future[bool]) -> None:
        """A finished start that raised is a bug: the first one is raised by the run, as when
        starts were inline."""
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            self._crash = task.exception()

    async def _drain(self) -> None:
        self._draining = True
        while True:
            self._wake.clear()
            if self._crash is not None:
                raise self._crash
            self._launch_ready()
            if not (self._life.active or self._life.launching) and (not self._queue or self.halted
                                                                    or self.stopping):
                return  # pause all waits for the operator; halt and shutdown end the run
            await self._wake.wait()

    # --- calibration

    async def _calibrate(self) -> None:
        """Measure one real job through the stabilization window and derive the limit.

        A job that fails inside the window tells nothing about a normal job, so the next queued
        job is measured instead; the measured job is never run twice and keeps running after."""
        window = self._config.resources.stabilization_seconds
        while self._queue and not self.stopping and not self.halted:
            job = self.jobs[self._queue.pop()]
            self._retrying.pop(job.spec.job_id, None)
            self._life.launching.add(job.spec.job_id)
            if not await self._life.start(job):
                continue
            meter = CalibrationMeter(job.spec.input_size)
            self._monitor.calibrating = (job.spec.job_id, meter)
            self.bus.publish(
                ev.CalibrationStarted(time=self._now(), job_id=job.spec.job_id, window=window))
            assert job.done is not None
            await wait_at_most(self._clock, job.done, window)
            self._monitor.calibrating = None
            typical = (self._queue.bytes + job.spec.input_size) // (len(self._queue) + 1)
            result = calibrated_profile(job, meter, typical, self._now())
            if result is not None:
                basis = meter.output_basis() if result[2] is LimitSource.WINDOW else None
                self._calibrated(result[0], result[2], result[1], basis)
                if self._work is not None and job.started is not None:
                    alone = self._now() - job.started  # the job ran alone all along
                    if alone > 0:
                        self._policy.calibration_rate(self._work.state().work_done / alone)
                return

    def _calibrated(self,
                    profile: ProcessProfile,
                    source: LimitSource,
                    ratio: float | None = None,
                    basis: ev.OutputBasis | None = None) -> None:
        """Derive the limit from measured figures (or a previous run's, `ratio` None)."""
        if ratio is None:
            typical = self._queue.mean_size(self._mean_input)
            ratio = profile.output_bytes / typical if typical else 1.0
        decision, change = self._policy.calibrated(self._now(), profile, ratio, self._capacity(),
                                                   source)
        self._publish_limit(change)
        self.bus.publish(
            ev.CalibrationFinished(time=self._now(),
                                   profile=profile,
                                   decision=decision,
                                   source=source,
                                   output_basis=basis))

    # --- ending jobs

    def _refused(self, job: Job, message: str) -> None:
        """A start the machine refused: the job goes back to the head of the queue, as if it
        had never been taken, and nothing more launches."""
        self._queue.push_front(job.spec.job_id)
        self.stop_launching(message)

    def stop_launching(self, message: str) -> None:
        """Something every job needs is broken (a full filesystem, the journal, the state
        folder): launch nothing more, let running jobs finish, tell the operator once (an empty
        `message`: the runner told it already)."""
        if self.halted:
            return
        self.halted = True
        if message:
            self._notice(NoticeLevel.ERROR, message)
        self._wake.set()

    def _ended(self, job: Job, state: JobState) -> None:
        """What a job's end means for the run: learn from a success, retry or halt on
        failures."""
        if state is JobState.SUCCEEDED:
            self._consecutive_failures = 0
            spec, ended = job.spec, job.ended or self._now()
            wall = ended - (job.started or ended)
            if wall > 0 and self._monitor.calibrating is None:
                ratio = (file_size(spec.output_path) /
                         spec.input_size if spec.input_size and spec.temp_output_path else None)
                self._publish_limit(
                    self._policy.learn(self._now(), job.cpu_seconds / wall, job.peak_rss, ratio,
                                       self._queue.mean_size(self._mean_input), self._capacity()))
        elif state is JobState.QUEUED:  # requeued because memory stayed critical
            self._requeued_for_memory(job)
        elif state is JobState.FAILED:
            self._consecutive_failures += 1
            halt = self._config.jobs.halt_after_failures
            if halt and self._consecutive_failures >= halt and not self.halted:
                self.halted = True
                self._notice(
                    NoticeLevel.ERROR,
                    f"{self._consecutive_failures} jobs failed in a row: no more "
                    "launches (jobs.halt_after_failures); running jobs finish")
                self._give_up_retries()
            self._maybe_retry(job)
        self._wake.set()
        if self._draining:
            self._launch_ready()  # the freed slot now, not two turns of the loop later

    def _requeued_for_memory(self, job: Job) -> None:
        """Back at the head of the queue (it was the latest started), the limit lowered from the
        memory it reached; the operator hears both."""
        job_id = job.spec.job_id
        self._memory_requeues[job_id] = self._memory_requeues.get(job_id, 0) + 1
        if self.stopping:
            return
        self._queue.push_front(job_id)
        self._publish_limit(
            self._policy.memory_pressure(self._now(), job.peak_rss,
                                         self._queue.mean_size(self._mean_input), self._capacity()))
        self._notice(NoticeLevel.WARNING,
                     f"memory critical: job #{job_id} requeued, limit {self._policy.limit}")

    def _memory_kill(self, job_id: int, stop: StopReason) -> None:
        """Carry out the guard's kill: the job ends through its exit, which requeues or fails
        it according to `stop`."""
        job = self.jobs[job_id]
        if job.stop is not None:
            return
        job.stop = stop
        self._life.terminate(job_id)
        if stop is StopReason.MEMORY:
            self._notice(
                NoticeLevel.WARNING, f"memory critical: job #{job_id} runs alone and memory "
                "stays critical: stopping it (it fails: out of memory)")

    def _maybe_retry(self, job: Job) -> None:
        retries = self._config.jobs.retries
        counted = job.attempt - self._memory_requeues.get(job.spec.job_id, 0)
        if self.stopping or self.halted or counted > retries:
            return  # a halted run retries nothing: the failure stands
        self._queue.push(job.spec.job_id)
        stop = job.stop or (StopReason.SIGNAL if job.signal is not None else StopReason.EXIT)
        self._retrying[job.spec.job_id] = (job.reason, stop, job.detail)
        self._life.set_state(job, JobState.QUEUED,
                             f"retry {job.attempt}/{retries} after: {job.reason}")

    def _give_up_retries(self) -> None:
        """Halted: the retries still queued will never run, so each job's failure stands (it
        ran and failed: 'not run' would be false, and its joblog line is owed)."""
        for job_id, (reason, stop, detail) in list(self._retrying.items()):
            job = self.jobs[job_id]
            if job.state is JobState.QUEUED and job_id not in self._life.launching:
                self._queue.remove(job_id)
                self._life.finish(job, JobState.FAILED, reason, stop, detail)
        self._retrying.clear()

    # --- monitoring

    def sweep(self) -> None:
        """Sample every running job and the nodes once; apply memory and disk pressure."""
        actions = self._monitor.sweep(self.jobs, self._active(), len(self._queue),
                                      not (self.halted or self.stopping), self.projected_disk_use())
        if actions.pause is not None:
            self._life.pause(self.jobs[actions.pause], PauseReason.MEMORY)
        if actions.resume is not None:
            self._life.resume(self.jobs[actions.resume])
        if actions.give_up is not None:
            self.stop_launching(actions.give_up)
        if actions.requeue is not None:
            self._memory_kill(actions.requeue, StopReason.MEMORY_REQUEUED)
        if actions.fail is not None:
            self._memory_kill(actions.fail, StopReason.MEMORY)
        if self._work is not None and self._monitor.calibrating is None:
            running = sum(job.state is JobState.RUNNING for job in self._active())
            self._publish_limit(
                self._policy.adapt(self._now(),
                                   self._work.state().work_done, running, len(self._queue),
                                   not self._monitor.guard.may_launch()))
        self._wake.set()

    def projected_disk_use(self) -> int:
        """Bytes the outputs still to be written will take (see `monitor.projected_disk_use`)."""
        return projected_disk_use(self._policy.output_ratio(), self._queue.bytes, self._active())
