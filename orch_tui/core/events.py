"""Typed, immutable events: the only way the core tells observers what happened.

The TUI and the headless reporter are both listeners of one `EventBus`; neither reads the
scheduler's internals, so a second runner (a Dask cluster) or a third observer (a web view) can be
added without touching them. Events are frozen dataclasses with slots: cheap to create at sample
rate and safe to hand to another thread.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orch_tui.core.scaling import CapacitySource

if TYPE_CHECKING:
    from orch_tui.core.scaling import ProcessProfile, ScalingDecision


class JobState(enum.Enum):
    """Lifecycle of one job; the terminal states never change except by an explicit requeue."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    #: SIGTERM sent (kill, timeout, shutdown, memory): it still holds a process, and so its
    #: slot, until the process is gone; then it ends (killed, failed, or queued again).
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    #: Taken off the queue by the operator before it ran: not a failure, no output, so a
    #: resume (or a requeue) runs it.
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    MISSING = "missing"

    # Members are singletons compared by identity, so identity hashing is consistent with
    # equality; Enum's own __hash__ (hash of the name, in Python) was called 40 times a job,
    # about 2% of the run's CPU (cProfile: tallies and ETA sets are keyed by state).
    __hash__ = object.__hash__

    @property
    def finished(self) -> bool:
        """True for states a job only leaves by being requeued."""
        return self in FINISHED_STATES

    @property
    def active(self) -> bool:
        """True while the job holds a process (and counts against the limit)."""
        return self in (JobState.RUNNING, JobState.PAUSED, JobState.STOPPING)


class StopReason(enum.Enum):
    """Why a job ended other than by succeeding: a fact observers branch on (the joblog's
    Exitval, the journal), never parsed out of the human `reason` text."""

    EXIT = "exit"  # exited by itself with a non-zero status
    SIGNAL = "signal"  # died of a signal nobody here sent
    TIMEOUT = "timeout"  # jobs.timeout ran out: terminated by the orchestrator
    OPERATOR = "killed by operator"  # the operator's kill of a running or paused job
    CANCELLED = "cancelled by operator"  # the operator's kill of a queued job
    INTERRUPTED = "interrupted"  # the whole run was stopped (SIGINT, SIGTERM, q then kill)
    NO_OUTPUT = "no output"  # exit 0 but no usable output to rename
    VANISHED = "input vanished"  # its input was gone when it was about to start
    NOT_STARTED = "could not start"  # its command or its log could not be set up
    MEMORY = "out of memory"  # memory stayed critical with it running alone: killed by us
    MEMORY_REQUEUED = "memory critical"  # killed by us as the youngest, back in the queue
    LOST = "lost"  # the runner lost its process (a cluster that went away): no exit to tell


class ProgressSource(enum.Enum):
    """Which probe measured a job's progress (core/probes.py)."""

    FFMPEG = "ffmpeg"  # media time done over the input's duration, from ffmpeg's status lines
    READ_OFFSET = "read offset"  # how far into its input the job has read
    NONE = "none"  # nothing can tell


class OutputBasis(enum.Enum):
    """What a running job's final output size is extrapolated from (core/calibration.py)."""

    MEDIA_TIME = "media time"  # bytes written over ffmpeg's media fraction done
    INPUT_READ = "input read"  # bytes written over the fraction of the input read
    INPUT_SIZE = "input size"  # nothing to extrapolate from: assumed as large as the input


class PauseReason(enum.Enum):
    """Who paused a job, so 'resume all' and memory relief resume only what they should."""

    OPERATOR = "operator"
    ALL = "pause all"
    MEMORY = "memory critically low"


class LimitSource(enum.Enum):
    """Where the number of jobs allowed at once (and the figures behind it) came from."""

    WINDOW = "window"  # calibration: measured over the stabilization window
    WHOLE_LIFE = "whole life"  # calibration: the job ended inside the window
    LEARNED = "learned"  # from the jobs that finished in this run
    PREVIOUS_RUN = "previous run"  # figures a previous run learned, from the journal
    OPERATOR = "operator"  # + / - or set limit
    MAX_PROCS = "max procs"  # --jobs (--max-procs): a fixed count, no calibration
    MEMORY_PRESSURE = "memory pressure"  # a job was requeued: lowered from the memory it reached
    ADAPTIVE = "adaptive"  # --adaptive: one job more than the cpu rule tried, kept or undone

    @property
    def measured(self) -> bool:
        """True for a calibration run's own result (the window or a job's whole life)."""
        return self in (LimitSource.WINDOW, LimitSource.WHOLE_LIFE)

    @property
    def label(self) -> str:
        """Short words for a status line."""
        return _LIMIT_LABELS[self]

    @property
    def explained(self) -> str:
        """Where the per-process figures came from, in a sentence's words."""
        return _LIMIT_EXPLAINED.get(self, self.label)


_LIMIT_LABELS = {
    LimitSource.WINDOW: "calibration",
    LimitSource.WHOLE_LIFE: "calibration",
    LimitSource.LEARNED: "learned",
    LimitSource.PREVIOUS_RUN: "learned in a previous run",
    LimitSource.OPERATOR: "set by operator",
    LimitSource.MAX_PROCS: "--jobs",
    LimitSource.MEMORY_PRESSURE: "memory critical",
    LimitSource.ADAPTIVE: "adaptive",
}
_LIMIT_EXPLAINED = {
    LimitSource.WINDOW: "measured over the stabilization window",
    LimitSource.WHOLE_LIFE: "whole-life figures: the job ended inside the window",
    LimitSource.PREVIOUS_RUN: "figures learned in a previous run",
}


class Resource(enum.Enum):
    """A resource whose headroom the core guards."""

    MEMORY = "memory"
    DISK = "disk"


class PressureLevel(enum.Enum):
    """How close a resource is to its reserve."""

    OK = "ok"  # launching
    LOW = "low"  # below the reserve: no new launches
    CRITICAL = "critical"  # memory below half its reserve: the newest job is paused


class NoticeLevel(enum.Enum):
    """How loudly an observer should show a Notice."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


FINISHED_STATES = frozenset({
    JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED, JobState.CANCELLED, JobState.SKIPPED,
    JobState.MISSING
})
#: What the operator's requeue takes: jobs that ended without their work done, by their fault
#: or the operator's (a missing input would only go missing again).
REQUEUEABLE = frozenset({JobState.FAILED, JobState.KILLED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; `time` is the loop's monotonic clock when it was emitted."""

    time: float


#: How many inputs that cannot run a PreflightDone names (all are counted).
PROBLEMS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class PreflightDone(Event):
    """The plan is known: how many jobs run, how many are skipped or missing."""

    total: int
    runnable: int
    skipped: int
    missing: int
    duplicates: int
    input_bytes: int
    #: The first PROBLEMS_SHOWN inputs that cannot run, as (list line, path, "missing",
    #: "directory" or "unreadable"): no job ever runs for them, so only this names them to a
    #: screen that attaches after the notices.
    problems: tuple[tuple[int, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: the facts of a state change
class JobStateChanged(Event):
    """A job moved from one state to another (with why, where it finished)."""

    job_id: int
    name: str
    state: JobState
    previous: JobState | None
    attempt: int
    node: str = ""
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    stop: StopReason | None = None
    #: SUCCEEDED only: the size of the final output after its rename (the last sample saw a
    #: partial temporary file), so every observer shows the real size.
    output_bytes: int | None = None
    #: A failure's last meaningful log line (core/logtail.py): what went wrong in the job's own
    #: words, next to `reason`'s status ('exit 1'); '' when the log says nothing or does not apply.
    detail: str = ""
    #: RUNNING only: epoch seconds just before the attempt's process was started (the same
    #: instant as `time` for its start), so records count a runtime from the start and not from
    #: the report of it, which a busy core or a cluster's round trip makes late.
    started_wall: float | None = None
    #: RUNNING only: this attempt's process started over from nothing (its node was lost and
    #: the cluster ran it again), so what it had done is undone and its time counts anew.
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class JobRecovered(Event):
    """A success the last run did not live to record: its output was renamed into place (only
    a success is) after its attempt began, and the run was killed before the journal committed
    the end. The run that finds it says so once, so the joblog gets the line it missed."""

    job_id: int
    name: str
    attempt: int
    started_wall: float  # epoch seconds: the attempt's start, as the journal recorded it
    ended_wall: float  # epoch seconds: the output's last write, just before its rename
    node: str = ""


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per figure of a sample
class JobSample(Event):
    """One monitoring sweep's figures for one running job's whole process tree."""

    job_id: int
    node: str
    pid: int
    cpu_cores: float
    rss_bytes: int
    processes: int
    read_fraction: float | None
    output_bytes: int
    elapsed: float
    #: From the job's probe (core/probes.py): at most 0.99 while running; None when it cannot
    #: tell. fps and speed (times realtime) are ffmpeg's; eta_seconds is this job's time left.
    progress: float | None = None
    fps: float | None = None
    speed: float | None = None
    eta_seconds: float | None = None
    progress_source: ProgressSource = ProgressSource.NONE


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per figure of a node
class SystemSample(Event):
    """The machine (or node) as a whole, sampled with the jobs."""

    node: str
    logical_cores: int
    cpu_percent: float
    total_memory: int
    available_memory: int
    memory_reserve: int
    free_disk: int
    disk_total: int
    disk_reserve: int
    projected_disk_use: int
    cores_source: CapacitySource = CapacitySource.HOST  # a CPU quota of our cgroup binds
    memory_source: CapacitySource = CapacitySource.HOST  # a memory limit of our cgroup binds


@dataclass(frozen=True, slots=True)
class CalibrationStarted(Event):
    """The calibration job is running; figures follow as CalibrationProgress."""

    job_id: int
    window: float


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per figure of a sample
class CalibrationProgress(Event):
    """One calibration sample: what the single measured job uses so far."""

    job_id: int
    elapsed: float
    window: float
    cpu_cores: float
    rss_bytes: int
    output_bytes: int
    read_fraction: float | None
    output_estimate: int = 0  # the job's expected final output size, from `output_basis`
    output_basis: OutputBasis = OutputBasis.INPUT_SIZE


@dataclass(frozen=True, slots=True)
class CalibrationFinished(Event):
    """The measured per-process profile and the limit derived from it."""

    profile: ProcessProfile
    decision: ScalingDecision
    source: LimitSource
    output_basis: OutputBasis | None = None  # the window's output extrapolation (None: real)


class AdaptivePhase(enum.Enum):
    """What the adaptive limit did (`--adaptive`)."""

    TRYING = "trying"  # one job more than before, measured once it is steady
    KEPT = "kept"  # the rate of work rose enough: the job more stays
    STEPPED_BACK = "stepped back"  # it did not: one job fewer, no new try for a while
    PRESSURE = "pressure"  # memory or disk pressure: back to the cpu rule's limit


@dataclass(frozen=True, slots=True)
class AdaptiveStep:
    """The figures behind an adaptive limit; its words are made here only (`text`)."""

    phase: AdaptivePhase
    cpu_limit: int  # the three-constraint rule's limit, where cpu binds
    extra: int  # jobs allowed above it now
    gain: float | None = None  # the rate of work with one job more over without (0.14: +14%)

    def text(self) -> str:
        """`cpu rule 1, +1 measured: +14% throughput`, and the like for each phase."""
        head = f"cpu rule {self.cpu_limit}"
        kept = f", +{self.extra} measured" if self.extra else ""
        shown = 0.0 if self.gain is None or abs(self.gain) < 0.005 else self.gain  # never "-0%"
        gain = f"{shown:+.0%} throughput"
        if self.phase is AdaptivePhase.TRYING:
            return f"{head}, trying +{self.extra}"
        if self.phase is AdaptivePhase.KEPT:
            return f"{head}, +{self.extra} measured: {gain}"
        if self.phase is AdaptivePhase.STEPPED_BACK:
            return f"{head}{kept}, stepped back: one job more gave {gain}"
        return f"{head}, memory or disk pressure: no job above it"


@dataclass(frozen=True, slots=True)
class LimitChanged(Event):
    """The number of jobs allowed at once changed (calibration, learning, or the operator)."""

    limit: int
    previous: int
    source: LimitSource
    decision: ScalingDecision | None = None
    observations: int = 0  # finished jobs behind a LEARNED limit
    adaptive: AdaptiveStep | None = None  # the figures behind an ADAPTIVE limit

    @property
    def reason(self) -> str:
        """The source in words ('learned from 12 jobs'); the one place a limit's words are made."""
        if self.adaptive is not None:
            return self.adaptive.text()
        if self.source is LimitSource.LEARNED:
            return f"learned from {self.observations} jobs"
        return self.source.label


@dataclass(frozen=True, slots=True)
class PauseAllChanged(Event):
    """The operator paused everything (no launches, every job stopped) or resumed it all: a
    client in another process follows `paused_all` from this, never from a notice's words."""

    paused: bool


@dataclass(frozen=True, slots=True)
class ResourcePressure(Event):
    """Memory or disk crossed a threshold (see PressureLevel)."""

    resource: Resource
    level: PressureLevel
    available: int
    reserve: int

    @property
    def message(self) -> str:
        """What it means for the run, in words."""
        if self.level is PressureLevel.OK:
            return f"{self.resource.value} headroom is back: launching again"
        if self.level is PressureLevel.LOW:
            return f"{self.resource.value} below its reserve: no new launches"
        return "memory critically low: pausing the newest job"


class NodeState(enum.Enum):
    """What the scheduler makes of one node of a cluster run (a local run has one, always UP)."""

    UP = "up"  # joined and taking jobs
    QUARANTINED = "quarantined"  # failed every job it was given a few times in a row: no more
    LOST = "lost"  # its worker went away; what it held runs again elsewhere


@dataclass(frozen=True, slots=True)
class NodeStateChanged(Event):
    """A node joined, was set aside after failing job after job, or went away: the nodes panel
    and `orch-tui status` show `state` from this, never from a notice's words."""

    node: str
    state: NodeState
    failures: int = 0  # the failures in a row behind a QUARANTINED node
    address: str = ""  # the worker's address, where the runner has one


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A human-readable remark from the core (halt after failures, a paused launch, ...)."""

    level: NoticeLevel
    message: str


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    """The run is over: counts by state, wall time and the exit code it implies."""

    counts: dict[str, int] = field(hash=False)
    wall_seconds: float
    exit_code: int
    interrupted: bool


class EventBus:
    """Fan-out of events to any number of plain callbacks (listeners).

    A first listener may `hold` delivery to the others: events then wait, in order, until it
    calls `release` (the journal holds a job's end until it is committed). Listeners never
    publish, so nothing is delivered out of order while held events are let through."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Event], None]] = []
        self._first: list[Callable[[Event], None]] = []
        self._held: list[Event] | None = None

    def add_listener(self, listener: Callable[[Event], None], *, first: bool = False) -> None:
        """Call `listener(event)` synchronously for each event (it must not block).

        `first` puts it before every other listener: the journal records a job's final state
        before anyone is told of it."""
        if first:
            self._first.append(listener)
        else:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        """Detach a listener (idempotent)."""
        for listeners in (self._first, self._listeners):
            if listener in listeners:
                listeners.remove(listener)

    def publish(self, event: Event) -> None:
        """Deliver `event` to the first listeners, then every other listener, in order (later,
        with those before it, while delivery is held)."""
        for listener in self._first:
            listener(event)
        if self._held is not None:
            self._held.append(event)
            return
        for listener in list(self._listeners):
            listener(event)

    def hold(self) -> None:
        """Keep every event from here on from the other listeners until `release`."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Deliver the events held, in order, and stop holding."""
        held, self._held = self._held, None
        for event in held or ():
            for listener in list(self._listeners):
                listener(event)
