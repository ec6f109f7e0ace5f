"""The scheduler: launches, steers and accounts for every job, coordinating its parts.

The limit is `limits.LimitPolicy`'s, the queue and its bytes `JobQueue`'s, samples and pressure
`Monitor`'s, time the injected `Clock`'s; processes are touched only through a `Runner`, and the
world hears only events on an `EventBus`. Commands (pause, resume, kill, requeue, pause all, set
limit, shutdown) are plain method calls made on the loop's thread.
"""

from __future__ import annotations

import asyncio
import collections
import os

from orch_tui.core import events as ev
from orch_tui.core.calibration import CalibrationMeter, calibrated_profile, typical_input_size
from orch_tui.core.clock import Clock, LoopClock, wait_at_most
from orch_tui.core.errors import SpawnError
from orch_tui.core.events import JobState, LimitSource, NoticeLevel, PauseReason, StopReason
from orch_tui.core.fsutil import file_size
from orch_tui.core.job import Job
from orch_tui.core.jobqueue import JobQueue
from orch_tui.core.limits import LimitPolicy, capacity, cluster
from orch_tui.core.monitor import Monitor
from orch_tui.core.outputs import publish_output, unlink_temp
from orch_tui.core.plan import Plan
from orch_tui.core.runner import ExitStatus, Runner
from orch_tui.core.scaling import ProcessProfile, ScalingDecision, SystemCapacity
from orch_tui.core.statedir import RunTemp, StateDir


class Orchestrator:  # pylint: disable=too-many-instance-attributes  # the run's state, in one place
    """Runs a `Plan` through a `Runner`, publishing everything it does on `bus`."""

    def __init__(self,
                 plan: Plan,
                 runner: Runner,
                 bus: ev.EventBus,
                 *,
                 max_procs: int | None = None,
                 overwrite: bool = False,
                 done_before: frozenset[int] = frozenset(),
                 profile: ProcessProfile | None = None,
                 state: StateDir | None = None,
                 clock: Clock | None = None) -> None:
        self.plan, self.runner, self.bus = plan, runner, bus
        self._config = plan.config
        self._overwrite, self._done_before, self._seed_profile = overwrite, done_before, profile
        self._state, self._own_state = state, state is None
        self._temp: RunTemp | None = None
        self._clock = clock or LoopClock()
        self._loop = asyncio.get_running_loop()
        self.jobs: dict[int, Job] = {spec.job_id: Job(spec) for spec in plan.jobs}
        self._queue = JobQueue(lambda job_id: self.jobs[job_id].spec.input_size)
        self._mean_input = typical_input_size([spec.input_size for spec in plan.jobs])
        # Insertion-ordered set of jobs holding a process: launch checks stay O(1) per job.
        self._active_ids: dict[int, None] = {}
        # Jobs whose start is in flight: they count against the limit before they run.
        self._launching: set[int] = set()
        self._starts: set[asyncio.Task[bool]] = set()
        self._crash: BaseException | None = None
        self._policy = LimitPolicy(plan.config.resources, fixed=max_procs)
        self._monitor = Monitor(runner, bus, self._clock, plan.config.resources)
        self._wake = asyncio.Event()
        self.paused_all = self.halted = self.stopping = self._interrupted = False
        self._consecutive_failures = 0
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
        return [self.jobs[job_id] for job_id in self._active_ids]

    def _set_state(self,
                   job: Job,
                   state: JobState,
                   reason: str = "",
                   stop: StopReason | None = None) -> None:
        previous, job.state, job.reason = job.state, state, reason
        if state.active:
            self._active_ids[job.spec.job_id] = None
        else:
            self._active_ids.pop(job.spec.job_id, None)
        self.bus.publish(job.changed(self._now(), previous, stop))

    def _notice(self, level: NoticeLevel, message: str) -> None:
        self.bus.publish(ev.Notice(time=self._now(), level=level, message=message))

    def _publish_limit(self, change: ev.LimitChanged | None) -> None:
        if change is not None:
            self.bus.publish(change)
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
            self._prepare()
            if self._queue and not self.stopping:
                if self._policy.fixed is not None:
                    self._publish_limit(self._policy.start_fixed(self._now()))
                elif self._seed_profile is not None:
                    self._calibrated(self._seed_profile, LimitSource.PREVIOUS_RUN)
                else:
                    await self._calibrate()
                await self._drain()
        finally:
            sampler.cancel()
            for task in self._starts:
                task.cancel()
            self.runner.close()
            if self._state is not None:
                self._state.release_run_temp()  # what killed jobs left half-written goes too
                if self._own_state:
                    self._state.close()
        return self._finish()

    def _prepare(self) -> None:
        """Open the private state folder, drop the temporary outputs of dead runs, make this
        run's own, mark skips, queue the rest."""
        if self._state is None:
            self._state = StateDir.open(self._config.directories.output_dir)
        for name in self._state.remove_dead_runs():
            self._notice(
                NoticeLevel.INFO, f"removed the temporary outputs of an interrupted run ({name}): "
                "its jobs run again")
        if any(spec.temp_output_path is not None for spec in self.plan.jobs):
            self._temp = self._state.make_run_temp(self.plan.run_token)
        inputs = self.plan.inputs
        for job in self.jobs.values():
            if job.spec.job_id in self.plan.existing and not self._overwrite:
                self._set_state(job, JobState.SKIPPED, "output exists")
            elif job.spec.job_id in self._done_before:
                self._set_state(job, JobState.SKIPPED, "done in a previous run")
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
                             input_bytes=inputs.total_size))
        for entry in inputs.problems:
            self._notice(NoticeLevel.WARNING,
                         f"input {entry.problem}: {entry.path} (list line {entry.line})")
        self._monitor.prepare()

    def _finish(self) -> int:
        counts: dict[str, int] = collections.Counter(job.state.value for job in self.jobs.values())
        counts["missing"] += len(self.plan.inputs.problems)
        bad = sum(counts[s.value] for s in (JobState.FAILED, JobState.KILLED, JobState.MISSING))
        unfinished = sum(1 for job in self.jobs.values() if not job.state.finished)
        code = 1 if bad or unfinished else 0
        self.bus.publish(
            ev.RunFinished(time=self._now(),
                           counts=dict(counts),
                           wall_seconds=self._now() - self._started,
                           exit_code=code,
                           interrupted=self._interrupted))
        return code

    def _may_launch(self) -> bool:
        return (not self.paused_all and not self.halted and not self.stopping
                and self._monitor.guard.may_launch())

    def _launch_ready(self) -> None:
        while (self._queue and len(self._active_ids) + len(self._launching) < self.limit
               and self._may_launch()):
            job = self.jobs[self._queue.pop()]
            self._launching.add(job.spec.job_id)  # counted before its start is awaited
            task = asyncio.create_task(self._start(job))
            self._starts.add(task)
            task.add_done_callback(self._start_done)

    def _start_done(self, task: asyncio.Task[bool]) -> None:
        self._starts.discard(task)
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            self._crash = task.exception()  # raised by the run, as when starts were inline
        self._wake.set()

    async def _drain(self) -> None:
        while True:
            self._wake.clear()
            if self._crash is not None:
                raise self._crash
            self._launch_ready()
            if not (self._active_ids or self._launching) and (not self._queue or self.halted
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
            self._launching.add(job.spec.job_id)
            if not await self._start(job):
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
                self._calibrated(result[0], result[2], result[1])
                return

    def _calibrated(self,
                    profile: ProcessProfile,
                    source: LimitSource,
                    ratio: float | None = None) -> None:
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
                                   source=source))

    # --- starting and ending jobs

    async def _start(self, job: Job) -> bool:
        """Launch `job` (already counted as launching); False when it could not start."""
        job_id = job.spec.job_id
        try:
            job.begin_attempt(self._now(), self._loop.create_future())
            assert self._state is not None
            if not self._state.intact():
                self._hold(job)
                self.stop_launching(f"the state folder {self._state.path} was removed or "
                                    "replaced during the run: no more launches; running jobs "
                                    "finish")
                return False
            unlink_temp(self._temp, job.spec)
            if not os.path.exists(job.spec.input_path):
                job.pid = None
                self._finish_job(job, JobState.MISSING, "input vanished before its job started",
                                 StopReason.VANISHED)
                return False
            started = await self.runner.start(job.spec, self._on_exit)
        except SpawnError as exc:
            job.pid = None
            if exc.systemic:
                self._hold(job)
                self.stop_launching(f"job {job_id} ({job.spec.name}): {exc}: no more launches; "
                                    "running jobs finish; fix it and run the same command again")
                return False
            job.exit_code = 127
            self._finish_job(job, JobState.FAILED, str(exc), StopReason.NOT_STARTED)
            return False
        finally:
            self._launching.discard(job_id)
        job.pid, job.node = started.pid, started.node
        self._set_state(job, JobState.RUNNING, f"attempt {job.attempt}" if job.attempt > 1 else "")
        if self._config.jobs.timeout is not None:
            self._arm_timeout(job, self._config.jobs.timeout)
        if job.stop is not None:  # killed or shut down while it was starting
            self.runner.terminate(job_id, self._config.jobs.kill_grace)
        elif self.paused_all:
            self._pause(job, PauseReason.ALL)
        return True

    def _arm_timeout(self, job: Job, seconds: float) -> None:
        job.deadline = self._now() + seconds
        job.timeout_handle = self._clock.call_later(seconds, self._on_timeout, job.spec.job_id)

    def _disarm_timeout(self, job: Job) -> None:
        if job.timeout_handle is not None:
            job.timeout_handle.cancel()
            job.timeout_handle = None
            job.timeout_left = max(0.0, (job.deadline or self._now()) - self._now())

    def _on_timeout(self, job_id: int) -> None:
        job = self.jobs[job_id]
        job.timeout_handle = None
        if job.state.active and job.stop is None:
            job.stop = StopReason.TIMEOUT
            self.runner.terminate(job_id, self._config.jobs.kill_grace)

    def _on_exit(self, job_id: int, status: ExitStatus) -> None:
        job = self.jobs[job_id]
        self._disarm_timeout(job)
        job.timeout_left = None
        job.ended = self._now()
        job.exit_code, job.signal = status.exit_code, status.signal
        job.cpu_seconds = max(job.cpu_seconds, status.cpu_seconds)
        job.peak_rss = max(job.peak_rss, status.max_rss_bytes)
        if job.stop in (StopReason.OPERATOR, StopReason.INTERRUPTED):
            self._finish_job(job, JobState.KILLED, job.stop.value, job.stop)
        elif job.stop is StopReason.TIMEOUT:
            self._finish_job(job, JobState.FAILED,
                             f"timeout after {self._config.jobs.timeout:g}s ({status.describe()})",
                             StopReason.TIMEOUT)
        elif not status.ok:
            stop = StopReason.SIGNAL if status.signal is not None else StopReason.EXIT
            self._finish_job(job, JobState.FAILED, status.describe(), stop)
        elif job.spec.temp_output_path is not None and (problem := self._publish(job)):
            self._finish_job(job, JobState.FAILED, problem, StopReason.NO_OUTPUT)
        else:
            self._finish_job(job, JobState.SUCCEEDED, "")

    def _publish(self, job: Job) -> str:
        assert self._temp is not None and self._state is not None
        return publish_output(self._temp, self._state, job.spec)

    def _hold(self, job: Job) -> None:
        """Put a job that could not start through no fault of its own back at the head of the
        queue, as if it had never been taken."""
        job.attempt -= 1
        job.started = None
        self._queue.push_front(job.spec.job_id)
        if job.done is not None and not job.done.done():
            job.done.set_result(None)

    def stop_launching(self, message: str) -> None:
        """Something every job needs is broken (a full filesystem, the journal, the state
        folder): launch nothing more, let running jobs finish, tell the operator once."""
        if self.halted:
            return
        self.halted = True
        self._notice(NoticeLevel.ERROR, message)
        self._wake.set()

    def _finish_job(self,
                    job: Job,
                    state: JobState,
                    reason: str,
                    stop: StopReason | None = None) -> None:
        spec = job.spec
        if job.ended is None:
            job.ended = self._now()
        if state is not JobState.SUCCEEDED:
            unlink_temp(self._temp, spec)
        self._set_state(job, state, reason, stop)
        if job.done is not None and not job.done.done():
            job.done.set_result(None)
        if state is JobState.SUCCEEDED:
            self._consecutive_failures = 0
            wall = job.ended - (job.started or job.ended)
            if wall > 0 and self._monitor.calibrating is None:
                ratio = (file_size(spec.output_path) /
                         spec.input_size if spec.input_size and spec.temp_output_path else None)
                self._publish_limit(
                    self._policy.learn(self._now(), job.cpu_seconds / wall, job.peak_rss, ratio,
                                       self._queue.mean_size(self._mean_input), self._capacity()))
        elif state is JobState.FAILED:
            self._consecutive_failures += 1
            self._maybe_retry(job)
            halt = self._config.jobs.halt_after_failures
            if halt and self._consecutive_failures >= halt and not self.halted:
                self.halted = True
                self._notice(
                    NoticeLevel.ERROR,
                    f"{self._consecutive_failures} jobs failed in a row: no more "
                    "launches (jobs.halt_after_failures); running jobs finish")
        self._wake.set()

    def _maybe_retry(self, job: Job) -> None:
        retries = self._config.jobs.retries
        if self.stopping or job.attempt > retries:
            return
        self._queue.push(job.spec.job_id)
        self._set_state(job, JobState.QUEUED, f"retry {job.attempt}/{retries} after: {job.reason}")

    # --- monitoring

    def sweep(self) -> None:
        """Sample every running job and the nodes once; apply memory and disk pressure."""
        actions = self._monitor.sweep(self.jobs, self._active(), len(self._queue),
                                      not (self.halted or self.stopping), self.projected_disk_use())
        if actions.pause is not None:
            self._pause(self.jobs[actions.pause], PauseReason.MEMORY)
        if actions.resume is not None:
            self._resume(self.jobs[actions.resume])
        if actions.give_up is not None:
            self.stop_launching(actions.give_up)
        self._wake.set()

    def projected_disk_use(self) -> int:
        """Bytes the outputs still to be written will take: queued jobs in full, running jobs'
        remainder, at the learned output/input ratio."""
        ratio = self._policy.output_ratio()
        total = int(ratio * self._queue.bytes)
        for job in self._active():
            written = job.last.output_bytes if job.last else 0
            total += max(0, int(ratio * job.spec.input_size) - written)
        return total

    # --- commands

    def _pause(self, job: Job, by: PauseReason) -> bool:
        if job.state is not JobState.RUNNING:
            return False
        self.runner.pause(job.spec.job_id)
        self._disarm_timeout(job)
        job.paused_by = by
        self._set_state(job, JobState.PAUSED, by.value)
        return True

    def _resume(self, job: Job) -> bool:
        if job.state is not JobState.PAUSED:
            return False
        self.runner.resume(job.spec.job_id)
        job.paused_by = None
        if job.timeout_left is not None and job.stop is None:
            self._arm_timeout(job, job.timeout_left)
            job.timeout_left = None
        self._set_state(job, JobState.RUNNING, "resumed")
        return True

    def pause(self, job_id: int) -> bool:
        """SIGSTOP one running job's process tree; it keeps its slot."""
        return self._pause(self.jobs[job_id], PauseReason.OPERATOR)

    def resume(self, job_id: int) -> bool:
        """SIGCONT one paused job's process tree."""
        return self._resume(self.jobs[job_id])

    def kill(self, job_id: int) -> bool:
        """End a job: a running or paused one gets SIGTERM (SIGKILL after the grace period) and
        ends `killed`; a queued one is taken off the queue as `killed` (it can be requeued)."""
        job = self.jobs[job_id]
        if job.state.active or job_id in self._launching:
            if job.stop is None or job.stop is StopReason.TIMEOUT:
                job.stop = StopReason.OPERATOR
            self.runner.terminate(job_id, self._config.jobs.kill_grace)
            return True
        if job.state is JobState.QUEUED:
            self._queue.remove(job_id)
            self._finish_job(job, JobState.KILLED, StopReason.OPERATOR.value, StopReason.OPERATOR)
            return True
        return False

    def requeue(self, job_id: int) -> bool:
        """Put a failed or killed job back at the end of the queue."""
        job = self.jobs[job_id]
        if job.state not in (JobState.FAILED, JobState.KILLED):
            return False
        self._queue.push(job_id)
        self._set_state(job, JobState.QUEUED, "requeued")
        self._wake.set()
        return True

    def pause_all(self) -> None:
        """No more launches, and every running job stopped (a starting one once it runs)."""
        self.paused_all = True
        for job in self._active():
            self._pause(job, PauseReason.ALL)
        self._notice(NoticeLevel.INFO, "paused: no launches, running jobs stopped")
        self._wake.set()

    def resume_all(self) -> None:
        """Undo pause all: continue every paused job (except those held for memory) and launch."""
        self.paused_all = False
        for job in self._active():
            if job.paused_by is not PauseReason.MEMORY:
                self._resume(job)
        self._notice(NoticeLevel.INFO, "resumed: launching again")
        self._wake.set()

    def set_limit(self, limit: int) -> None:
        """The operator's limit: it wins over learning from now on. Lowering it never kills a
        job; fewer start as running ones finish."""
        self._publish_limit(self._policy.operator(self._now(), limit))

    def shutdown(self, *, kill: bool = True, interrupted: bool = True) -> None:
        """Stop launching; with `kill`, end every active job (SIGTERM, SIGKILL after grace) and
        every job still starting once it runs."""
        self.stopping = True
        self._interrupted = self._interrupted or interrupted
        if kill:
            for job_id in [*self._active_ids, *self._launching]:
                self.jobs[job_id].stop = StopReason.INTERRUPTED
                self.runner.terminate(job_id, self._config.jobs.kill_grace)
        self._wake.set()

    def active_count(self) -> int:
        """How many jobs hold a process (running or paused); not those still starting."""
        return len(self._active_ids)
