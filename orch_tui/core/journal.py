"""The run journal: what every job did, across runs, in one SQLite file next to the outputs.

It lets a later run resume (a job whose row is still `running` was interrupted and runs again)
and start from learned figures instead of calibrating. Recording must never slow the scheduler:
the bus listener only appends to a queue, and one writer thread owns the connection, committing
the queued updates in batches (WAL, synchronous=NORMAL: no fsync per job, and a crash loses at
most the last batch, never the file). Reads go through the same thread, after what was queued.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from orch_tui.core import events as ev
from orch_tui.core.errors import OrchError
from orch_tui.core.plan import JobSpec, Plan
from orch_tui.core.scaling import ProcessProfile, ScalingDecision

SCHEMA_VERSION = 1
JOURNAL_NAME = "journal.sqlite3"
#: A batch is committed this long after its first update, or once this many are pending.
BATCH_SECONDS = 0.5
BATCH_SIZE = 200
#: A state that means the job was cut short when its row is the last one left (rerun it).
INTERRUPTED_STATES = frozenset({"running", "paused"})

_SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE runs(id INTEGER PRIMARY KEY, started REAL, ended REAL, config TEXT, argv TEXT,
                  exit_code INTEGER, counts TEXT);
CREATE TABLE jobs(input TEXT PRIMARY KEY, output TEXT, state TEXT, exit_code INTEGER,
                  signal INTEGER, started REAL, ended REAL, attempts INTEGER, peak_rss INTEGER,
                  cpu_seconds REAL, log_path TEXT, run_id INTEGER);
CREATE TABLE calibrations(id INTEGER PRIMARY KEY, run_id INTEGER, time REAL, source TEXT,
                          cpu_cores REAL, rss_bytes INTEGER, output_bytes INTEGER,
                          limit_value INTEGER, binding TEXT);
INSERT INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""
_JOB_COLUMNS = ("input", "output", "state", "exit_code", "signal", "started", "ended", "attempts",
                "peak_rss", "cpu_seconds", "log_path", "run_id")
_UPSERT_JOB = (f"INSERT OR REPLACE INTO jobs({', '.join(_JOB_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(_JOB_COLUMNS))})")
# A skip (the output is already there) must not erase how the job succeeded in an earlier run.
_UPSERT_SKIP = (f"INSERT INTO jobs({', '.join(_JOB_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_JOB_COLUMNS))}) ON CONFLICT(input) DO UPDATE SET " +
                ", ".join(f"{c} = excluded.{c}"
                          for c in _JOB_COLUMNS[1:]) + " WHERE jobs.state != 'succeeded'")
_INSERT_CALIBRATION = ("INSERT INTO calibrations(run_id, time, source, cpu_cores, rss_bytes, "
                       "output_bytes, limit_value, binding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

_T = TypeVar("_T")
_Row = tuple[Any, ...]


class JournalError(OrchError):
    """The journal cannot be used: not a SQLite file, from a newer orch-tui, not writable..."""

    exit_code = 2


@dataclass(frozen=True)
class JobRecord:
    """The last thing the journal knows about one input (times are epoch seconds)."""

    input_path: str
    output_path: str
    state: str
    exit_code: int | None
    signal: int | None
    started: float | None
    ended: float | None
    attempts: int
    peak_rss: int
    cpu_seconds: float
    log_path: str
    run_id: int

    @property
    def interrupted(self) -> bool:
        """True when the run that wrote this row ended while the job still held a process."""
        return self.state in INTERRUPTED_STATES


def _db_text(text: str) -> str | bytes:
    """A path as SQLite can store it: undecodable file names (surrogate escapes) go in as the
    original bytes, so they still round-trip exactly."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def _py_text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return value or ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _config_json(plan: Plan) -> str:
    config = plan.config
    data: dict[str, Any] = {"path": str(config.path)}
    for name in ("binary", "directories", "resources", "jobs"):
        data[name] = dataclasses.asdict(getattr(config, name))
    return json.dumps(data, default=str, sort_keys=True)


class _Batch:
    """Updates waiting for the next transaction; job rows coalesce to the newest per input."""

    def __init__(self) -> None:
        self.jobs: dict[str | bytes, tuple[bool, _Row]] = {}
        self.statements: list[tuple[str, _Row]] = []
        self.count = 0
        self.deadline = 0.0

    def add(self, kind: str, payload: tuple[Any, ...]) -> None:
        """Queue one update (the batch's clock starts with its first)."""
        if not self.count:
            self.deadline = time.monotonic() + BATCH_SECONDS
        self.count += 1
        if kind == _SQL:
            self.statements.append(payload)
            return
        skip, row = payload
        key = row[0]
        if skip and key in self.jobs:
            return  # a skip never replaces what this run already recorded
        self.jobs[key] = (skip, row)

    def commit(self, conn: sqlite3.Connection) -> None:
        """Write everything in one transaction (nothing, when empty); always leaves it empty."""
        if not self.count:
            return
        try:
            conn.execute("BEGIN")
            for skip, row in self.jobs.values():
                conn.execute(_UPSERT_SKIP if skip else _UPSERT_JOB, row)
            for statement, params in self.statements:
                conn.execute(statement, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self.jobs.clear()
            self.statements.clear()
            self.count = 0


_JOB = "job"  # payload: (skip_only, row)
_SQL = "sql"  # payload: (statement, params)
_CALL = "call"  # payload: (function of the connection, future for its result)
_STOP = "stop"


class Journal:
    """The journal of one output folder; open with `Journal.open(plan.state_dir)`."""

    def __init__(self, state_dir: Path, *, trace: Callable[[str], None] | None = None) -> None:
        """See `open` (the same, spelled as a constructor)."""
        state_dir = Path(state_dir)
        self.path = path = state_dir / JOURNAL_NAME
        try:
            # 0o775 under the umask: never world-writable, even with umask 0 (as the logs).
            state_dir.mkdir(mode=0o775, parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal folder {state_dir}: {exc.strerror or exc}") from exc
        if not os.access(state_dir, os.W_OK | os.X_OK):
            raise JournalError(f"cannot write the journal: the folder {state_dir} is not writable")
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise JournalError(f"cannot write the journal: {path} is not readable and writable")
        self._trace = trace
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._error: JournalError | None = None
        self._closed = False
        # Touched on the caller's (event loop's) thread only.
        self._run_id: int | None = None
        self._run_ended = True
        self._specs: dict[int, JobSpec] = {}
        self._starts: dict[int, tuple[int, float]] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.JobStateChanged: self._on_job,
            ev.CalibrationFinished: self._on_calibration,
            ev.LimitChanged: self._on_limit,
            ev.RunFinished: self._on_run_finished,
        }
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._writer,
                                        args=(ready, ),
                                        name="orch-tui journal",
                                        daemon=True)
        self._thread.start()
        ready.result()  # raises the writer's JournalError (corrupt, newer schema, ...)

    @classmethod
    def open(cls, state_dir: Path, *, trace: Callable[[str], None] | None = None) -> Journal:
        """Create (with the operator's umask) or open `state_dir`/journal.sqlite3 and check its
        schema version.

        `trace`, when given, is called with every SQL statement, on the writer thread (for
        debugging). Raises JournalError when the folder is not writable, the file is not a
        SQLite database or not a journal, or it was written by a newer schema.
        """
        return cls(state_dir, trace=trace)

    # --- the writer thread (the only user of the connection)

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        try:
            conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the journal: {_one_line(exc)}") from exc
        try:
            if self._trace is not None:
                conn.set_trace_callback(self._trace)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._check_schema(conn)
        except sqlite3.OperationalError as exc:  # locked, unreadable, ...: the file may be fine
            conn.close()
            raise JournalError(f"{path}: cannot use the journal: {_one_line(exc)}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{path}: not a usable journal ({_one_line(exc)}); move it aside "
                               "to start a new one") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            if tables:
                raise JournalError(f"{self.path}: a SQLite database but not an orch-tui journal; "
                                   "move it aside to start a new one")
            conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            return
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0])
        except (TypeError, ValueError) as exc:
            raise JournalError(f"{self.path}: journal has no valid schema version "
                               f"({row[0] if row else 'none'!r})") from exc
        if version > SCHEMA_VERSION:
            raise JournalError(f"{self.path}: journal schema version {version} is newer than "
                               f"this orch-tui supports ({SCHEMA_VERSION}); upgrade orch-tui or "
                               "move the file aside")

    def _writer(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            ready.set_exception(exc)
            return
        ready.set_result(None)
        batch = _Batch()
        try:
            while True:
                timeout = max(0.0, batch.deadline - time.monotonic()) if batch.count else None
                try:
                    kind, payload = self._queue.get(timeout=timeout)
                except queue.Empty:
                    self._commit(conn, batch)
                    continue
                if kind in (_JOB, _SQL):
                    batch.add(kind, payload)
                    # The deadline also counts when the queue never runs dry (a steady trickle).
                    if batch.count >= BATCH_SIZE or time.monotonic() >= batch.deadline:
                        self._commit(conn, batch)
                    continue
                self._commit(conn, batch)
                if kind == _STOP:
                    return
                function, future = payload
                try:
                    future.set_result(function(conn))
                except BaseException as exc:  # pylint: disable=broad-exception-caught
                    future.set_exception(exc)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        try:
            batch.commit(conn)
        except (sqlite3.Error, ValueError) as exc:
            # The thread keeps going (a full disk may free up); flush() reports the loss.
            if self._error is None:
                self._error = JournalError(f"{self.path}: journal write failed: {_one_line(exc)}")

    def _call(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `function(conn)` on the writer thread after everything queued so far."""
        if self._closed:
            raise JournalError(f"{self.path}: the journal is closed")
        future: Future[_T] = Future()
        self._queue.put((_CALL, (function, future)))
        while True:
            try:
                return future.result(timeout=1.0)
            except TimeoutError:
                if not self._thread.is_alive():
                    raise JournalError(f"{self.path}: the journal writer stopped") from None

    # --- reading

    def previous_jobs(self) -> dict[str, JobRecord]:
        """The latest record of every input the journal knows, keyed by its absolute path."""

        def read(conn: sqlite3.Connection) -> list[_Row]:
            return conn.execute(f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs").fetchall()

        records = {}
        for row in self._call(read):
            record = JobRecord(_py_text(row[0]), _py_text(row[1]), row[2], row[3], row[4],
                               row[5], row[6], row[7] or 0, row[8] or 0, row[9] or 0.0,
                               _py_text(row[10]), row[11])
            records[record.input_path] = record
        return records

    def last_profile(self) -> ProcessProfile | None:
        """The newest per-process figures stored (calibrated or learned), or None."""

        def read(conn: sqlite3.Connection) -> _Row | None:
            return conn.execute("SELECT cpu_cores, rss_bytes, output_bytes FROM calibrations "
                                "ORDER BY id DESC LIMIT 1").fetchone()

        row = self._call(read)
        if row is None:
            return None
        return ProcessProfile(cpu_cores=float(row[0] or 0.0),
                              rss_bytes=int(row[1] or 0),
                              output_bytes=int(row[2] or 0),
                              source="journal")

    # --- writing

    def start_run(self, plan: Plan, argv: Sequence[str]) -> int:
        """Open a row in `runs` and remember the plan, so job events map to inputs."""
        self._end_run()
        self._specs = {spec.job_id: spec for spec in plan.jobs}
        self._starts = {}
        params = (time.time(), _config_json(plan), json.dumps(list(argv)))

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute("INSERT INTO runs(started, config, argv) VALUES (?, ?, ?)",
                                  params)
            return int(cursor.lastrowid or 0)

        self._run_id = self._call(insert)
        self._run_ended = False
        return self._run_id

    def listener(self, event: ev.Event) -> None:
        """Bus listener: turns the events worth keeping into queued updates, never touches the
        database (O(1), safe on the event loop)."""
        handler = self._handlers.get(type(event))
        if handler is not None and not self._closed:
            handler(event)

    def record_profile(self, profile: ProcessProfile, decision: ScalingDecision | None) -> None:
        """Queue per-process figures (and the limit they gave) for a later run's `last_profile`."""
        if self._closed:
            return
        limit = decision.limit if decision is not None else None
        binding = decision.binding if decision is not None else None
        self._queue.put((_SQL, (_INSERT_CALIBRATION,
                                (self._run_id, time.time(), profile.source, profile.cpu_cores,
                                 profile.rss_bytes, profile.output_bytes, limit, binding))))

    def flush(self) -> None:
        """Block until everything queued so far is committed; raises JournalError if a write
        failed since the last flush."""
        self._call(lambda conn: None)
        self._raise_error()

    @property
    def error(self) -> JournalError | None:
        """The first write failure not yet reported by flush() (close() never raises it)."""
        return self._error

    def close(self) -> None:
        """Flush, mark the run ended (if RunFinished did not) and stop the writer; idempotent.

        Never raises for a failed write (it would stop callers releasing the lock): see `error`.
        """
        if self._closed:
            return
        self._end_run()
        self._closed = True
        self._queue.put((_STOP, None))
        self._thread.join()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _end_run(self) -> None:
        if self._run_id is not None and not self._run_ended:
            self._run_ended = True
            self._queue.put((_SQL, ("UPDATE runs SET ended = ? WHERE id = ? AND ended IS NULL",
                                    (time.time(), self._run_id))))

    # --- event handlers (caller's thread: queue only)

    def _on_job(self, event: ev.JobStateChanged) -> None:
        spec = self._specs.get(event.job_id)
        if spec is None:
            return
        state = event.state
        now = time.time()
        start = self._starts.get(event.job_id)
        if state is ev.JobState.RUNNING and (start is None or start[0] != event.attempt):
            start = self._starts[event.job_id] = (event.attempt, now)
        started = start[1] if start is not None and start[0] == event.attempt else None
        row = (_db_text(str(spec.input_path)), _db_text(str(spec.output_path)), state.value,
               event.exit_code, event.signal, started,
               now if state.finished else None, event.attempt, event.peak_rss, event.cpu_seconds,
               _db_text(str(spec.log_path)), self._run_id)
        self._queue.put((_JOB, (state is ev.JobState.SKIPPED, row)))

    def _on_calibration(self, event: ev.CalibrationFinished) -> None:
        self.record_profile(event.profile, event.decision)

    def _on_limit(self, event: ev.LimitChanged) -> None:
        decision = event.decision
        if decision is None or not event.reason.startswith("learned"):
            return
        profile = ProcessProfile(cpu_cores=float(decision.cpu.per_process),
                                 rss_bytes=int(decision.memory.per_process),
                                 output_bytes=int(decision.disk.per_process),
                                 source="learned")
        self.record_profile(profile, decision)

    def _on_run_finished(self, event: ev.RunFinished) -> None:
        if self._run_id is None or self._run_ended:
            return
        self._run_ended = True
        counts = json.dumps(dict(event.counts), sort_keys=True)
        self._queue.put((_SQL, ("UPDATE runs SET ended = ?, exit_code = ?, counts = ? WHERE id = ?",
                                (time.time(), event.exit_code, counts, self._run_id))))
