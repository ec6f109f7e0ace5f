"""The scheduler: calibrates, launches, steers and accounts for every job.

It owns the queue, the process limit and each job's state; it touches processes only through a
`Runner` and tells the world only through events on an `EventBus`. Commands (pause, resume,
kill, requeue, pause all, set limit, shutdown) are plain method calls made on the loop's thread.
"""

from __future__ import annotations

import asyncio
import os

from orch_tui.core import events as ev
from orch_tui.core.calibration import (CalibrationMeter, ProfileLearner, typical_input_size,
                                       whole_life_profile)
from orch_tui.core.errors import SpawnError
from orch_tui.core.events import JobState, LimitSource, NoticeLevel, PauseReason, StopReason
from orch_tui.core.fsutil import file_size
from orch_tui.core.job import Job
from orch_tui.core.jobqueue import JobQueue
from orch_tui.core.plan import JobSpec, Plan
from orch_tui.core.pressure import ActiveJob, PressureGuard
from orch_tui.core.runner import ExitStatus, NodeStats, ProcessSample, Runner
from orch_tui.core.scaling import ProcessProfile, ScalingDecision, SystemCapacity, compute_limit
from orch_tui.core.statedir import RunTemp, StateDir
from orch_tui.core.tally import Counts

#: Calibration samples at least this often, whatever the configured sample interval.
CALIBRATION_INTERVAL = 0.25


class Orchestrator:
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
                 state: StateDir | None = None) -> None:
        self.plan = plan
        self.runner = runner
        self.bus = bus
        self._config = plan.config
        self._max_procs = max_procs
        self._overwrite = overwrite
        self._done_before = done_before
        self._seed_profile = profile
        self._state = state
        self._own_state = state is None
        self._temp: RunTemp | None = None
        self._loop = asyncio.get_running_loop()
        self.jobs: dict[int, Job] = {spec.job_id: Job(spec) for spec in plan.jobs}
        # Keeps the queued jobs' input bytes: the typical input and the projected disk use
        # cost O(1) per job end and per sweep, not a pass over every job.
        self._queue = JobQueue(lambda job_id: self.jobs[job_id].spec.input_size)
        self._mean_input = typical_input_size([spec.input_size for spec in plan.jobs])
        # Insertion-ordered set of jobs holding a process: launch checks stay O(1) per job.
        self._active_ids: dict[int, None] = {}
        self._runnable = 0
        self.limit = 0  # set by calibration or --max-procs before anything launches
        self._manual_limit = max_procs is not None
        self.decision: ScalingDecision | None = None
        self._learner = ProfileLearner()
        self._calibrating: tuple[int, CalibrationMeter] | None = None
        self._wake = asyncio.Event()
        self.paused_all = False
        self.halted = False
        self.stopping = False
        self._interrupted = False
        self._consecutive_failures = 0
        self._guard = PressureGuard()
        self._sweep_failed = False
        self._stats: NodeStats | None = None
        self._started = self._loop.time()

    # --- helpers

    def _now(self) -> float:
        return self._loop.time()

    def _active(self) -> list[Job]:
        return [self.jobs[job_id] for job_id in self._active_ids]

    def _set_state(self,
                   job: Job,
                   state: JobState,
                   reason: str = "",
                   stop: StopReason | None = None) -> None:
        previous = job.state
        job.state = state
        job.reason = reason
        if state.active:
            self._active_ids[job.spec.job_id] = None
        else:
            self._active_ids.pop(job.spec.job_id, None)
        self.bus.publish(job.changed(self._now(), previous, stop))

    def _notice(self, level: NoticeLevel, message: str) -> None:
        self.bus.publish(ev.Notice(time=self._now(), level=level, message=message))

    def _set_limit(self,
                   limit: int,
                   source: LimitSource,
                   decision: ScalingDecision | None = None,
                   observations: int = 0) -> None:
        limit = max(1, limit)
        previous, self.limit = self.limit, limit
        if decision is not None:
            self.decision = decision
        if limit != previous or decision is not None:
            self.bus.publish(
                ev.LimitChanged(time=self._now(),
                                limit=limit,
                                previous=previous,
                                source=source,
                                decision=decision,
                                observations=observations))
        self._wake.set()

    # --- the run

    async def run(self) -> int:
        """Run every job to a final state; return 0 when all succeeded or were already done."""
        sampler = asyncio.create_task(self._sample_loop(), name="orch-tui sampler")
        try:
            self._prepare()
            if self._queue and not self.stopping:
                if self._max_procs is not None:
                    self._set_limit(self._max_procs, LimitSource.MAX_PROCS)
                elif self._seed_profile is not None:
                    self._use_profile(self._seed_profile)
                else:
                    await self._calibrate()
                await self._drain()
        finally:
            sampler.cancel()
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
        skipped = 0
        for job in self.jobs.values():
            if job.spec.job_id in self.plan.existing and not self._overwrite:
                skipped += 1
                self._set_state(job, JobState.SKIPPED, "output exists")
            elif job.spec.job_id in self._done_before:
                skipped += 1
                self._set_state(job, JobState.SKIPPED, "done in a previous run")
            else:
                self._enqueue(job.spec.job_id)
        self._runnable = len(self._queue)
        self.bus.publish(
            ev.PreflightDone(time=self._now(),
                             total=len(self.jobs) + len(inputs.problems),
                             runnable=self._runnable,
                             skipped=skipped,
                             missing=len(inputs.problems),
                             duplicates=len(inputs.duplicates),
                             input_bytes=inputs.total_size))
        for entry in inputs.problems:
            self._notice(NoticeLevel.WARNING,
                         f"input {entry.problem}: {entry.path} (list line {entry.line})")
        stats = self.runner.stats()
        self._stats = stats
        fraction = self._config.resources
        self._guard.memory_reserve = int((1 - fraction.memory_fraction) * stats.total_memory)
        self._guard.disk_reserve = int((1 - fraction.disk_fraction) * stats.free_disk)

    def _finish(self) -> int:
        counts = Counts.of((job.state for job in self.jobs.values()),
                           missing=len(self.plan.inputs.problems))
        code = counts.exit_code
        self.bus.publish(
            ev.RunFinished(time=self._now(),
                           counts=counts.as_dict(),
                           wall_seconds=self._now() - self._started,
                           exit_code=code,
                           interrupted=self._interrupted))
        return code

    def _may_launch(self) -> bool:
        return (not self.paused_all and not self.halted and not self.stopping
                and self._guard.may_launch())

    def _launch_ready(self) -> None:
        active = len(self._active_ids)
        while self._queue and active < self.limit and self._may_launch():
            job = self._dequeue()
            if self._start(job):
                active += 1

    async def _drain(self) -> None:
        while True:
            self._wake.clear()
            self._launch_ready()
            if not self._active_ids and (not self._queue or not self._may_launch_ever()):
                return
            await self._wake.wait()

    def _may_launch_ever(self) -> bool:
        """False once nothing queued will start again (halt, shutdown); pause all waits for the
        operator instead."""
        return not self.halted and not self.stopping

    # --- calibration

    async def _calibrate(self) -> None:
        """Measure one real job through the stabilization window and derive the limit.

        A job that fails inside the window tells nothing about a normal job, so the next queued
        job is measured instead; the measured job is never run twice and keeps running after."""
        window = self._config.resources.stabilization_seconds
        while self._queue and not self.stopping and not self.halted:
            job = self._dequeue()
            if not self._start(job):
                continue
            meter = CalibrationMeter(job.spec.input_size)
            self._calibrating = (job.spec.job_id, meter)
            self.bus.publish(
                ev.CalibrationStarted(time=self._now(), job_id=job.spec.job_id, window=window))
            assert job.done is not None
            try:
                await asyncio.wait_for(asyncio.shield(job.done), timeout=window)
            except TimeoutError:
                pass
            self._calibrating = None
            typical = (self._queue.bytes + job.spec.input_size) // (len(self._queue) + 1)
            if job.state.active:
                profile, source = meter.profile(typical), LimitSource.WINDOW
                ratio = meter.output_ratio()
            elif job.state is JobState.SUCCEEDED:
                output = file_size(job.spec.output_path)
                wall = (job.ended or self._now()) - (job.started or self._now())
                profile = whole_life_profile(job.cpu_seconds, wall, job.peak_rss, output,
                                             job.spec.input_size, typical)
                ratio = output / job.spec.input_size if job.spec.input_size else 1.0
                source = LimitSource.WHOLE_LIFE
            else:
                continue
            self._learner.seed(profile, ratio)
            decision = self._decide(profile)
            self._set_limit(decision.limit, source, decision)
            self.bus.publish(
                ev.CalibrationFinished(time=self._now(),
                                       profile=profile,
                                       decision=decision,
                                       source=source))
            return

    def _use_profile(self, profile: ProcessProfile) -> None:
        """Start from the figures a previous run learned instead of measuring again."""
        typical = self._typical_remaining()
        self._learner.seed(profile, profile.output_bytes / typical if typical else 1.0)
        decision = self._decide(profile)
        self._set_limit(decision.limit, LimitSource.PREVIOUS_RUN, decision)
        self.bus.publish(
            ev.CalibrationFinished(time=self._now(),
                                   profile=profile,
                                   decision=decision,
                                   source=LimitSource.PREVIOUS_RUN))

    def _capacity(self) -> SystemCapacity:
        """The machine as if none of our jobs were running: their memory and partial outputs
        count as available, because the rule divides it among them."""
        stats = self._stats or self.runner.stats()
        ours_rss = sum(job.last.rss_bytes for job in self._active() if job.last)
        ours_disk = sum(job.last.output_bytes for job in self._active() if job.last)
        return SystemCapacity(logical_cores=stats.logical_cores,
                              available_memory=stats.available_memory + ours_rss,
                              free_disk=stats.free_disk + ours_disk)

    def _decide(self, profile: ProcessProfile) -> ScalingDecision:
        res = self._config.resources
        return compute_limit(profile,
                             self._capacity(),
                             cpu_fraction=res.cpu_fraction,
                             memory_fraction=res.memory_fraction,
                             disk_fraction=res.disk_fraction,
                             max_processes=res.max_processes,
                             jobs=self._runnable)

    def _relearn(self) -> None:
        """Re-derive the limit from every finished job's figures (unless the operator set it)."""
        if self._manual_limit or self.decision is None:
            return
        profile = self._learner.profile(self._typical_remaining())
        if profile is None:
            return
        decision = self._decide(profile)
        if decision.limit != self.limit:
            self._set_limit(decision.limit, LimitSource.LEARNED, decision,
                            self._learner.observations)
        else:
            self.decision = decision

    def _typical_remaining(self) -> int:
        """Mean input size of the queued jobs (of all jobs once the queue is empty)."""
        return self._queue.mean_size(self._mean_input)

    def _enqueue(self, job_id: int) -> None:
        self._queue.push(job_id)

    def _dequeue(self) -> Job:
        return self.jobs[self._queue.pop()]

    # --- starting and ending jobs

    def _start(self, job: Job) -> bool:
        """Launch `job`; False when its command could not even be started (it has failed)."""
        job.begin_attempt(self._now(), self._loop.create_future())
        assert self._state is not None
        if not self._state.intact():
            self._hold(job)
            self.stop_launching(f"the state folder {self._state.path} was removed or replaced "
                                "during the run: no more launches; running jobs finish")
            return False
        self._unlink_temp(job.spec)
        if not os.path.exists(job.spec.input_path):
            job.pid = None
            self._finish_job(job, JobState.MISSING, "input vanished before its job started",
                             StopReason.VANISHED)
            return False
        try:
            job.pid = self.runner.start(job.spec, self._on_exit)
        except SpawnError as exc:
            job.pid = None
            if exc.systemic:
                self._hold(job)
                self.stop_launching(f"job {job.spec.job_id} ({job.spec.name}): {exc}: no more "
                                    "launches; running jobs finish; fix it and run the same "
                                    "command again")
                return False
            job.exit_code = 127
            self._finish_job(job, JobState.FAILED, str(exc), StopReason.NOT_STARTED)
            return False
        job.node = self.runner.node
        self._set_state(job, JobState.RUNNING, f"attempt {job.attempt}" if job.attempt > 1 else "")
        timeout = self._config.jobs.timeout
        if timeout is not None:
            self._arm_timeout(job, timeout)
        return True

    def _arm_timeout(self, job: Job, seconds: float) -> None:
        job.deadline = self._now() + seconds
        job.timeout_handle = self._loop.call_later(seconds, self._on_timeout, job.spec.job_id)

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
        spec = job.spec
        if job.stop in (StopReason.OPERATOR, StopReason.INTERRUPTED):
            self._finish_job(job, JobState.KILLED, job.stop.value, job.stop)
            return
        if job.stop is StopReason.TIMEOUT:
            self._finish_job(job, JobState.FAILED,
                             f"timeout after {self._config.jobs.timeout:g}s ({status.describe()})",
                             StopReason.TIMEOUT)
            return
        if not status.ok:
            stop = StopReason.SIGNAL if status.signal is not None else StopReason.EXIT
            self._finish_job(job, JobState.FAILED, status.describe(), stop)
            return
        if spec.temp_output_path is not None:
            problem = self._publish_output(spec)
            if problem:
                self._finish_job(job, JobState.FAILED, problem, StopReason.NO_OUTPUT)
                return
        self._finish_job(job, JobState.SUCCEEDED, "")

    def _publish_output(self, spec: JobSpec) -> str:
        """Rename the job's output from this run's own temporary folder to its final name (never
        anything from elsewhere); returns why not, or ''."""
        temp, state = self._temp, self._state
        assert temp is not None and state is not None and spec.temp_output_path is not None
        name = spec.temp_output_path.name
        if not temp.is_regular(name):
            if os.path.lexists(spec.temp_output_path):
                return "output is not a plain file (a symlink or folder?): not kept"
            return "no output: exit 0 but nothing written"
        try:
            os.replace(name, spec.output_path.name, src_dir_fd=temp.fd, dst_dir_fd=state.out_fd)
        except OSError as exc:
            return f"cannot rename output: {exc.strerror}"
        return ""

    def _unlink_temp(self, spec: JobSpec) -> None:
        if spec.temp_output_path is not None and self._temp is not None:
            self._temp.unlink(spec.temp_output_path.name)

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
            self._unlink_temp(spec)
        self._set_state(job, state, reason, stop)
        if job.done is not None and not job.done.done():
            job.done.set_result(None)
        if state is JobState.SUCCEEDED:
            self._consecutive_failures = 0
            wall = job.ended - (job.started or job.ended)
            if wall > 0 and self._calibrating is None:
                ratio = (file_size(spec.output_path) /
                         spec.input_size if spec.input_size and spec.temp_output_path else None)
                self._learner.add(job.cpu_seconds / wall, job.peak_rss, ratio)
                self._relearn()
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
        self._enqueue(job.spec.job_id)
        self._set_state(job, JobState.QUEUED, f"retry {job.attempt}/{retries} after: {job.reason}")

    # --- monitoring

    async def _sample_loop(self) -> None:
        interval = self._config.resources.sample_interval
        while True:
            calibrating = self._calibrating is not None
            await asyncio.sleep(min(interval, CALIBRATION_INTERVAL) if calibrating else interval)
            try:
                self.sweep()
            except OSError as exc:
                # Out of descriptors (thousands of jobs at `ulimit -n`): the run goes on
                # unmeasured for a moment rather than stopping; said once.
                if not self._sweep_failed:
                    self._sweep_failed = True
                    self._notice(NoticeLevel.WARNING,
                                 f"cannot sample the jobs: {exc.strerror or exc}")

    def sweep(self) -> None:
        """Sample every running job and the machine once; apply memory and disk pressure."""
        now = self._now()
        samples = self.runner.sample()
        self._stats = stats = self.runner.stats()
        for job_id, sample in samples.items():
            job = self.jobs.get(job_id)
            if job is None or not job.state.active:
                continue
            self._record(job, sample, now)
        self.bus.publish(
            ev.SystemSample(time=now,
                            node=stats.node,
                            logical_cores=stats.logical_cores,
                            cpu_percent=stats.cpu_percent,
                            total_memory=stats.total_memory,
                            available_memory=stats.available_memory,
                            memory_reserve=self._guard.memory_reserve,
                            free_disk=stats.free_disk,
                            disk_total=stats.disk_total,
                            disk_reserve=self._guard.disk_reserve,
                            projected_disk_use=self.projected_disk_use()))
        self._apply_pressure(stats)
        self._wake.set()

    def _record(self, job: Job, sample: ProcessSample, now: float) -> None:
        job.last = sample
        job.peak_rss = max(job.peak_rss, sample.rss_bytes)
        size = job.spec.input_size
        fraction = None
        if sample.read_offset is not None and size > 0:
            fraction = min(1.0, sample.read_offset / size)
        elapsed = now - (job.started or now)
        self.bus.publish(
            ev.JobSample(time=now,
                         job_id=job.spec.job_id,
                         node=sample.node,
                         pid=sample.pid,
                         cpu_cores=sample.cpu_cores,
                         rss_bytes=sample.rss_bytes,
                         processes=sample.processes,
                         read_fraction=fraction,
                         output_bytes=sample.output_bytes,
                         elapsed=elapsed))
        if self._calibrating is not None and self._calibrating[0] == job.spec.job_id:
            meter = self._calibrating[1]
            meter.add(sample.cpu_cores, sample.rss_bytes, sample.output_bytes, sample.read_offset)
            self.bus.publish(
                ev.CalibrationProgress(time=now,
                                       job_id=job.spec.job_id,
                                       elapsed=elapsed,
                                       window=self._config.resources.stabilization_seconds,
                                       cpu_cores=sample.cpu_cores,
                                       rss_bytes=sample.rss_bytes,
                                       output_bytes=sample.output_bytes,
                                       read_fraction=fraction))

    def projected_disk_use(self) -> int:
        """Bytes the outputs still to be written will take: queued jobs in full, running jobs'
        remainder, at the learned output/input ratio."""
        ratio = self._learner.ratio()
        total = int(ratio * self._queue.bytes)
        for job in self._active():
            written = job.last.output_bytes if job.last else 0
            total += max(0, int(ratio * job.spec.input_size) - written)
        return total

    def _apply_pressure(self, stats: NodeStats) -> None:
        """Let the pressure guard judge this sweep, and do what it says."""
        active = [
            ActiveJob(job.spec.job_id, job.started or 0.0, job.peak_rss, job.state
                      is JobState.RUNNING, job.paused_by is PauseReason.MEMORY)
            for job in self._active()
        ]
        actions = self._guard.assess(self._now(), stats.available_memory, stats.free_disk, active,
                                     len(self._queue), not (self.halted or self.stopping))
        for change in actions.changes:
            self.bus.publish(
                ev.ResourcePressure(time=self._now(),
                                    resource=change.resource,
                                    level=change.level,
                                    available=change.available,
                                    reserve=change.reserve))
        if actions.pause is not None:
            self._pause(self.jobs[actions.pause], PauseReason.MEMORY)
        if actions.resume is not None:
            self._resume(self.jobs[actions.resume])
        if actions.give_up is not None:
            self.stop_launching(actions.give_up)

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
        if job.state.active:
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
        self._enqueue(job_id)
        self._set_state(job, JobState.QUEUED, "requeued")
        self._wake.set()
        return True

    def pause_all(self) -> None:
        """No more launches, and every running job stopped."""
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
        self._manual_limit = True
        self._set_limit(limit, LimitSource.OPERATOR)

    def shutdown(self, *, kill: bool = True, interrupted: bool = True) -> None:
        """Stop launching; with `kill`, end every active job (SIGTERM, SIGKILL after grace)."""
        self.stopping = True
        self._interrupted = self._interrupted or interrupted
        if kill:
            for job in self._active():
                job.stop = StopReason.INTERRUPTED
                self.runner.terminate(job.spec.job_id, self._config.jobs.kill_grace)
        self._wake.set()

    def active_count(self) -> int:
        """How many jobs hold a process (running or paused)."""
        return len(self._active_ids)
