"""A run's state as plain, immutable data: what an observer gets when it attaches.

`RunRecord` folds the event stream (it listens from the start); `snapshot()` freezes it. A
listener attached midway (the headless reporter after a hangup, later a TUI over a socket)
starts from the snapshot and then follows the events, so it never has to be told the past."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from orch_tui.core import events as ev
from orch_tui.core.eta import EtaState
from orch_tui.core.events import JobState, LimitSource
from orch_tui.core.nodes import NodeTally, NodeView
from orch_tui.core.plan import JobSpec, Plan, shell_quote
from orch_tui.core.scaling import ScalingDecision
from orch_tui.core.tally import Counts, Tally


class CalibrationStatus(enum.Enum):
    """Where the run is with calibration (which screen a newly attached TUI opens on)."""

    PENDING = "pending"  # it will measure, not yet begun
    MEASURING = "measuring"
    DONE = "done"
    SKIPPED = "skipped"  # --jobs, or the figures a previous run learned


@dataclass(frozen=True, slots=True)
# A record: one field per figure a job view shows.
# pylint: disable-next=too-many-instance-attributes
class JobView:
    """One job as an observer shows it."""

    job_id: int
    name: str
    output_path: Path
    log_path: Path
    #: The command as shown (the final output name), shared with the plan's JobSpec: the
    #: quoted line is made when something shows it, not kept for 100,000 jobs.
    argv: tuple[str, ...]
    input_size: int
    # How it goes: the fields of its last state change (times on the host's clock).
    state: JobState = JobState.QUEUED
    reason: str = ""
    attempt: int = 0
    node: str = ""
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    started: float | None = None
    ended: float | None = None
    output_bytes: int = 0  # a succeeded job's final output size (0: not known)
    detail: str = ""  # a failure's last meaningful log line (core/logtail.py)
    #: The input, as the plan has it: `orch-tui pause DIR JOB` names a job by its path.
    input_path: Path | None = None
    #: An active job's progress as its probe last measured it (0..1; None: nothing measures
    #: it, or not yet): what `status` and an attaching screen show, never a guess.
    progress: float | None = None

    @property
    def command(self) -> str:
        """The command as one copy-pasteable shell line."""
        return shell_quote(self.argv)


@dataclass(frozen=True, slots=True)
class RunSnapshot:  # pylint: disable=too-many-instance-attributes  # one field per run figure
    """Everything about a run an observer needs to draw it now."""

    #: In plan order: a tuple, or a `JobViews` that makes queued jobs' views when read.
    jobs: Sequence[JobView]
    counts: Counts
    first_launch: float | None = None
    #: The ETA model's measurements (with the jobs' sizes and states: the same ETA on attach).
    eta: EtaState = EtaState()
    preflight: ev.PreflightDone | None = None
    limit: int = 0
    limit_source: LimitSource | None = None
    limit_reason: str = ""
    decision: ScalingDecision | None = None
    pressure: tuple[ev.ResourcePressure, ...] = ()
    calibration: CalibrationStatus = CalibrationStatus.PENDING
    calibration_job: int | None = None
    calibrated: ev.CalibrationFinished | None = None
    paused_all: bool = False
    finished: ev.RunFinished | None = None
    joblog: Path | None = None
    #: The run's config file: a screen that attaches titles its header with it, as the one
    #: that started the run does.
    config: Path | None = None
    #: Every node known (a local run: one, this machine), with its latest figures, its state
    #: and the jobs it holds: the nodes panel of an attached TUI and `orch-tui status`.
    nodes: tuple[NodeView, ...] = ()

    def tally(self) -> Tally:
        """A tally that goes on from this snapshot."""
        jobs = self.jobs
        if isinstance(jobs, JobViews):
            sizes = jobs.sizes()
        else:
            sizes = {job.job_id: job.input_size for job in jobs}
        return Tally(job_states(jobs),
                     missing=self.counts.missing,
                     first_launch=self.first_launch,
                     sizes=sizes,
                     eta_state=self.eta)


def job_view(spec: JobSpec) -> JobView:
    """The view of a job nothing has happened to yet."""
    return JobView(job_id=spec.job_id,
                   name=spec.name,
                   input_path=spec.input_path,
                   input_size=spec.input_size,
                   argv=spec.display_argv,
                   log_path=spec.log_path,
                   output_path=spec.output_path)


class JobViews(Sequence[JobView]):
    """A snapshot's jobs in plan order, where a job nothing has happened to gets its view when
    it is read. A snapshot of 100,000 waiting jobs is then a copy of the few views that exist,
    not 100,000 new ones: the headless reporter's attach took seconds before the first launch.
    Immutable as a tuple is: `made` is the record's copy, never changed after."""

    __slots__ = ("_specs", "_by_id", "_made")

    def __init__(self, specs: Sequence[JobSpec], by_id: Mapping[int, JobSpec],
                 made: Mapping[int, JobView]) -> None:
        self._specs, self._by_id, self._made = specs, by_id, made

    @property
    def specs(self) -> Sequence[JobSpec]:
        """The plan's jobs, in order (the wire sends these in columns)."""
        return self._specs

    @property
    def made(self) -> Mapping[int, JobView]:
        """The views of the jobs something happened to."""
        return self._made

    def __len__(self) -> int:
        return len(self._specs)

    @overload
    def __getitem__(self, index: int) -> JobView:
        ...

    @overload
    def __getitem__(self, index: slice) -> tuple[JobView, ...]:
        ...

    def __getitem__(self, index: int | slice) -> JobView | tuple[JobView, ...]:
        if isinstance(index, slice):
            return tuple(self._view(spec) for spec in self._specs[index])
        return self._view(self._specs[index])

    def __iter__(self) -> Iterator[JobView]:
        return map(self._view, self._specs)

    def __eq__(self, other: object) -> bool:
        """The same views in the same order (as tuples compare)."""
        if not isinstance(other, JobViews):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # compared by value, as a list is

    def _view(self, spec: JobSpec) -> JobView:
        return self._made.get(spec.job_id) or job_view(spec)

    def states(self) -> dict[int, JobState]:
        """Every job's state, without making the queued jobs' views."""
        made = self._made
        return {
            job_id: view.state if (view := made.get(job_id)) else JobState.QUEUED
            for job_id in self._by_id
        }

    def sizes(self) -> dict[int, int]:
        """Every job's input size, from the specs."""
        return {job_id: spec.input_size for job_id, spec in self._by_id.items()}

    def get(self, job_id: int) -> JobView | None:
        """Job `job_id`'s view, None when the plan has no such job."""
        spec = self._by_id.get(job_id)
        return None if spec is None else self._view(spec)


def job_states(jobs: Sequence[JobView]) -> dict[int, JobState]:
    """Every job's state, without making a `JobViews`' queued views (100,000 of them took a
    control client's attach seconds)."""
    if isinstance(jobs, JobViews):
        return jobs.states()
    return {job.job_id: job.state for job in jobs}


def job_inputs(jobs: Sequence[JobView]) -> dict[int, tuple[str, Path]]:
    """Every job's name and input (what `orch-tui kill DIR clip.mp4` matches), from a
    `JobViews`' specs rather than 100,000 made views."""
    if isinstance(jobs, JobViews):
        return {spec.job_id: (spec.name, spec.input_path) for spec in jobs.specs}
    return {job.job_id: (job.name, job.input_path or Path(job.name)) for job in jobs}


def touched(jobs: Sequence[JobView]) -> Iterable[JobView]:
    """The views of the jobs something happened to (every job whose state ever changed):
    a `JobViews`' made views, any other list whole."""
    return jobs.made.values() if isinstance(jobs, JobViews) else jobs


def find_job(jobs: Sequence[JobView], job_id: int) -> JobView | None:
    """Job `job_id` of a snapshot: at once from a `JobViews`, by a scan from a plain tuple (a
    snapshot read from the wire, a test's)."""
    if isinstance(jobs, JobViews):
        return jobs.get(job_id)
    return next((job for job in jobs if job.job_id == job_id), None)


# pylint: disable-next=too-many-instance-attributes  # the run's figures a late observer needs
class RunRecord:
    """The run's state, kept up to date by `apply(event)` (a bus listener from the start)."""

    def __init__(self,
                 plan: Plan,
                 *,
                 calibrate: bool = True,
                 joblog: Path | None = None,
                 paused_all: Callable[[], bool] = lambda: False) -> None:
        # Views only for jobs something happened to: a queued job's is made from its spec when
        # a snapshot is taken, so 100,000 waiting jobs cost the record nothing per job. A
        # changed job's view is made when the next snapshot is taken, not per event: a run
        # nobody attaches to makes none (an event's dataclass copy was 5% of dispatch).
        self._plan_jobs = plan.jobs
        self._config = plan.config.path
        self._specs = {spec.job_id: spec for spec in plan.jobs}
        self._views: dict[int, JobView] = {}
        # job_id -> (its last change, when its attempt started, when it ended), not yet a view.
        self._changed: dict[int, tuple[ev.JobStateChanged, float | None, float | None]] = {}
        # job_id -> its attempt's last measured progress (active jobs with a probe only).
        self._progress: dict[int, float] = {}
        self.tally = Tally({job_id: JobState.QUEUED
                            for job_id in self._specs},
                           sizes={
                               job_id: spec.input_size
                               for job_id, spec in self._specs.items()
                           })
        self.joblog = joblog
        self._paused_all = paused_all
        self._fields: dict[str, Any] = {
            "calibration": CalibrationStatus.PENDING if calibrate else CalibrationStatus.SKIPPED
        }
        self._pressure: dict[ev.Resource, ev.ResourcePressure] = {}
        self._nodes = NodeTally()
        self._handlers: dict[type[ev.Event], Callable[[Any], None]] = {
            ev.JobStateChanged:
            self._on_job_state_changed,
            ev.JobSample:
            self._on_sample,
            ev.PreflightDone:
            lambda e: self._set(preflight=e),
            ev.LimitChanged:
            self._on_limit_changed,
            ev.CalibrationStarted:
            lambda e: self._set(calibration=CalibrationStatus.MEASURING, calibration_job=e.job_id),
            ev.CalibrationFinished:
            lambda e: self._set(
                calibration=CalibrationStatus.DONE, calibrated=e, decision=e.decision),
            ev.ResourcePressure:
            self._on_pressure,
            ev.RunFinished:
            lambda e: self._set(finished=e),
        }

    def calibrate(self, measure: bool) -> None:
        """Whether this run measures (known only once the journal said what it learned)."""
        self._set(calibration=CalibrationStatus.PENDING if measure else CalibrationStatus.SKIPPED)

    def __call__(self, event: ev.Event) -> None:
        self.tally.apply(event)
        self._nodes.apply(event)
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _set(self, **values: Any) -> None:
        self._fields.update(values)

    def _on_job_state_changed(self, event: ev.JobStateChanged) -> None:
        job_id = event.job_id
        if job_id not in self._specs:
            return
        last = self._changed.get(job_id)
        if last is not None:
            started, ended = last[1], last[2]
        else:
            view = self._views.get(job_id)
            started, ended = (view.started, view.ended) if view is not None else (None, None)
        if event.restarted or not (event.state.active and event.previous is not None
                                   and event.previous.active):
            self._progress.pop(job_id, None)  # a new attempt (or one started over), or an end
        if event.state is JobState.QUEUED:  # requeued or retried: the ended attempt is not its
            started = ended = None
        else:
            if event.state is JobState.RUNNING and (event.previous is not JobState.PAUSED
                                                    or event.restarted):  # a start, not a resume
                started, ended = event.time, None
            if event.state.finished:
                ended = event.time
        self._changed[job_id] = (event, started, ended)

    @property
    def jobs(self) -> dict[int, JobView]:
        """The views of the jobs something happened to, made now for those changed since."""
        for job_id, (event, started, ended) in self._changed.items():
            queued = event.state is JobState.QUEUED
            self._views[job_id] = dataclasses.replace(self._views.get(job_id)
                                                      or job_view(self._specs[job_id]),
                                                      state=event.state,
                                                      attempt=event.attempt,
                                                      node=event.node,
                                                      pid=None if queued else event.pid,
                                                      started=started,
                                                      ended=ended,
                                                      exit_code=None if queued else event.exit_code,
                                                      signal=None if queued else event.signal,
                                                      reason=event.reason,
                                                      output_bytes=event.output_bytes or 0,
                                                      detail="" if queued else event.detail)
        self._changed.clear()
        return self._views

    def _on_sample(self, event: ev.JobSample) -> None:
        job_id, progress = event.job_id, event.progress
        state = self.tally.state_of(job_id)  # the tally saw this event first
        if progress is not None and state is not None and state.active and job_id in self._specs:
            self._progress[job_id] = progress
        else:
            self._progress.pop(job_id, None)  # nothing measures it (any more)

    def _on_limit_changed(self, event: ev.LimitChanged) -> None:
        self._set(limit=event.limit, limit_source=event.source, limit_reason=event.reason)
        if event.decision is not None:
            self._set(decision=event.decision)

    def _on_pressure(self, event: ev.ResourcePressure) -> None:
        self._pressure[event.resource] = event

    def snapshot(self) -> RunSnapshot:
        """The state now, frozen."""
        views = dict(self.jobs)
        for job_id, fraction in self._progress.items():  # a few (the running jobs)
            views[job_id] = dataclasses.replace(views[job_id], progress=fraction)
        return RunSnapshot(jobs=JobViews(self._plan_jobs, self._specs, views),
                           counts=self.tally.counts(),
                           first_launch=self.tally.first_launch,
                           eta=self.tally.work.state(),
                           pressure=tuple(self._pressure.values()),
                           paused_all=self._paused_all(),
                           joblog=self.joblog,
                           config=self._config,
                           nodes=self._nodes.views(),
                           **self._fields)
