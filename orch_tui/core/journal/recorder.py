"""The bus recorder: what every job did, across runs, in one SQLite file next to the outputs.

It lets a later run resume (a job whose row is not `succeeded` runs again: one still `running`,
`paused` or `stopping` was interrupted, a `cancelled` one was taken off the queue unrun) and
start from learned figures instead of calibrating. The listener only queues updates for the
writer thread (store.py). The one exception is a job's end (succeeded, failed, killed,
cancelled, missing): the listener, called before anyone else hears of it, makes sure that row
is committed before anyone does, so a job reported finished is never run again after a crash
or `kill -9` of the orchestrator (a power cut can still lose the commits since the last
checkpoint).

Run by a session (`hold_reports`), the listener holds the bus's delivery instead of waiting:
the ends of the next COMMIT_DELAY seconds share one commit, then everyone hears of them. A
`kill -9` in that window redoes those jobs; nobody had been told they finished.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orch_tui.core import events as ev
from orch_tui.core.joblog import JoblogMark
from orch_tui.core.journal.errors import JournalError
from orch_tui.core.journal.schema import (INSERT_CALIBRATION, INTERRUPTED_STATES, JOB_COLUMNS,
                                          JOURNAL_NAME, JobRecord, Row, db_text, py_text)
from orch_tui.core.journal.store import Store
from orch_tui.core.plan import JobSpec, Plan
from orch_tui.core.scaling import ProcessProfile, ScalingDecision

#: The final states of a job that ran: each has a joblog line.
RAN_TO_AN_END = tuple(state.value
                      for state in (ev.JobState.SUCCEEDED, ev.JobState.FAILED, ev.JobState.KILLED))


@dataclasses.dataclass(frozen=True)
class DiedRun:
    """A run that never recorded its end: its row's id, its config (as `runs` keeps it) and the
    joblog it wrote (None: none, or a journal older than version 5)."""

    run_id: int
    config: str
    joblog: JoblogMark | None


#: How long a finished job's listener waits for its commit before the journal gives up on it.
SYNC_SECONDS = 10.0
#: How long a job's end may wait for others to share its commit (its report waits as long):
#: at most 50 commits a second however fast jobs end (a commit is about 0.07 ms of CPU).
COMMIT_DELAY = 0.02


def config_json(plan: Plan) -> str:
    """The plan's config as `runs.config` keeps it (a resume compares it with a died run's)."""
    config = plan.config
    data: dict[str, Any] = {"path": str(config.path)}
    for name in ("binary", "directories", "resources", "jobs"):
        data[name] = dataclasses.asdict(getattr(config, name))
    return json.dumps(data, default=str, sort_keys=True)


# The run's journal: store, run id and what it learned.
# pylint: disable-next=too-many-instance-attributes
class Journal:
    """The journal of one output folder; open with `Journal.open(plan.state_dir)`."""

    def __init__(self,
                 state_dir: Path,
                 *,
                 trace: Callable[[str], None] | None = None,
                 move_damaged: bool = False) -> None:
        """See `open` (the same, spelled as a constructor)."""
        state_dir = Path(state_dir)
        self.path = path = state_dir / JOURNAL_NAME
        try:
            # Private, as statedir.py makes it for a run (this covers a journal opened alone).
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal folder {state_dir}: {exc.strerror or exc}") from exc
        if not os.access(state_dir, os.W_OK | os.X_OK):
            raise JournalError(f"cannot write the journal: the folder {state_dir} is not writable")
        #: Called once, on the listener's thread, with one line when a write fails.
        self.on_error: Callable[[str], None] | None = None
        # Touched on the caller's (event loop's) thread only.
        self._run_id: int | None = None
        self._run_ended = True
        self._specs: dict[int, JobSpec] = {}
        self._starts: dict[int, tuple[int, float]] = {}
        self._sync = True  # False once a finished job's commit failed: stop waiting for them
        # Set by hold_reports: the bus whose delivery a job's end holds, and the pending commit.
        self._bus: ev.EventBus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commit_handle: asyncio.TimerHandle | None = None
        self._failure_told = False
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.JobStateChanged: self._on_job,
            ev.CalibrationFinished: self._on_calibration,
            ev.LimitChanged: self._on_limit,
            ev.RunFinished: self._on_run_finished,
            ev.JobRecovered: self._on_recovered,
            ev.PreflightDone: self._on_preflight,
        }
        self._store = Store(path, trace=trace, move_damaged=move_damaged)
        #: One line saying a damaged journal was moved aside (`move_damaged`), else None.
        self.notice = self._store.notice

    @classmethod
    def open(cls,
             state_dir: Path,
             *,
             trace: Callable[[str], None] | None = None,
             move_damaged: bool = False) -> Journal:
        """Create (mode 0o600) or open `state_dir`/journal.sqlite3 and check it: its files are
        the user's own and no symlinks, it is not damaged, not locked by another program, and
        its schema is not newer than this orch-tui's (an older one is migrated: schema.py).

        `trace`, when given, is called with every SQL statement, on the writer thread (for
        debugging). `move_damaged` (--fresh) renames a damaged journal, with its -wal and -shm,
        to journal.sqlite3.damaged-<time> and starts a new one (`notice` says so). Raises
        JournalError (JournalDamaged for a corrupt file) with one line naming the file.
        """
        return cls(state_dir, trace=trace, move_damaged=move_damaged)

    # --- reading

    def previous_jobs(self) -> dict[str, JobRecord]:
        """The latest record of every input the journal knows, keyed by its absolute path."""

        def read(conn: sqlite3.Connection) -> list[Row]:
            return conn.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs").fetchall()

        records = (JobRecord.from_row(row) for row in self._store.call(read))
        return {record.input_path: record for record in records}

    def interrupted_jobs(self) -> list[JobRecord]:
        """The records of inputs whose attempt still held a process when its run ended: that
        run died (a run that ends ends every job). Usually none, and read as few."""
        marks = ", ".join("?" * len(INTERRUPTED_STATES))

        def read(conn: sqlite3.Connection) -> list[Row]:
            return conn.execute(
                f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE state IN ({marks})",
                sorted(INTERRUPTED_STATES)).fetchall()

        return [JobRecord.from_row(row) for row in self._store.call(read)]

    def died_run(self) -> DiedRun | None:
        """The last run, when it never recorded its end: it died (whoever opens the journal
        holds the output folder's lock, so no live run can be writing it). None otherwise."""

        def read(conn: sqlite3.Connection) -> Row | None:
            row: Row | None = conn.execute(
                "SELECT id, ended, config, joblog, joblog_file, joblog_offset FROM runs "
                "ORDER BY id DESC LIMIT 1").fetchone()
            return row

        row = self._store.call(read)
        if row is None or row[1] is not None or self._run_id == row[0]:
            return None
        mark = None
        if row[3] is not None and row[4] is not None and row[5] is not None:
            mark = JoblogMark(py_text(row[3]), str(row[4]), int(row[5]))
        return DiedRun(int(row[0]), str(row[2] or ""), mark)

    def finished_in(self, run_id: int) -> list[JobRecord]:
        """The records of jobs run `run_id` ran to an end (succeeded, failed, killed) that are
        still the latest of their input."""
        marks = ", ".join("?" * len(RAN_TO_AN_END))

        def read(conn: sqlite3.Connection) -> list[Row]:
            return conn.execute(
                f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE run_id = ? AND state IN "
                f"({marks}) AND started IS NOT NULL", (run_id, *RAN_TO_AN_END)).fetchall()

        return [JobRecord.from_row(row) for row in self._store.call(read)]

    def last_profile(self) -> ProcessProfile | None:
        """The newest per-process figures stored (calibrated or learned), or None."""

        def read(conn: sqlite3.Connection) -> Row | None:
            row: Row | None = conn.execute(
                "SELECT cpu_cores, rss_bytes, output_bytes FROM calibrations "
                "ORDER BY id DESC LIMIT 1").fetchone()
            return row

        row = self._store.call(read)
        if row is None:
            return None
        return ProcessProfile(cpu_cores=float(row[0] or 0.0),
                              rss_bytes=int(row[1] or 0),
                              output_bytes=int(row[2] or 0),
                              source="journal")

    # --- writing

    def start_run(self, plan: Plan, argv: Sequence[str], joblog: JoblogMark | None = None) -> int:
        """Open a row in `runs` and remember the plan, so job events map to inputs (`joblog`:
        the joblog this run writes, for `died_run`)."""
        self._end_run()
        self._specs = {spec.job_id: spec for spec in plan.jobs}
        self._starts = {}
        marks = (None, None, None) if joblog is None else (db_text(joblog.path), joblog.file,
                                                           joblog.offset)
        params = (time.time(), config_json(plan), json.dumps(list(argv)), os.getpid(), *marks)

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO runs(started, config, argv, pid, joblog, joblog_file, joblog_offset) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", params)
            return int(cursor.lastrowid or 0)

        self._run_id = self._store.call(insert, "start a run in")
        self._run_ended = False
        return self._run_id

    def hold_reports(self, bus: ev.EventBus, loop: asyncio.AbstractEventLoop) -> None:
        """Commit job ends in groups: a job's end holds `bus`'s delivery to its other listeners
        for up to COMMIT_DELAY, then one commit takes every end of that time and the bus
        delivers. Without this, each end is committed on its own as the listener hears it."""
        self._bus, self._loop = bus, loop

    def listener(self, event: ev.Event) -> None:
        """Bus listener (register it with `first=True`): turns the events worth keeping into
        queued updates and never touches the database itself. O(1), except for a job's end,
        which no one hears of before it is committed: the bus is held for it (`hold_reports`),
        or, without one, the listener waits for the commit (see `_on_job`)."""
        handler = self._handlers.get(type(event))
        if handler is not None and not self._store.closed:
            handler(event)
        self._tell_failure()

    def record_profile(self, profile: ProcessProfile, decision: ScalingDecision | None) -> None:
        """Queue per-process figures (and the limit they gave) for a later run's `last_profile`."""
        if self._store.closed:
            return
        limit = decision.limit if decision is not None else None
        binding = decision.binding if decision is not None else None
        self._store.put_sql(INSERT_CALIBRATION,
                            (self._run_id, time.time(), profile.source, profile.cpu_cores,
                             profile.rss_bytes, profile.output_bytes, limit, binding))

    def flush(self) -> None:
        """Block until everything queued so far is committed; raises JournalError if a write
        failed since the last flush."""
        self._store.call(lambda conn: None)
        error = self._store.take_error()
        if error is not None:
            raise error

    @property
    def error(self) -> JournalError | None:
        """The first write failure not yet reported by flush() (close() never raises it)."""
        return self._store.error

    def close(self) -> None:
        """Flush, mark the run ended (if RunFinished did not) and stop the writer; idempotent.

        Never raises for a failed write (it would stop callers releasing the lock): see `error`.
        """
        if self._store.closed:
            return
        self._release()
        self._end_run()
        self._store.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _tell_failure(self) -> None:
        """Call `on_error` once with the first failure, if there is one (on the listener's
        thread, never on the writer's: the hook may touch the event loop)."""
        if self._store.failure is None or self._failure_told:
            return
        self._failure_told = True
        hook = self.on_error
        failure = self._store.failure
        if hook is not None and failure is not None:
            # pylint: disable-next=not-callable  # it infers None from __init__; checked above
            hook(failure)

    def _end_run(self) -> None:
        if self._run_id is not None and not self._run_ended:
            self._run_ended = True
            self._store.put_sql("UPDATE runs SET ended = ? WHERE id = ? AND ended IS NULL",
                                (time.time(), self._run_id))

    # --- event handlers (caller's thread: queue only)

    def _on_job(self, event: ev.JobStateChanged) -> None:
        spec = self._specs.get(event.job_id)
        if spec is None:
            return
        state = event.state
        now = time.time()
        start = self._starts.get(event.job_id)
        # A new attempt, or one started over on another node; a resume keeps its start.
        if state is ev.JobState.RUNNING and (start is None or start[0] != event.attempt
                                             or event.restarted):
            wall = now if event.started_wall is None else event.started_wall
            start = self._starts[event.job_id] = (event.attempt, wall)
        started = start[1] if start is not None and start[0] == event.attempt else None
        if state.finished:
            # A requeued job starts a new attempt; keeping ended ones would cost every job.
            self._starts.pop(event.job_id, None)
        row = (db_text(spec.entry.location), db_text(spec.output_location), state.value,
               event.exit_code, event.signal, started, now if state.finished else None,
               event.attempt, event.peak_rss, event.cpu_seconds, db_text(spec.log_location),
               self._run_id, db_text(event.reason), db_text(event.detail), db_text(event.node),
               event.stop.value if event.stop is not None else None, event.job_id)
        skip = state is ev.JobState.SKIPPED
        self._store.put_job(skip, row)
        if state.finished and not skip:
            self._commit_before_telling()

    def _commit_before_telling(self) -> None:
        """The row just queued is committed before the other listeners hear of its event:
        with the bus held for up to COMMIT_DELAY (the ends of that time share one commit), or,
        without a bus to hold, at once."""
        if not self._sync:
            return
        if self._bus is None or self._loop is None:
            self._commit_now()
        elif self._commit_handle is None:
            self._bus.hold()
            self._commit_handle = self._loop.call_later(COMMIT_DELAY, self._release)

    def _on_recovered(self, event: ev.JobRecovered) -> None:
        """A success the last run died before recording: recorded now, as this run's, and
        committed before anyone hears of it (its joblog line comes after), so a kill from
        here on never recovers it twice."""
        spec = self._specs.get(event.job_id)
        if spec is None:
            return
        row = (db_text(spec.entry.location), db_text(spec.output_location),
               ev.JobState.SUCCEEDED.value, 0, None, event.started_wall, event.ended_wall,
               event.attempt, 0, 0.0, db_text(spec.log_location),
               self._run_id, "succeeded in the run that was killed before recording it", "",
               db_text(event.node), None, event.job_id)
        self._store.put_job(False, row)
        self._commit_before_telling()

    def _release(self) -> None:
        """Commit the ends the bus holds, then let it deliver them (nothing held: nothing)."""
        handle, self._commit_handle = self._commit_handle, None
        if handle is None or self._bus is None:
            return
        handle.cancel()
        if self._sync:
            self._commit_now()
        self._tell_failure()  # launches stop now, not at the next event
        self._bus.release()

    def _commit_now(self) -> None:
        """Wait until the writer has committed everything queued (the end of a job the
        listener was just told of), so no one hears of it before it is on disk.

        Skips stay batched: preflight marks them by the 100,000 and they are no news. A failed
        or stuck commit is recorded once (`error`, `on_error`) and later ends are not waited
        for: a locked journal must cost the run one wait, not one per job."""
        if self._store.sync(SYNC_SECONDS) is not None:
            self._sync = False

    def _on_calibration(self, event: ev.CalibrationFinished) -> None:
        # Figures taken from a previous run are in the journal already: never stored twice.
        if event.source.measured:
            self.record_profile(event.profile, event.decision)

    def _on_preflight(self, event: ev.PreflightDone) -> None:
        # Queued jobs have no row until they start: status counts them from these figures.
        if self._run_id is not None:
            self._store.put_sql("UPDATE runs SET total = ?, skipped = ?, missing = ? WHERE id = ?",
                                (event.total, event.skipped, event.missing, self._run_id))

    def _on_limit(self, event: ev.LimitChanged) -> None:
        if self._run_id is not None:
            self._store.put_sql("UPDATE runs SET limit_value = ?, limit_source = ? WHERE id = ?",
                                (event.limit, event.source.value, self._run_id))
        decision = event.decision
        if decision is None or event.source is not ev.LimitSource.LEARNED:
            return
        profile = ProcessProfile(cpu_cores=float(decision.cpu.per_process),
                                 rss_bytes=int(decision.memory.per_process),
                                 output_bytes=int(decision.disk.per_process),
                                 source="learned")
        self.record_profile(profile, decision)

    def _on_run_finished(self, event: ev.RunFinished) -> None:
        if self._run_id is None or self._run_ended:
            self._release()
            return
        # Its `ended` waits for close(): the joblog writes its last line after this, and a run
        # killed in between must read as died, so the next run writes that line.
        counts = json.dumps(dict(event.counts), sort_keys=True)
        self._store.put_sql("UPDATE runs SET exit_code = ?, counts = ? WHERE id = ?",
                            (event.exit_code, counts, self._run_id))
        self._release()  # the last ends are committed (with this) before the end is told
