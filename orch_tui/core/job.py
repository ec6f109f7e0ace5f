"""The scheduler's mutable record of one job, and the two things done to it in many places:
starting a new attempt, and describing its state to observers as an event."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from orch_tui.core import events as ev
from orch_tui.core.clock import Timer
from orch_tui.core.events import JobState, PauseReason, StopReason
from orch_tui.core.fsutil import file_size
from orch_tui.core.plan import JobSpec
from orch_tui.core.runner import ProcessSample


@dataclass(slots=True)  # 100,000 of them: slots make each a fraction of a dict-backed one
# pylint: disable-next=too-many-instance-attributes  # a record: the scheduler's facts about one job
class Job:
    """One job as the scheduler knows it (observers see it only through events)."""

    spec: JobSpec
    state: JobState = JobState.QUEUED
    attempt: int = 0
    pid: int | None = None
    node: str = ""
    started: float | None = None  # the clock's time just before this attempt's spawn
    started_wall: float | None = None  # the same instant in epoch seconds, for the records
    ended: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    last: ProcessSample | None = None
    stop: StopReason | None = None
    paused_by: PauseReason | None = None
    deadline: float | None = None
    timeout_left: float | None = None
    timeout_handle: Timer | None = None
    done: asyncio.Future[None] | None = None
    detail: str = ""  # a failure's last meaningful log line (core/logtail.py)

    def begin_attempt(self, now: float, done: asyncio.Future[None]) -> None:
        """Forget everything the previous attempt measured or decided; count this one."""
        self.attempt += 1
        self.stop = None
        self.paused_by = None
        self.exit_code = self.signal = None
        self.last = None
        self.peak_rss = 0
        self.cpu_seconds = 0.0
        self.started = now
        self.started_wall = None
        self.ended = None
        self.done = done

    def forget_attempt(self) -> None:
        """Back in the queue by the operator's requeue: the ended attempt's process, times and
        exit are no longer this job's (its row must not show a dead pid or a stale elapsed)."""
        self.pid = None
        self.exit_code = self.signal = None
        self.started = self.started_wall = self.ended = None
        self.last = None
        self.detail = ""

    def changed(self,
                now: float,
                previous: JobState | None,
                stop: StopReason | None,
                *,
                restarted: bool = False) -> ev.JobStateChanged:
        """The event telling observers where the job stands now (its state and reason are
        already set); a success carries its final output's size, read after the rename (a
        command whose flags name no `{output_file}` has no output of ours to measure)."""
        output = (file_size(self.spec.output_location)
                  if self.state is JobState.SUCCEEDED and self.spec.layout.uses_output else None)
        return ev.JobStateChanged(
            time=now,
            job_id=self.spec.job_id,
            name=self.spec.name,
            state=self.state,
            previous=previous,
            attempt=self.attempt,
            node=self.node,
            pid=self.pid,
            exit_code=self.exit_code,
            signal=self.signal,
            reason=self.reason,
            peak_rss=self.peak_rss,
            cpu_seconds=self.cpu_seconds,
            stop=stop,
            output_bytes=output,
            detail=self.detail,
            started_wall=self.started_wall if self.state is JobState.RUNNING else None,
            restarted=restarted)
