"""The TUI's view-model: core events folded into rows and totals, with no Textual in sight.

The bus listener applies every event here synchronously (a dict update, cheap at any rate);
screens read the model from a timer and redraw only the rows marked dirty since their last look,
so a thousand jobs sampling every second never flood the message queue.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from orch_tui.core import events as ev
from orch_tui.core.eta import Eta
from orch_tui.core.events import JobState
from orch_tui.core.nodes import NodeTally, combined
from orch_tui.core.plan import JobSpec, Plan, shell_quote
from orch_tui.core.scaling import ScalingDecision
from orch_tui.core.snapshot import JobView, JobViews, RunSnapshot
from orch_tui.core.tally import DONE_STATES, Counts, Tally
from orch_tui.tui.history import JobHistory, SystemHistory


class Planned(Protocol):
    """A job's fixed facts: a JobView, `Given` values, or `FromSpec` (made when shown)."""

    @property
    def argv(self) -> tuple[str, ...]:
        """The command as shown (the final output name)."""

    @property
    def log_path(self) -> Path:
        """Its log."""

    @property
    def output_path(self) -> Path:
        """Its final output."""


class Given(NamedTuple):
    """A job's fixed facts given as values (a test's or a benchmark's row)."""
    argv: tuple[str, ...]
    log_path: Path
    output_path: Path


class FromSpec:
    """A job's fixed facts made from its spec when a screen shows them: attaching to a run of
    100,000 queued jobs makes no paths and no command lines (that took seconds)."""

    __slots__ = ("spec", )

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec

    @property
    def argv(self) -> tuple[str, ...]:
        """The command as shown (the final output name)."""
        return self.spec.display_argv

    @property
    def log_path(self) -> Path:
        """Its log."""
        return self.spec.log_path

    @property
    def output_path(self) -> Path:
        """Its final output."""
        return self.spec.output_path


@dataclass(slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per figure a row shows
class JobRow:
    """Everything a screen shows about one job (slots: 100,000 rows carry no __dict__ each)."""

    job_id: int
    name: str
    input_size: int
    planned: Planned  # the command, log and output: made when shown, not for every row
    state: JobState = JobState.QUEUED
    attempt: int = 0
    node: str = ""
    pid: int | None = None
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    cpu: float = 0.0
    rss: int = 0
    progress: float | None = None  # the probe's: at most 0.99 until the job succeeds
    progress_source: ev.ProgressSource = ev.ProgressSource.NONE
    fps: float | None = None
    speed: float | None = None  # times realtime (ffmpeg)
    eta_seconds: float | None = None  # this job's time left, as of its last sample
    output_bytes: int = 0
    #: CPU and RSS of the current attempt, fixed-size; None until its first sample, so a
    #: queued job costs nothing and a finished one keeps ~1 KB to be charted.
    history: JobHistory | None = None
    version: int = 0
    detail: str = ""  # a failure's last meaningful log line (core/logtail.py)

    @property
    def argv(self) -> tuple[str, ...]:
        """The command as shown (the final output name)."""
        return self.planned.argv

    @property
    def log_path(self) -> Path:
        """Its log."""
        return self.planned.log_path

    @property
    def output_path(self) -> Path:
        """Its final output."""
        return self.planned.output_path

    @property
    def command(self) -> str:
        """The command as one copy-pasteable shell line."""
        return shell_quote(self.argv)

    def elapsed(self, now: float) -> float | None:
        """Seconds since the current attempt started (frozen once it ended)."""
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started


def forget_attempt(row: JobRow) -> None:
    """Clear what the row's last attempt measured (a new attempt, or back in the queue): no
    dead pid, elapsed time or progress is shown for an attempt that is over."""
    row.pid = row.started = row.ended = row.exit_code = row.signal = None
    row.node = ""  # a queued job is on no node (the node filter must not list it there)
    row.cpu, row.rss, row.progress, row.output_bytes = 0.0, 0, None, 0
    row.fps = row.speed = row.eta_seconds = None
    row.progress_source = ev.ProgressSource.NONE
    row.history = None
    row.detail = ""


def row_of(view: JobView) -> JobRow:
    """A row showing one job of a snapshot (a succeeded one 100%, as its end event shows it:
    the snapshot carries a probe's figure for live attempts only)."""
    return JobRow(job_id=view.job_id,
                  name=view.name,
                  input_size=view.input_size,
                  planned=view,
                  state=view.state,
                  attempt=view.attempt,
                  node=view.node,
                  pid=view.pid,
                  started=view.started,
                  ended=view.ended,
                  exit_code=view.exit_code,
                  signal=view.signal,
                  reason=view.reason,
                  output_bytes=view.output_bytes,
                  detail=view.detail,
                  progress=1.0 if view.state is JobState.SUCCEEDED else view.progress)


def row_of_spec(spec: JobSpec) -> JobRow:
    """A queued row of a job of the plan."""
    return JobRow(job_id=spec.job_id,
                  name=spec.name,
                  input_size=spec.input_size,
                  planned=FromSpec(spec))


#: The table's filters, `f` cycles them in this order. Each state the run screen's header counts
#: on its own has a filter of its own: `running` lists the jobs at work (a stopping one until
#: it is gone), `failed` the jobs that ended in an error (a missing input too; a killed one is
#: `killed`, a cancelled one only in `all`: the operator chose it), `done` the jobs whose work
#: is done.
FILTERS: dict[str, frozenset[JobState] | None] = {
    "all": None,
    "running": frozenset({JobState.RUNNING, JobState.STOPPING}),
    "paused": frozenset({JobState.PAUSED}),
    "queued": frozenset({JobState.QUEUED}),
    "failed": frozenset({JobState.FAILED, JobState.MISSING}),
    "killed": frozenset({JobState.KILLED}),
    "done": DONE_STATES,
}

_STATE_RANK = {state: rank for rank, state in enumerate(JobState)}
_ACTIVE = frozenset(state for state in JobState if state.active)  # a set: cheaper than .active


def _elapsed_key(row: JobRow, now: float) -> float:
    elapsed = row.elapsed(now)
    return -1.0 if elapsed is None else elapsed


#: The table's sort columns, `s` cycles them in this order: each maps a row (and the clock) to
#: its sort value; "index" is the plan's order and needs no key. A missing figure sorts first.
SORTS: dict[str, Callable[[JobRow, float], float] | None] = {
    "index": None,
    "state": lambda row, now: _STATE_RANK[row.state],
    "elapsed": _elapsed_key,
    "progress": lambda row, now: -1.0 if row.progress is None else row.progress,
    "cpu": lambda row, now: row.cpu if row.state in _ACTIVE else -1.0,
    "rss": lambda row, now: row.rss if row.state in _ACTIVE else -1,
    "output": lambda row, now: row.output_bytes,
}
#: Sorts on figures that change with every sample: the table re-sorts them on its refresh tick
#: (at most once per tick); "index" never changes and "state" only with a state change.
LIVE_SORTS = frozenset({"elapsed", "progress", "cpu", "rss", "output"})


def passes(row: JobRow, states: frozenset[JobState] | None, node: str | None) -> bool:
    """Whether a row passes a state filter (None: any state) and a node filter (None: any)."""
    return (states is None or row.state in states) and (node is None or row.node == node)


def cycle(names: list[str], current: str, step: int) -> str:
    """The name `step` places after `current` in `names`, wrapping (f/F, s)."""
    return names[(names.index(current) + step) % len(names)]


# The run-wide figures every screen reads, in one place.
# pylint: disable-next=too-many-instance-attributes
class RunModel:
    """Rows and run-wide figures, updated by `apply(event)`."""

    def __init__(self, rows: list[JobRow], *, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.rows: dict[int, JobRow] = {row.job_id: row for row in rows}
        self.order: list[int] = [row.job_id for row in rows]
        self.dirty: set[int] = set()
        self.states_version = 0
        self._positions: dict[int, int] | None = None  # job id -> place in the plan's order
        self.preflight: ev.PreflightDone | None = None
        self.system: ev.SystemSample | None = None
        #: Every system sample since the TUI saw the run, in bounded memory (tui/history.py):
        #: with several nodes, one point a sweep of them all (`system` is then their sum).
        self.system_history = SystemHistory()
        #: Each node's latest figures, state and jobs (the nodes panel, the node filter).
        self.nodes = NodeTally()
        self._sweep: tuple[float, set[str]] | None = None  # several nodes: a sweep not charted
        self._system_nodes: frozenset[str] = frozenset()  # whose sum `system` is
        self._charted_nodes: frozenset[str] = frozenset()  # whose sums the charts are
        #: Jobs holding a process (running, paused, stopping): at most the limit plus the
        #: paused ones, so a figure over them (the table's sparkline scale) is cheap at 100,000.
        self.active: set[int] = {row.job_id for row in rows if row.state.active}
        #: Jobs that succeeded since the first launch and their inputs' bytes: the throughput.
        self.succeeded_jobs = 0
        self.succeeded_bytes = 0
        self.limit = 0
        self.limit_reason = ""
        self.limit_source: ev.LimitSource | None = None
        self.decision: ScalingDecision | None = None
        self.calibration_job: int | None = None
        self.calibration_window = 0.0
        self.calibration_started: float | None = None
        self.calibration: list[ev.CalibrationProgress] = []
        self.calibrated: ev.CalibrationFinished | None = None
        self.pressure: dict[ev.Resource, ev.ResourcePressure] = {}
        self.notices: collections.deque[ev.Notice] = collections.deque(maxlen=50)
        self.finished: ev.RunFinished | None = None
        self.joblog_path: Path | None = None  # shown on the finished screen when --joblog
        self.config_path: Path | None = None  # the run's config, for a screen that attached
        #: The operator's quit: "wait" for the running jobs or "kill" them (None: not quitting);
        #: the run screen says what it is waiting for until the run is over.
        self.quitting: str | None = None
        # Counts and ETA come from the one tally every observer uses.
        self.tally = Tally({row.job_id: row.state
                            for row in rows},
                           sizes={row.job_id: row.input_size
                                  for row in rows})
        # One dispatch idiom for every observer: a table from event type to handler.
        self._handlers: dict[type[ev.Event], Callable[[Any], None]] = {
            ev.PreflightDone: self._on_preflight_done,
            ev.JobStateChanged: self._on_job_state_changed,
            ev.JobSample: self._on_job_sample,
            ev.SystemSample: self._on_system_sample,
            ev.LimitChanged: self._on_limit_changed,
            ev.CalibrationStarted: self._on_calibration_started,
            ev.CalibrationProgress: self._on_calibration_progress,
            ev.CalibrationFinished: self._on_calibration_finished,
            ev.ResourcePressure: self._on_resource_pressure,
            ev.NodeStateChanged: self._on_node_state_changed,
            ev.Notice: self._on_notice,
            ev.RunFinished: self._on_run_finished,
        }

    @classmethod
    def from_plan(cls, plan: Plan, *, clock: Callable[[], float]) -> RunModel:
        """One row per job of the plan, all queued."""
        return cls([row_of_spec(spec) for spec in plan.jobs], clock=clock)

    @classmethod
    def from_snapshot(cls, snapshot: RunSnapshot, *, clock: Callable[[], float]) -> RunModel:
        """The model of a run already under way (or just started): what attaching gives."""
        jobs = snapshot.jobs
        if isinstance(jobs, JobViews):  # a run's own snapshot: queued jobs from their specs
            made = jobs.made
            rows = [
                row_of(view) if (view := made.get(spec.job_id)) else row_of_spec(spec)
                for spec in jobs.specs
            ]
        else:
            rows = [row_of(view) for view in jobs]
        model = cls(rows, clock=clock)
        model.tally = snapshot.tally()
        model.preflight = snapshot.preflight
        model.limit, model.limit_reason = snapshot.limit, snapshot.limit_reason
        model.limit_source = snapshot.limit_source
        model.decision = snapshot.decision
        model.calibration_job = snapshot.calibration_job
        model.calibrated = snapshot.calibrated
        model.pressure = {event.resource: event for event in snapshot.pressure}
        model.finished = snapshot.finished
        model.joblog_path = snapshot.joblog
        model.config_path = snapshot.config
        model.nodes = NodeTally(snapshot.nodes)
        model.nodes.seed_jobs((row.job_id, row.node) for row in rows if row.state.active)
        if len(model.nodes) > 1 and (samples := model.nodes.samples()):
            model.system = combined(samples)  # a local run's gauges wait for a sample
        model.count_succeeded()
        return model

    def count_succeeded(self) -> None:
        """Count the jobs that succeeded since the first launch (once, when attaching: later
        state changes keep the sums); earlier runs' successes are no throughput of this one."""
        start = self.tally.first_launch
        done = [
            row for row in self.rows.values() if row.state is JobState.SUCCEEDED
            and start is not None and row.ended is not None and row.ended >= start
        ]
        self.succeeded_jobs = len(done)
        self.succeeded_bytes = sum(row.input_size for row in done)

    # --- applying events

    def apply(self, event: ev.Event) -> None:
        """Fold one core event into the model (called for every event, on the loop)."""
        if isinstance(event, (ev.JobSample, ev.RunFinished)):
            self.tally.work.apply(event)  # the ETA's progress, and its end
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _on_preflight_done(self, event: ev.PreflightDone) -> None:
        self.preflight = event
        self.tally.apply(event)

    def _on_job_state_changed(self, event: ev.JobStateChanged) -> None:
        row = self.rows.get(event.job_id)
        if row is None:
            return
        self.tally.change(event)
        self.nodes.apply(event)
        if (event.state is JobState.SUCCEEDED) != (row.state is JobState.SUCCEEDED):
            sign = 1 if event.state is JobState.SUCCEEDED else -1
            self.succeeded_jobs += sign
            self.succeeded_bytes += sign * row.input_size
        if event.state.active:
            self.active.add(row.job_id)
        else:
            self.active.discard(row.job_id)
        if event.state is JobState.RUNNING and (event.previous is not JobState.PAUSED
                                                or event.restarted):  # a start, not a resume
            forget_attempt(row)
            row.started = event.time
        if event.state is JobState.SUCCEEDED:
            row.progress = 1.0
            if event.output_bytes is not None:  # the final file's, not the last sample's
                row.output_bytes = event.output_bytes
        elif event.state.finished:
            row.output_bytes = 0  # its partial output was deleted: no size to show
        if event.state.finished:
            row.ended, row.eta_seconds = event.time, None
        row.state = event.state
        row.attempt = event.attempt
        row.node = event.node
        row.pid = event.pid
        row.exit_code = event.exit_code
        row.signal = event.signal
        row.reason = event.reason
        row.detail = event.detail
        if event.state is JobState.QUEUED:  # requeued or retried: it waits like a new job
            forget_attempt(row)
        self._touch(row)
        self.states_version += 1

    def _on_job_sample(self, event: ev.JobSample) -> None:
        row = self.rows.get(event.job_id)
        if row is None:
            return
        row.cpu, row.rss = event.cpu_cores, event.rss_bytes
        row.progress, row.output_bytes = event.progress, event.output_bytes
        row.progress_source, row.fps, row.speed = event.progress_source, event.fps, event.speed
        row.eta_seconds = event.eta_seconds
        row.node, row.pid = event.node, event.pid
        if row.history is None:
            row.history = JobHistory()
        row.history.add(event.cpu_cores, event.rss_bytes, event.time)
        self._touch(row)

    def _on_system_sample(self, event: ev.SystemSample) -> None:
        nodes = self.nodes
        nodes.apply(event)
        if len(nodes) <= 1:  # one machine: each sample is the whole
            self.system = event
            self._chart(event)
            return
        # Several nodes: one sample each a sweep, all with the sweep's time. The gauges show
        # their sum at once; the charts get one point a sweep, once every node that is not
        # lost has reported (or, when one stays silent, when the next sweep begins).
        samples = nodes.samples()
        sweep = self._sweep
        if sweep is not None and sweep[0] != event.time and self.system is not None:
            self._chart_nodes()  # the previous sweep, short of a silent node
        if sweep is None or sweep[0] != event.time:
            sweep = self._sweep = (event.time, set())
        sweep[1].add(event.node)
        self.system = combined(samples) if samples else event
        self._system_nodes = frozenset(sample.node for sample in samples)
        if sweep[1] >= self._system_nodes:
            self._chart_nodes()
            self._sweep = None

    def _chart_nodes(self) -> None:
        """Chart the nodes' sum; a node that joined or was lost restarts the charts (the sums
        of other nodes do not compare, and the memory chart is drawn against today's total)."""
        assert self.system is not None
        if self._system_nodes != self._charted_nodes:
            self._charted_nodes = self._system_nodes
            self.system_history = SystemHistory()
        self._chart(self.system)

    def _on_node_state_changed(self, event: ev.NodeStateChanged) -> None:
        self.nodes.apply(event)

    def _chart(self, sample: ev.SystemSample) -> None:
        self.system_history.add(sample.time, sample.cpu_percent, sample.available_memory,
                                sample.free_disk - sample.projected_disk_use)

    def _on_limit_changed(self, event: ev.LimitChanged) -> None:
        self.limit, self.limit_reason = event.limit, event.reason
        self.limit_source = event.source
        if event.decision is not None:
            self.decision = event.decision

    def _on_calibration_started(self, event: ev.CalibrationStarted) -> None:
        self.calibration_job = event.job_id
        self.calibration_window = event.window
        self.calibration_started = event.time
        self.calibration = []

    def _on_calibration_progress(self, event: ev.CalibrationProgress) -> None:
        self.calibration.append(event)

    def _on_calibration_finished(self, event: ev.CalibrationFinished) -> None:
        self.calibrated = event
        self.decision = event.decision

    def _on_resource_pressure(self, event: ev.ResourcePressure) -> None:
        self.pressure[event.resource] = event

    def _on_notice(self, event: ev.Notice) -> None:
        self.notices.append(event)

    def _on_run_finished(self, event: ev.RunFinished) -> None:
        self.finished = event

    def _touch(self, row: JobRow) -> None:
        row.version += 1
        self.dirty.add(row.job_id)

    # --- reading

    def take_dirty(self) -> set[int]:
        """The ids changed since the last call (and forget them)."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def visible(self,
                name: str,
                sort: str = "index",
                *,
                reverse: bool = False,
                node: str | None = None) -> list[int]:
        """Job ids passing the filter `name` (a key of FILTERS) and, with a `node`, whose
        attempt ran there, in the order of the sort column `sort` (a key of SORTS; ties keep
        the plan's order). O(n log n) at most: the table calls it on a key, or once per
        refresh when a live column is sorted."""
        states = FILTERS[name]
        rows = self.rows
        if states is None and node is None:
            ids = list(self.order)
        else:
            ids = [job_id for job_id in self.order if passes(rows[job_id], states, node)]
        if SORTS[sort] is not None:
            ids.sort(key=self.sort_key(sort, reverse))
        elif reverse:
            ids.reverse()
        return ids

    def sort_key(self, sort: str, reverse: bool) -> Callable[[int], tuple[float, int]]:
        """A job id's place in the order of the sort column `sort`: (value, place in the plan),
        the value negated when reversed, so that ties keep the plan's order either way and one
        job can be put back in place with bisect (the table's re-sort of changed rows)."""
        value = SORTS[sort] or (lambda row, now: 0.0)
        positions = self._positions
        if positions is None:
            positions = self._positions = {job_id: index for index, job_id in enumerate(self.order)}
        rows, now, sign = self.rows, self.clock(), -1 if reverse else 1
        return lambda job_id: (sign * value(rows[job_id], now), positions[job_id])

    def find(self, ids: list[int], pattern: str, start: int, step: int = 1) -> int | None:
        """The index in `ids` of the first job whose input name contains `pattern` (any case),
        from `start` on in the direction of `step` (1 or -1), wrapping; None when none does.
        One pass at most (~15 ms at 100,000 jobs)."""
        if not ids or not pattern:
            return None
        needle = pattern.casefold()
        rows, count = self.rows, len(ids)
        for offset in range(count):
            index = (start + step * offset) % count
            if needle in rows[ids[index]].name.casefold():
                return index
        return None

    @property
    def total(self) -> int:
        """Inputs in the run, missing ones included."""
        return len(self.rows) + self.tally.missing

    def counts(self) -> Counts:
        """Jobs by state, with the definitions every observer shares (core/tally.py)."""
        return self.tally.counts()

    def eta(self) -> Eta:
        """Time until the work left is done, `paused`, or nothing yet (core/eta.py)."""
        return self.tally.eta(self.clock())

    def wall_seconds(self) -> float | None:
        """Seconds since the run's first launch (its own total once it finished); None before
        anything was launched."""
        if self.finished is not None:
            return self.finished.wall_seconds
        start = self.tally.first_launch
        return None if start is None else max(0.0, self.clock() - start)
