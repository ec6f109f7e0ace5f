"""The operator's commands on a running scheduler: pause, resume, kill, requeue, pause all,
resume all, set the limit, shut down.

A mixin of `Orchestrator`, kept apart because it is the one way in from outside (the TUI, a
signal handler, later a socket): each command is a plain call on the loop's thread that changes
a job or a flag through the scheduler's parts and wakes the launch loop.
"""

from __future__ import annotations

import asyncio

from orch_tui.core import events as ev
from orch_tui.core.events import REQUEUEABLE, JobState, NoticeLevel, PauseReason, StopReason
from orch_tui.core.job import Job
from orch_tui.core.jobqueue import JobQueue
from orch_tui.core.lifecycle import Lifecycle
from orch_tui.core.limits import LimitPolicy

#: Why a requeueable job is not requeued: the run launches nothing more.
NO_LAUNCHES = "the run launches nothing more (stopping, or halted), so it would never run"
#: Why a job in any other state is not requeued.
NOT_REQUEUEABLE = "only a failed, killed or cancelled job can be requeued"


def requeue_refusal(job_id: int, state: JobState) -> str:
    """Why the run did not requeue job `job_id`, which is in `state`: the words of the shell
    command, the socket's reply and the TUI's notice alike."""
    why = NO_LAUNCHES if state in REQUEUEABLE else NOT_REQUEUEABLE
    return f"job {job_id} is {state.value}: {why}"


class OperatorCommands:
    """Pause, resume, kill, requeue, pause all, resume all, set limit, shutdown."""

    # Owned by the Orchestrator; declared for the commands that use them.
    jobs: dict[int, Job]
    bus: ev.EventBus
    paused_all: bool
    stopping: bool
    halted: bool
    _interrupted: bool
    _stop_signal: int | None
    _life: Lifecycle
    _queue: JobQueue
    _policy: LimitPolicy
    _wake: asyncio.Event

    def _now(self) -> float:
        raise NotImplementedError

    def _active(self) -> list[Job]:
        raise NotImplementedError

    def _notice(self, level: NoticeLevel, message: str) -> None:
        raise NotImplementedError

    def _publish_limit(self, change: ev.LimitChanged | None) -> None:
        raise NotImplementedError

    def pause(self, job_id: int) -> bool:
        """SIGSTOP one running job's process tree; it keeps its slot."""
        return self._life.pause(self.jobs[job_id], PauseReason.OPERATOR)

    def resume(self, job_id: int) -> bool:
        """SIGCONT one paused job's process tree."""
        return self._life.resume(self.jobs[job_id])

    def kill(self, job_id: int) -> bool:
        """End a job: a running or paused one turns `stopping`, gets SIGTERM (SIGKILL after the
        grace period) and ends `killed`; one already stopping gets its SIGKILL at once (the
        operator asked twice, as a second ctrl+c does for every job); a queued one has no
        process to signal: it is taken off the queue as `cancelled` (not a failure; a requeue or
        a resume runs it)."""
        job = self.jobs[job_id]
        if job.state.active or job_id in self._life.launching:
            again = job.state is JobState.STOPPING
            if job.stop is None or job.stop is StopReason.TIMEOUT:
                job.stop = StopReason.OPERATOR
            self._life.terminate(job_id, now=again)
            return True
        return self.cancel(job_id)

    def cancel(self, job_id: int) -> bool:
        """Take a queued job off the queue as `cancelled`; False for a job in any other state
        (one that started meanwhile is left running: the operator asked about a queued one)."""
        job = self.jobs[job_id]
        if job.state is not JobState.QUEUED or job_id in self._life.launching:
            return False
        self._queue.remove(job_id)
        self._life.finish(job, JobState.CANCELLED, StopReason.CANCELLED.value, StopReason.CANCELLED)
        return True

    def requeue(self, job_id: int) -> bool:
        """Put a failed, killed or cancelled job back at the end of the queue, as a queued job
        that never ran (no pid, no times). Not once the run launches nothing more (stopping, or
        halted): the job would wait in a queue nothing takes from, and count as not run."""
        job = self.jobs[job_id]
        if job.state not in REQUEUEABLE or self.stopping or self.halted:
            return False
        job.forget_attempt()
        self._queue.push(job_id)
        self._life.set_state(job, JobState.QUEUED, "requeued")
        self._wake.set()
        return True

    def pause_all(self) -> None:
        """No more launches, and every running job stopped (a starting one once it runs)."""
        self.paused_all = True
        for job in self._active():
            self._life.pause(job, PauseReason.ALL)
        self.bus.publish(ev.PauseAllChanged(time=self._now(), paused=True))
        self._notice(NoticeLevel.INFO, "paused: no launches, running jobs stopped")
        self._wake.set()

    def resume_all(self) -> None:
        """Undo pause all: continue every paused job (except those held for memory) and launch."""
        self.paused_all = False
        for job in self._active():
            if job.paused_by is not PauseReason.MEMORY:
                self._life.resume(job)
        self.bus.publish(ev.PauseAllChanged(time=self._now(), paused=False))
        self._notice(NoticeLevel.INFO, "resumed: launching again")
        self._wake.set()

    def set_limit(self, limit: int) -> None:
        """The operator's limit: it wins over learning from now on. Lowering it never kills a
        job; fewer start as running ones finish."""
        self._publish_limit(self._policy.operator(self._now(), limit))

    def shutdown(self,
                 *,
                 kill: bool = True,
                 interrupted: bool = True,
                 signal: int | None = None) -> None:
        """Stop launching; with `kill`, end every active job (SIGTERM, SIGKILL after grace) and
        every job still starting once it runs. `signal`: the one that asked for it (SIGTERM,
        SIGINT), so the run's exit code, in its summary too, is 128 + it, as the process's."""
        self.stopping = True
        self._interrupted = self._interrupted or interrupted
        if self._stop_signal is None:
            self._stop_signal = signal
        if kill:
            for job_id in [*self._life.active, *self._life.launching]:
                job = self.jobs[job_id]
                if job.stop is None:  # an operator's kill or a timeout already under way stays
                    job.stop = StopReason.INTERRUPTED
                self._life.terminate(job_id)
        self._wake.set()

    def active_count(self) -> int:
        """How many jobs hold a process (running or paused); not those still starting."""
        return len(self._life.active)
