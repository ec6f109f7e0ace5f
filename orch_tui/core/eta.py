"""The run's ETA from the work left, measured at the rate work is being done now.

Work is input bytes weighted by each job's progress fraction: the plan knows every input's size
before anything runs (queued jobs included), while media durations are only learned once ffmpeg
printed `Duration:` for a started job, so seconds cannot price the queue. For ffmpeg the fraction
is media time done / duration, so a job's bytes are consumed at its media pace; for a batch of
similar encodes bytes are proportional to duration. Remaining work = unfinished inputs' bytes
minus the done part of running jobs. The rate is work done per second over the last `WINDOW`
seconds during which a job was running (not since the first launch: a resumed run measures its
own work; not while everything is paused), so it follows the current concurrency. A job that
fails adds only the progress it really made: a corrupt input failing at once adds nothing.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass

from orch_tui.core import events as ev
from orch_tui.core.events import FINISHED_STATES, JobState
from orch_tui.core.textutil import format_duration

#: Seconds of running time the rate is measured over: a few jobs' lives, so that it follows a
#: change of concurrency within that time, and long enough to smooth per-sample steps.
WINDOW = 30.0
#: Running seconds measured before any figure: less is a guess.
MIN_MEASURED = 2.0
#: Beyond this the figure says nothing an operator can use (a stall, a near-zero rate).
MAX_ETA = 7 * 24 * 3600.0
#: History points closer than this (running seconds) are merged: bounded memory at any rate.
STEP = 0.5


@dataclass(frozen=True, slots=True)
class Eta:
    """What an observer shows: seconds left, `paused`, or nothing (None: not measured yet, the
    run ended, or a figure too large to mean anything)."""

    seconds: float | None = None
    paused: bool = False

    def text(self, none: str = "-") -> str:
        """`0:01:23`, `paused`, or `none`."""
        if self.paused:
            return "paused"
        return none if self.seconds is None else format_duration(self.seconds)


@dataclass(frozen=True, slots=True)
class EtaState:
    """The model's measurements as plain data, carried by a snapshot so that an observer
    attaching midway computes the same ETA (the sizes and states are the snapshot's jobs)."""

    #: Progress fraction of each running or paused job.
    progress: tuple[tuple[int, float], ...] = ()
    #: (running seconds, work done) points of the last WINDOW running seconds.
    history: tuple[tuple[float, float], ...] = ()
    running_seconds: float = 0.0
    work_done: float = 0.0
    last: float | None = None  # the time running_seconds was counted up to
    ended: bool = False  # the run finished (or was interrupted): no ETA any more


# pylint: disable-next=too-many-instance-attributes  # the model's running sums, one per figure
class EtaModel:
    """The work left and the rate it is done at, from state changes and samples."""

    def __init__(self,
                 sizes: Mapping[int, int],
                 states: Mapping[int, JobState],
                 state: EtaState | None = None) -> None:
        state = state or EtaState()
        self._sizes = dict(sizes)
        known = [size for size in self._sizes.values() if size > 0]
        # An input of unknown (or zero) size weighs as the average one: it is still a job to do.
        self._default = sum(known) / len(known) if known else 1.0
        # In bulk, not job by job through _enter: a run of 100,000 jobs builds this before its
        # first launch.
        self._states: dict[int, JobState] = dict(states)
        weight = self.weight
        self._left = float(  # the weight of every unfinished job
            sum(
                weight(job_id) for job_id, job_state in self._states.items()
                if job_state not in FINISHED_STATES))
        counts = Counter(self._states.values())
        self._running, self._paused = counts[JobState.RUNNING], counts[JobState.PAUSED]
        self._progress = dict(state.progress)
        self._history = deque(state.history)
        self._running_seconds, self._done = state.running_seconds, state.work_done
        self._last, self.ended = state.last, state.ended

    def weight(self, job_id: int) -> float:
        """The job's work: its input's size in bytes."""
        size = self._sizes.get(job_id, 0)
        return float(size) if size > 0 else self._default

    def _enter(self, job_id: int, state: JobState) -> None:
        previous = self._states.get(job_id)
        was_left = previous is not None and not previous.finished
        self._states[job_id] = state
        if was_left and state.finished:
            self._left -= self.weight(job_id)
        elif not was_left and not state.finished:
            self._left += self.weight(job_id)
        self._running += (state is JobState.RUNNING) - (previous is JobState.RUNNING)
        self._paused += (state is JobState.PAUSED) - (previous is JobState.PAUSED)

    def _advance(self, now: float) -> None:
        """Count running time up to `now` (only while a job runs: pauses and idle gaps are no
        time the rate was measured in)."""
        if self._last is not None and self._running and now > self._last:
            self._running_seconds += now - self._last
        self._last = now if self._last is None else max(self._last, now)

    def _record(self) -> None:
        point = (self._running_seconds, self._done)
        if self._history and point[0] - self._history[-1][0] < STEP and len(self._history) > 1:
            self._history[-1] = point
        else:
            self._history.append(point)
        # Keep one point at or before the window's start, so the window is always full.
        while len(self._history) > 2 and self._history[1][0] <= point[0] - WINDOW:
            self._history.popleft()

    def on_state(self, event: ev.JobStateChanged) -> None:
        """A job moved: its work is done (succeeded), dropped (failed, killed, skipped: never
        counted as work done), started from zero, or back in the queue (its work undone)."""
        self._advance(event.time)
        job_id, state = event.job_id, event.state
        previous = self._states.get(job_id)
        done = self._progress.pop(job_id, 0.0)
        if event.restarted:  # started over elsewhere: what it did is lost, as a requeue's is
            self._done -= done * self.weight(job_id)
            self._progress[job_id] = 0.0
        elif state is JobState.SUCCEEDED:
            self._done += (1.0 - done) * self.weight(job_id)
        elif state.active and previous is not None and previous.active:
            self._progress[job_id] = done  # paused, resumed: the same attempt goes on
        elif state.active:
            self._progress[job_id] = 0.0  # a launch starts from the beginning
        elif state is JobState.QUEUED:
            # Requeued (memory critical): what it did is lost and will be done again.
            self._done -= done * self.weight(job_id)
        self._enter(job_id, state)
        self._record()

    def on_sample(self, event: ev.JobSample) -> None:
        """A running job's progress (from its probe): the work it did since the last one."""
        self._advance(event.time)
        if event.progress is None or self._states.get(event.job_id) is not JobState.RUNNING:
            return
        fraction = min(1.0, max(0.0, event.progress))
        # A job first seen running (attached midway without measurements): its progress so far
        # is where it stands, not work done in the last instant.
        before = self._progress.setdefault(event.job_id, fraction)
        if fraction > before:
            self._done += (fraction - before) * self.weight(event.job_id)
            self._progress[event.job_id] = fraction
            self._record()

    def apply(self, event: ev.Event) -> None:
        """Fold one event in (state changes, samples, and the run's end)."""
        if isinstance(event, ev.JobStateChanged):
            self.on_state(event)
        elif isinstance(event, ev.JobSample):
            self.on_sample(event)
        elif isinstance(event, ev.RunFinished):
            self.ended = True

    def remaining(self) -> float:
        """Work left: unfinished inputs, less the done part of the running ones."""
        running = sum(fraction * self.weight(job_id) for job_id, fraction in self._progress.items())
        return max(0.0, self._left - running)

    def rate(self, now: float) -> float | None:
        """Work per running second over the last WINDOW running seconds (None: not measured)."""
        if not self._history:
            return None
        elapsed = self._running_seconds
        if self._running and self._last is not None and now > self._last:
            elapsed += now - self._last  # a stall since the last sample slows the rate down
        start_seconds, start_done = self._history[0]
        if elapsed - start_seconds > WINDOW:
            # Interpolate from the last point before the window to the window's start.
            start_seconds = elapsed - WINDOW
            start_done = self._done_at(start_seconds)
        measured = elapsed - start_seconds
        work = self._done - start_done
        if measured < MIN_MEASURED or work <= 0:
            return None
        return work / measured

    def _done_at(self, seconds: float) -> float:
        """Work done at `seconds` of running time, from the history (stepwise)."""
        done = self._history[0][1]
        for point_seconds, point_done in self._history:
            if point_seconds > seconds:
                break
            done = point_done
        return done

    def eta(self, now: float) -> Eta:
        """The ETA at `now`: `paused` while every active job is paused."""
        if self.ended or self._left <= 0:
            return Eta()
        if self._paused and not self._running:
            return Eta(paused=True)
        rate = self.rate(now)
        if rate is None:
            return Eta()
        seconds = self.remaining() / rate
        return Eta(seconds) if seconds <= MAX_ETA else Eta()

    def state(self) -> EtaState:
        """The measurements as data (for a snapshot)."""
        return EtaState(progress=tuple(self._progress.items()),
                        history=tuple(self._history),
                        running_seconds=self._running_seconds,
                        work_done=self._done,
                        last=self._last,
                        ended=self.ended)
