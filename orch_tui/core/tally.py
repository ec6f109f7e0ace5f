"""One tally of the run: counts by state, the ETA and the exit code, for every observer.

The TUI's counters and finished screen, the headless progress and summary lines and the
orchestrator's exit code all read these figures, so they can never disagree. The definitions are
those of "Numbers and states an operator can trust": `running` excludes paused jobs (counted as
`paused`) and jobs sent SIGTERM (`stopping`), a job killed by the operator is `killed`, never
`failed`, and a queued job the operator took off the queue is `cancelled`, not a failure either;
`ended` (every final state, missing inputs included) is what the progress bar fills with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, fields

from orch_tui.core import events as ev
from orch_tui.core.eta import Eta, EtaModel, EtaState
from orch_tui.core.events import JobState

#: The work of these inputs is done: succeeded here, or already done before.
DONE_STATES = frozenset({JobState.SUCCEEDED, JobState.SKIPPED})
#: Jobs holding a process: they count against the limit (a stopping one until it is gone).
ACTIVE_STATES = frozenset({JobState.RUNNING, JobState.PAUSED, JobState.STOPPING})
#: Ended without their work done: what the TUI's `failed` filter lists. Cancelled is not one:
#: the operator chose it, and a resume runs it.
BAD_STATES = frozenset({JobState.FAILED, JobState.KILLED, JobState.MISSING})


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one count per job state
class Counts:
    """How many jobs are in each state (missing inputs included): plain, immutable data."""

    queued: int = 0
    running: int = 0
    paused: int = 0
    stopping: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    cancelled: int = 0
    skipped: int = 0
    missing: int = 0

    @classmethod
    def of(cls, states: Iterable[JobState], *, missing: int = 0) -> Counts:
        """Count `states`, plus `missing` inputs that never became a job."""
        found = dict.fromkeys(JobState, 0)
        for state in states:
            found[state] += 1
        found[JobState.MISSING] += missing
        return cls(**{state.value: n for state, n in found.items()})

    def __getitem__(self, state: JobState) -> int:
        value: int = getattr(self, state.value)
        return value

    @property
    def total(self) -> int:
        """Every input of the run."""
        return sum(astuple(self))

    @property
    def ended(self) -> int:
        """Inputs in a final state, whatever it is (what the progress bar shows)."""
        return sum(self[state] for state in ev.FINISHED_STATES)

    @property
    def done(self) -> int:
        """Inputs whose work is done: succeeded here, or already done before."""
        return sum(self[state] for state in DONE_STATES)

    @property
    def active(self) -> int:
        """Jobs holding a process (running, paused or stopping): what counts against the
        limit."""
        return sum(self[state] for state in ACTIVE_STATES)

    @property
    def exit_code(self) -> int:
        """0 when every input succeeded, was already done or was cancelled by the operator,
        else 1 (a failure, a kill, a missing input, or work left undone)."""
        return 0 if self.done + self.cancelled == self.total else 1

    def as_dict(self) -> dict[str, int]:
        """`RunFinished.counts`: the states that occur, and `missing` always."""
        return {
            field.name: getattr(self, field.name)
            for field in fields(self) if getattr(self, field.name) or field.name == "missing"
        }


class Tally:
    """Counts kept up to date from the event stream (`apply(event)` with every event).

    Cheap at any rate: a state change moves one job between two counters. Start it from a
    snapshot's states (and its ETA measurements) to take over a run midway. The ETA is the work
    model's (core/eta.py), which needs the inputs' sizes."""

    def __init__(self,
                 states: Mapping[int, JobState] | None = None,
                 *,
                 missing: int = 0,
                 first_launch: float | None = None,
                 sizes: Mapping[int, int] | None = None,
                 eta_state: EtaState | None = None) -> None:
        self._states: dict[int, JobState] = dict(states or {})
        self._counts = dict.fromkeys(JobState, 0)
        self._counts.update(Counter(self._states.values()))
        self.missing = missing
        self.first_launch = first_launch
        self.work = EtaModel(sizes or {}, self._states, eta_state)

    def add_job(self, job_id: int, state: JobState = JobState.QUEUED) -> None:
        """A job of the plan, before any event about it."""
        self.set_state(job_id, state)

    def apply(self, event: ev.Event) -> None:
        """Fold one event in (preflight, state changes, and samples and the end for the ETA)."""
        if isinstance(event, ev.JobStateChanged):
            self.change(event)
        elif isinstance(event, ev.PreflightDone):
            self.missing = event.missing
        else:
            self.work.apply(event)

    def change(self, event: ev.JobStateChanged) -> None:
        """One job moved: count it, note the first launch, and tell the ETA's work model."""
        previous = self._states.get(event.job_id)
        if event.state is JobState.RUNNING and previous is not JobState.PAUSED:
            if self.first_launch is None:
                self.first_launch = event.time
        self.work.on_state(event)
        self.set_state(event.job_id, event.state)

    def set_state(self, job_id: int, state: JobState) -> None:
        """Put `job_id` in `state` (moving it out of its previous one)."""
        previous = self._states.get(job_id)
        if previous is not None:
            self._counts[previous] -= 1
        self._states[job_id] = state
        self._counts[state] += 1

    def state_of(self, job_id: int) -> JobState | None:
        """The job's current state, None for a job never seen."""
        return self._states.get(job_id)

    def states(self) -> dict[int, JobState]:
        """Every job's state (a copy)."""
        return dict(self._states)

    def counts(self) -> Counts:
        """The counts now, as an immutable value."""
        found = dict(self._counts)
        found[JobState.MISSING] += self.missing
        return Counts(**{state.value: n for state, n in found.items()})

    def eta(self, now: float) -> Eta:
        """Time until the work left is done at the rate work is being done now."""
        return self.work.eta(now)
