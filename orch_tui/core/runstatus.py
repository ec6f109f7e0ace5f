"""What a run is doing, as one typed value, for `orch-tui status` and whoever else asks.

`RunStatus` is the answer whatever its source: `journal_status` reads it from the journal alone
(a finished or dead run, or a live one seen from outside); `with_snapshot` fills in what only
the live run knows (its ETA, each job's progress, the limit now) from the snapshot its control
socket gives. A `StatusSource` is any function from the output folder to a `RunStatus` (None:
no run there).

Reading never changes anything: the journal is opened read-only (no creation, no migration),
never through a symlink, and an older schema is read for what it holds.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orch_tui.core.errors import OrchError
from orch_tui.core.events import JobState, NodeState
from orch_tui.core.statehome import journal_folder, read_where
from orch_tui.core.journal.schema import JOURNAL_NAME, SCHEMA_VERSION, py_text
from orch_tui.core.lock import held_by
from orch_tui.core.nodes import NodeView, state_words
from orch_tui.core.snapshot import RunSnapshot, touched
from orch_tui.core.tally import Counts

#: The version of the JSON document `RunStatus.as_json` returns (README: "status --json").
STATUS_SCHEMA = 1


class RunState(enum.Enum):
    """Where the run stands."""

    RUNNING = "running"  # an orchestrator holds the output folder's lock
    FINISHED = "finished"  # the journal recorded its end
    DIED = "died"  # no holder, and the journal never recorded an end (kill -9, power cut)


class StatusError(OrchError):
    """The journal cannot be read (damaged, not a journal, newer schema): one line, exit 2."""


@dataclass(frozen=True)
class RunningJob:
    """A job holding a process (as far as the source knows)."""

    input_path: str
    state: JobState
    attempt: int
    started: float | None  # epoch seconds of this attempt's start
    progress: float | None = None  # 0..1, from a live source only
    index: int | None = None  # the job's number (JOB of `orch-tui pause`), from a live source
    pid: int | None = None  # its process, from a live source


@dataclass(frozen=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per fact shown
class NodeStatus:
    """One node of the run: from a live source its state and figures; from the journal only
    its name and the jobs its rows say it holds (the rest None: the journal keeps no figures)."""

    name: str
    running: int  # jobs holding a process there
    state: NodeState | None = None
    failures: int = 0  # the failures in a row behind a QUARANTINED state
    cores: int | None = None
    cpu_percent: float | None = None
    memory_total: int | None = None
    memory_available: int | None = None

    @property
    def state_text(self) -> str:
        """`up`, `set aside after 3 failures`, `lost`; `-` when the source cannot tell."""
        return "-" if self.state is None else state_words(self.state, self.failures)

    def as_json(self) -> dict[str, Any]:
        """One entry of `status --json`'s `nodes`."""
        return {
            "name": self.name,
            "state": None if self.state is None else self.state.value,
            "failures": self.failures,
            "cores": self.cores,
            "cpu_percent": self.cpu_percent,
            "memory_total": self.memory_total,
            "memory_available": self.memory_available,
            "running": self.running,
        }


@dataclass(frozen=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per fact shown
class RunStatus:
    """One run's state, counts (core/tally.py definitions), limit and active jobs."""

    output_dir: Path
    state: RunState
    pid: int | None
    started: float | None
    ended: float | None
    counts: Counts
    run_exit_code: int | None  # what the orchestrator exited with, when it recorded it
    limit: int | None = None
    limit_source: str | None = None
    eta_seconds: float | None = None  # only a live source knows it
    eta_paused: bool = False  # every active job is paused: no ETA while nothing runs (live)
    paused_all: bool = False  # no launches until resumed (live)
    jobs: tuple[RunningJob, ...] = field(default_factory=tuple)
    #: Every node known (a local run: its one machine); from the journal, the nodes its
    #: active jobs' rows name.
    nodes: tuple[NodeStatus, ...] = field(default_factory=tuple)
    source: str = "journal"
    journal_schema: int = SCHEMA_VERSION

    @property
    def exit_code(self) -> int:
        """`status`'s exit code: 0 running or ended clean, 1 ended with failures or work left.
        A run that died before its journal recorded its jobs (killed at its first instant)
        proves nothing done: 1."""
        if self.state is RunState.RUNNING:
            return 0
        if self.state is RunState.DIED and self.counts.total == 0:
            return 1
        return self.counts.exit_code

    def as_json(self) -> dict[str, Any]:
        """The `status --json` document (schema STATUS_SCHEMA, documented in the README)."""
        counts: dict[str, int] = {state.value: self.counts[state] for state in JobState}
        counts["total"] = self.counts.total
        died = self.state is RunState.DIED
        # A died run's jobs hold no process (its guardian killed them): none runs, pauses or
        # stops; they were interrupted, and the next run runs them again.
        counts["interrupted"] = self.counts.active if died else 0
        if died:
            counts.update(running=0, paused=0, stopping=0)
        return {
            "schema":
            STATUS_SCHEMA,
            "output_dir":
            str(self.output_dir),
            "state":
            self.state.value,
            "source":
            self.source,
            "pid":
            self.pid,
            "started":
            self.started,
            "ended":
            self.ended,
            "exit_code":
            self.exit_code,
            "run_exit_code":
            self.run_exit_code,
            "counts":
            counts,
            "limit":
            self.limit,
            "limit_source":
            self.limit_source,
            "eta_seconds":
            self.eta_seconds,
            "eta_paused":
            self.eta_paused,
            "paused_all":
            self.paused_all,
            "jobs": [{
                "input": job.input_path,
                "state": "interrupted" if died else job.state.value,
                "attempt": job.attempt,
                "started": job.started,
                "progress": job.progress,
                "index": job.index,
                "pid": job.pid,
            } for job in self.jobs],
            "nodes": [node.as_json() for node in self.nodes],
        }

    @property
    def run_code(self) -> int | None:
        """What `orch-tui wait` exits with once the run is over: the exit code it recorded
        (143 after a stop), else what `status` says (a run that died with work left: 1);
        None while it runs."""
        if self.state is RunState.RUNNING:
            return None
        if self.state is RunState.FINISHED and self.run_exit_code is not None:
            return self.run_exit_code
        return self.exit_code


#: A function giving the status of the run in an output folder (None: no run there).
StatusSource = Callable[[Path], "RunStatus | None"]

_ACTIVE = (JobState.RUNNING.value, JobState.PAUSED.value, JobState.STOPPING.value)


def journal_status(output_dir: Path) -> RunStatus | None:
    """The latest run in `output_dir` as its journal and lock tell it; None when there is no
    journal or no run in it; StatusError when the journal cannot be read."""
    folder, kind = journal_folder(output_dir)
    path = folder / JOURNAL_NAME
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        where = read_where(output_dir) if kind is not None else None
        if where is not None:  # the run's driver is another machine, or this one lost it
            raise StatusError(f"{output_dir} is on {kind}: its run's journal is on "
                              f"{where[0]} in {where[1]}; run the command there") from None
        return None
    except OSError as exc:
        raise StatusError(f"{path}: cannot read the journal: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise StatusError(f"{path}: not a regular file; refusing to read it")
    holder = held_by(output_dir)
    try:
        # A URI, percent-encoded: a folder named with `?` or `#` must not become a parameter.
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise StatusError(f"{path}: cannot open the journal: {exc}") from exc
    try:
        return _read(conn, output_dir, holder)
    except sqlite3.DatabaseError as exc:
        raise StatusError(f"{path}: cannot read the journal: {exc}") from exc
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, output_dir: Path, holder: int | None) -> RunStatus | None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if not {"meta", "runs", "jobs"} <= tables:
        raise sqlite3.DatabaseError("not an orch-tui journal")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row and str(row[0]).isdigit() else 0
    if version > SCHEMA_VERSION or version < 1:
        raise sqlite3.DatabaseError(f"journal schema version {row[0] if row else None!r} is "
                                    f"not one this orch-tui reads (1 to {SCHEMA_VERSION})")
    columns = {info[1] for info in conn.execute("PRAGMA table_info(runs)")}
    wanted = ("id", "started", "ended", "exit_code", "counts", "pid", "total", "skipped", "missing",
              "limit_value", "limit_source")
    select = ", ".join(name if name in columns else "NULL" for name in wanted)
    run = conn.execute(f"SELECT {select} FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    if run is None:
        return None
    values = dict(zip(wanted, run))
    if holder is not None:
        state = RunState.RUNNING
    elif values["ended"] is not None and values["counts"] is not None:
        state = RunState.FINISHED
    else:
        state = RunState.DIED
    running, nodes = _active_jobs(conn, values["id"])
    if state is RunState.FINISHED:
        counts = _finished_counts(values["counts"])
    else:
        counts = _live_counts(conn, values)
    return RunStatus(output_dir=output_dir,
                     state=state,
                     pid=holder if holder is not None else values["pid"],
                     started=values["started"],
                     ended=values["ended"],
                     counts=counts,
                     run_exit_code=values["exit_code"],
                     limit=values["limit_value"],
                     limit_source=values["limit_source"],
                     jobs=running if state is not RunState.FINISHED else (),
                     nodes=nodes if state is not RunState.FINISHED else (),
                     journal_schema=version)


def _active_jobs(conn: sqlite3.Connection,
                 run_id: int) -> tuple[tuple[RunningJob, ...], tuple[NodeStatus, ...]]:
    """The run's jobs holding a process as its rows say, and the nodes they are on (a version
    4 journal's rows name it; an older one's are NULL there: no nodes)."""
    node = "node" if "node" in {info[1] for info in conn.execute("PRAGMA table_info(jobs)")} \
        else "NULL"
    jobs = conn.execute(
        f"SELECT input, state, attempts, started, {node} FROM jobs WHERE run_id = ? AND state IN "
        f"({', '.join('?' * len(_ACTIVE))}) ORDER BY started, input",
        (run_id, *_ACTIVE)).fetchall()
    running = tuple(
        RunningJob(py_text(job[0]), JobState(job[1]), int(job[2] or 0), job[3]) for job in jobs)
    held: dict[str, int] = {}
    for job in jobs:
        if job[4]:
            held[py_text(job[4])] = held.get(py_text(job[4]), 0) + 1
    return running, tuple(NodeStatus(name, held[name]) for name in sorted(held))


def with_snapshot(status: RunStatus, snap: RunSnapshot, *, epoch: float,
                  monotonic: float) -> RunStatus:
    """`status` (the journal's) with the live run's counts, limit, ETA and active jobs from
    its snapshot. The snapshot's times are on the run's monotonic clock, the system-wide one
    this process reads as `monotonic` at the instant it reads `epoch` (wall time)."""
    jobs = sorted((job for job in touched(snap.jobs) if job.state.active),
                  key=lambda job: (job.started is None, job.started or 0.0, job.job_id))
    eta = snap.tally().eta(monotonic)
    return dataclasses.replace(
        status,
        counts=snap.counts,
        limit=snap.limit or status.limit,
        limit_source=snap.limit_source.value if snap.limit_source else status.limit_source,
        eta_seconds=eta.seconds,
        eta_paused=eta.paused,
        paused_all=snap.paused_all,
        jobs=tuple(
            RunningJob(str(job.input_path or job.name),
                       job.state,
                       job.attempt,
                       None if job.started is None else epoch - (monotonic - job.started),
                       progress=job.progress,
                       index=job.job_id,
                       pid=job.pid) for job in jobs),
        nodes=tuple(_node_status(node) for node in snap.nodes),
        source="live")


def _node_status(node: NodeView) -> NodeStatus:
    """A live node: its state, its latest figures (none once lost) and the jobs it holds."""
    sample = node.live_sample
    return NodeStatus(node.name,
                      node.running,
                      node.state,
                      node.failures,
                      cores=None if sample is None else sample.logical_cores,
                      cpu_percent=None if sample is None else sample.cpu_percent,
                      memory_total=None if sample is None else sample.total_memory,
                      memory_available=None if sample is None else sample.available_memory)


def _finished_counts(text: str) -> Counts:
    """The counts the run recorded as it finished (RunFinished.counts)."""
    try:
        data = json.loads(text)
        names = {state.value for state in JobState}
        return Counts(**{name: int(n) for name, n in data.items() if name in names})
    except (ValueError, TypeError, AttributeError) as exc:
        raise sqlite3.DatabaseError(f"the run's counts are unreadable: {exc}") from exc


def _live_counts(conn: sqlite3.Connection, values: dict[str, Any]) -> Counts:
    """Counts of a run that did not record its end: the rows it wrote, plus its preflight's
    figures for what has no row (queued jobs, skips kept as an earlier run's `succeeded`)."""
    found = dict.fromkeys(JobState, 0)
    rows = conn.execute("SELECT state, COUNT(*) FROM jobs WHERE run_id = ? GROUP BY state",
                        (values["id"], ))
    for name, number in rows:
        try:
            found[JobState(name)] += int(number)
        except ValueError:
            continue  # a state this version does not know: not counted
    if values["skipped"] is not None:  # else an older journal: its skip rows are all there is
        found[JobState.SKIPPED] = int(values["skipped"])
    found[JobState.MISSING] += int(values["missing"] or 0)
    if values["total"] is not None:
        known = sum(found.values()) - found[JobState.QUEUED]
        found[JobState.QUEUED] = max(0, int(values["total"]) - known)
    return Counts(**{state.value: n for state, n in found.items()})
