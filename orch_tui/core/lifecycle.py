"""One job's life through the runner: start, timeout, pause, resume, exit, final state.

Every state change of a job goes through `Lifecycle.set_state`, which keeps the set of jobs
holding a process and tells observers. What a job's end means for the run (learning, retries,
halting) and what a start refused by the machine means (hold it, stop launching) are the
scheduler's: `Lifecycle` reports both through the two callbacks it is built with.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

from orch_tui.core import events as ev
from orch_tui.core.clock import Clock
from orch_tui.core.config import JobsConfig
from orch_tui.core.errors import SpawnError
from orch_tui.core.events import JobState, PauseReason, StopReason
from orch_tui.core.job import Job
from orch_tui.core.logtail import log_detail, log_size
from orch_tui.core.outputs import publish_output, unlink_temp
from orch_tui.core.runner import ExitStatus, Runner, Started
from orch_tui.core.statedir import RunTemp, StateDir, UnsafeFileError
from orch_tui.core.textutil import format_bytes

#: Signals a process raises on itself (abort, a fault), often right after saying why.
_OWN_SIGNALS = frozenset(
    {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL})


# The collaborators of a job's life.
# pylint: disable-next=too-many-instance-attributes
class Lifecycle:
    """Starts, steers and ends jobs; `ended(job, state)` hears every final state, `refused(job,
    message)` every start the machine (not the job) made impossible."""

    # The coordinator hands over its parts.
    # pylint: disable-next=too-many-arguments,too-many-positional-arguments
    def __init__(self, jobs: dict[int, Job], runner: Runner, bus: ev.EventBus, clock: Clock,
                 config: JobsConfig, ended: Callable[[Job, JobState], None],
                 refused: Callable[[Job, str], None]) -> None:
        self._jobs, self._runner, self._bus, self._clock = jobs, runner, bus, clock
        self._config = config
        self._ended, self._refused = ended, refused
        self._loop = asyncio.get_running_loop()
        # Insertion-ordered set of jobs holding a process: launch checks stay O(1) per job.
        self.active: dict[int, None] = {}
        # Jobs whose start is in flight: they count against the limit before they run.
        self.launching: set[int] = set()
        self.state: StateDir | None = None
        self.temp: RunTemp | None = None
        # job_id -> the size of its log when its attempt started: where that attempt's words begin.
        self._log_starts: dict[int, int] = {}
        runner.on_restart = self._on_restart

    def set_state(self,
                  job: Job,
                  state: JobState,
                  reason: str = "",
                  stop: StopReason | None = None,
                  detail: str = "") -> None:
        """Move `job` to `state` and tell observers."""
        previous = self._move(job, state, reason, detail)
        self._bus.publish(job.changed(self._clock.now(), previous, stop))

    def _move(self, job: Job, state: JobState, reason: str, detail: str) -> JobState:
        """Set `job`'s state and keep `active` in step; the state it leaves."""
        previous, job.state, job.reason, job.detail = job.state, state, reason, detail
        if state.active:
            self.active[job.spec.job_id] = None
        else:
            self.active.pop(job.spec.job_id, None)
        return previous

    async def start(self, job: Job) -> bool:
        """Launch `job` (already counted in `launching`); False when it could not start."""
        job_id = job.spec.job_id
        try:
            job.begin_attempt(self._clock.now(), self._loop.create_future())
            assert self.state is not None
            if not self.state.intact():
                self._refuse(
                    job, f"the state folder {self.state.path} was removed or replaced "
                    "during the run: no more launches; running jobs finish")
                return False
            unlink_temp(self.temp, job.spec)
            if not os.path.exists(job.spec.entry.location):
                job.pid = None
                self.finish(job, JobState.MISSING, "input vanished before its job started",
                            StopReason.VANISHED)
                return False
            if not self._runner.measures_log_start:
                self._log_starts[job_id] = log_size(*self._log_name(job))
            # Stamped before the spawn: the process runs from inside it, and the report that it
            # runs can come late (a busy core, a cluster's round trip); a runtime counted from
            # the report would be short.
            spawned = job.started = self._clock.now()
            job.started_wall = time.time()
            started = await self._runner.start(job.spec, self._on_exit)
            if started.log_start is not None:
                self._log_starts[job_id] = started.log_start
        except SpawnError as exc:
            job.pid = None
            if exc.systemic:
                self._refuse(
                    job, "" if exc.told else f"job {job_id} ({job.spec.name}): {exc}: no more "
                    "launches; running jobs finish; fix it and run the same command again")
                return False
            job.exit_code = 127
            self.finish(job, JobState.FAILED, str(exc), StopReason.NOT_STARTED)
            return False
        finally:
            self.launching.discard(job_id)
        job.pid, job.node = started.pid, started.node
        previous = self._move(job, JobState.RUNNING,
                              f"attempt {job.attempt}" if job.attempt > 1 else "", "")
        self._bus.publish(job.changed(spawned, previous, None))  # it runs since the spawn
        if self._config.timeout is not None:
            self._arm_timeout(job, self._config.timeout)
        if job.stop is not None:  # killed or shut down while it was starting
            self.terminate(job_id)
        return True

    def _refuse(self, job: Job, message: str) -> None:
        """Undo the attempt of a job that could not start through no fault of its own."""
        job.pid = None
        job.attempt -= 1
        job.started = None
        if job.done is not None and not job.done.done():
            job.done.set_result(None)
        self._refused(job, message)

    def terminate(self, job_id: int, *, now: bool = False) -> None:
        """SIGTERM the job's tree, SIGKILL after the grace period (`now`: at once); a job
        holding a process is `stopping` from now until its exit (set first: a runner may report
        the exit at once)."""
        job = self._jobs[job_id]
        if job.state in (JobState.RUNNING, JobState.PAUSED):
            job.paused_by = None  # SIGCONT comes with SIGTERM
            self.set_state(job, JobState.STOPPING, job.stop.value if job.stop else "")
        self._runner.terminate(job_id, 0.0 if now else self._config.kill_grace)

    def _arm_timeout(self, job: Job, seconds: float) -> None:
        job.deadline = self._clock.now() + seconds
        job.timeout_handle = self._clock.call_later(seconds, self._on_timeout, job)

    def _disarm_timeout(self, job: Job) -> None:
        if job.timeout_handle is not None:
            job.timeout_handle.cancel()
            job.timeout_handle = None
            now = self._clock.now()
            job.timeout_left = max(0.0, (job.deadline or now) - now)

    def _on_timeout(self, job: Job) -> None:
        job.timeout_handle = None
        if job.state.active and job.stop is None:
            job.stop = StopReason.TIMEOUT
            self.terminate(job.spec.job_id)

    def pause(self, job: Job, by: PauseReason) -> bool:
        """SIGSTOP a running job; its timeout stops counting."""
        if job.state is not JobState.RUNNING:
            return False
        self._runner.pause(job.spec.job_id)
        self._disarm_timeout(job)
        job.paused_by = by
        self.set_state(job, JobState.PAUSED, by.value)
        return True

    def resume(self, job: Job) -> bool:
        """SIGCONT a paused job; its timeout counts on from where it stopped."""
        if job.state is not JobState.PAUSED:
            return False
        self._runner.resume(job.spec.job_id)
        job.paused_by = None
        if job.timeout_left is not None and job.stop is None:
            self._arm_timeout(job, job.timeout_left)
            job.timeout_left = None
        self.set_state(job, JobState.RUNNING, "resumed")
        return True

    def _on_restart(self, job_id: int, started: Started) -> None:
        """The job's node was lost and the cluster started it over on another: it runs there
        from now (a paused one too, as a new process does), and its time counts from now."""
        job = self._jobs.get(job_id)
        if job is None or not job.state.active:
            return
        job.pid, job.node, job.last, job.paused_by = started.pid, started.node, None, None
        job.started, job.started_wall = self._clock.now(), time.time()
        if job.state is JobState.STOPPING:
            return  # the runner ends it there as well: its end is all there is left to tell
        previous = self._move(job, JobState.RUNNING, f"started again on {started.node}: the "
                              "node it ran on was lost", "")
        self._bus.publish(job.changed(job.started, previous, None, restarted=True))

    def _on_exit(self, job_id: int, status: ExitStatus) -> None:
        job = self._jobs[job_id]
        self._disarm_timeout(job)
        job.timeout_left = None
        job.ended = self._clock.now()
        job.exit_code, job.signal = status.exit_code, status.signal
        job.cpu_seconds = max(job.cpu_seconds, status.cpu_seconds)
        job.peak_rss = max(job.peak_rss, status.max_rss_bytes)
        if job.stop in (StopReason.OPERATOR, StopReason.INTERRUPTED):
            self.finish(job, JobState.KILLED, job.stop.value, job.stop)
        elif job.stop is StopReason.MEMORY_REQUEUED:
            self.requeue_for_memory(job)
        elif job.stop is StopReason.MEMORY:
            self.finish(
                job, JobState.FAILED,
                f"out of memory: reached {format_bytes(job.peak_rss)} running alone and "
                f"memory stayed critical ({status.describe()})", StopReason.MEMORY)
        elif job.stop is StopReason.TIMEOUT:
            self.finish(job, JobState.FAILED,
                        f"timeout after {self._config.timeout:g}s ({status.describe()})",
                        StopReason.TIMEOUT)
        elif status.lost:
            self.finish(job, JobState.FAILED, status.describe(), StopReason.LOST)
        elif not status.ok:
            stop = StopReason.SIGNAL if status.signal is not None else StopReason.EXIT
            self.finish(job, JobState.FAILED, status.describe(), stop,
                        self._last_words(job, status))
        elif job.spec.temp_output_path is not None and (problem := self._publish(job)):
            self.finish(job, JobState.FAILED, problem, StopReason.NO_OUTPUT)
        else:
            self.finish(job, JobState.SUCCEEDED, "")

    def _last_words(self, job: Job, status: ExitStatus) -> str:
        """Why a job that ended by itself failed, from its log: after a non-zero exit, or a
        signal of its own making (an abort after an assertion's message). A signal sent from
        outside (the OOM killer's SIGKILL) leaves the log mid-work: its last line would be a
        false reason. A timeout, a kill or memory never get here: their stop says it."""
        if status.signal is not None and status.signal not in _OWN_SIGNALS:
            return ""
        name, logs_fd = self._log_name(job)
        return log_detail(name, self._log_starts.get(job.spec.job_id, 0), logs_fd)

    def _log_name(self, job: Job) -> tuple[str, int | None]:
        """The job's log as `log_detail` and `log_size` take it: by name inside the checked logs
        folder when the run has one (no symlink on the way), else by path."""
        if self.state is not None:
            try:
                fd, name = self.state.log_location(job.spec.log_location, create=False)
            except (OSError, UnsafeFileError):
                return "", None  # no shard folder, so no log: nothing to read
            return name, fd
        return job.spec.log_location, None

    def requeue_for_memory(self, job: Job) -> None:
        """The youngest job, killed to free memory: its partial output goes, and it waits in the
        queue again, not as a failure (the scheduler does not count it as a retry either)."""
        unlink_temp(self.temp, job.spec)
        job.pid = None
        self.set_state(job, JobState.QUEUED,
                       f"memory critical: requeued after reaching {format_bytes(job.peak_rss)}",
                       StopReason.MEMORY_REQUEUED)
        if job.done is not None and not job.done.done():
            job.done.set_result(None)
        self._ended(job, JobState.QUEUED)

    def _publish(self, job: Job) -> str:
        assert self.temp is not None and self.state is not None
        return publish_output(self.temp, self.state, job.spec)

    def finish(self,
               job: Job,
               state: JobState,
               reason: str,
               stop: StopReason | None = None,
               detail: str = "") -> None:
        """Put `job` in a final state (or queued-again's precursor, failed): drop a half-written
        output, tell observers, release whoever waits for it, then the scheduler."""
        if job.ended is None:
            job.ended = self._clock.now()
        if state is not JobState.SUCCEEDED:
            unlink_temp(self.temp, job.spec)
        self._log_starts.pop(job.spec.job_id, None)
        self.set_state(job, state, reason, stop, detail)
        if job.done is not None and not job.done.done():
            job.done.set_result(None)
        self._ended(job, state)
