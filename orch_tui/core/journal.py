"""The run journal: what every job did, across runs, in one SQLite file next to the outputs.

It lets a later run resume (a job whose row is still `running` was interrupted and runs again)
and start from learned figures instead of calibrating. Recording must never slow the scheduler:
the bus listener only appends to a queue, and one writer thread owns the connection, committing
the queued updates in batches (WAL, synchronous=NORMAL: no fsync per job). The one exception is
a job's end (succeeded, failed, killed, missing): the listener, called before anyone else hears of
it, waits until that row is committed, so a finished job is never run again after a crash or
`kill -9` of the orchestrator (a power cut can still lose the commits since the last checkpoint).
Reads go through the same thread, after what was queued.

Opening refuses, in one line, what must not be used: a journal, -wal or -shm that is a symlink or
someone else's file, a damaged file (PRAGMA quick_check), one locked by another program.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import sqlite3
import stat
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
#: How long SQLite waits for another program's lock before the journal gives up (one line).
BUSY_SECONDS = 3.0
#: How long a finished job's listener waits for its commit before the journal gives up on it.
SYNC_SECONDS = 10.0
#: After a failed commit, the kept updates are tried again this much later (not in a busy loop).
RETRY_SECONDS = 2.0
#: The files SQLite keeps beside the journal in WAL mode.
SIDE_SUFFIXES = ("-wal", "-shm")
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


class JournalDamaged(JournalError):
    """The journal file is corrupt: nothing runs, `--fresh` moves it aside (see `Journal`)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


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


def _one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def _is_busy(exc: sqlite3.Error) -> bool:
    return (_error_name(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc))


def _is_corrupt(exc: sqlite3.Error) -> bool:
    name = _error_name(exc)
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _damaged(path: Path, detail: str) -> JournalDamaged:
    detail = _one_line(detail)
    return JournalDamaged(
        f"{path}: the journal is damaged ({detail}); nothing was run: run again with --fresh to "
        "move it aside and start a new journal", detail)


def _sqlite_error(path: Path, exc: sqlite3.Error, doing: str) -> JournalError:
    """One line for the operator: locked by another program, damaged, or what SQLite said."""
    locked = f"the journal is locked by another program ({_one_line(exc)} after {BUSY_SECONDS:g}s)"
    if doing == "write":
        return JournalError(f"{path}: journal write failed: "
                            f"{locked if _is_busy(exc) else _one_line(exc)}")
    if _is_busy(exc):
        return JournalError(f"{path}: {locked}; close that program (an open sqlite3 shell?) and "
                            "run again")
    if _is_corrupt(exc):
        return _damaged(path, _one_line(exc))
    return JournalError(f"{path}: cannot {doing} the journal: {_one_line(exc)}")


def _check_own_file(path: Path) -> os.stat_result | None:
    """lstat `path` and refuse (one line) a symlink, a non-file, a hard link or another user's
    file: SQLite would follow a planted symlink and write through it. None when there is none."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"{path}: cannot check the journal: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(info.st_mode):
        raise JournalError(f"{path}: is a symbolic link; the journal is never opened through one: "
                           "remove it")
    if not stat.S_ISREG(info.st_mode):
        raise JournalError(f"{path}: is not a regular file; the journal cannot be used: move it "
                           "aside")
    if info.st_nlink != 1:
        raise JournalError(f"{path}: has {info.st_nlink} hard links; the journal is never written "
                           "through a link: move it aside")
    if info.st_uid != os.geteuid():
        raise JournalError(f"{path}: is owned by uid {info.st_uid}, not by you (uid "
                           f"{os.geteuid()}); the journal is not used: move it aside")
    return info


def _create_private(path: Path) -> bool:
    """Create `path` empty with mode 0o600 whatever the umask, never through a symlink; False
    when something is already there (then `_check_own_file` judges it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise JournalError(f"{path}: cannot create the journal: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, 0o600)  # a umask such as 0o277 would have taken the owner's write bit
    finally:
        os.close(fd)
    return True


def _config_json(plan: Plan) -> str:
    config = plan.config
    data: dict[str, Any] = {"path": str(config.path)}
    for name in ("binary", "directories", "resources", "jobs"):
        data[name] = dataclasses.asdict(getattr(config, name))
    return json.dumps(data, default=str, sort_keys=True)


class _Batch:
    """Updates waiting for the next transaction; job rows coalesce to the newest per input.

    A failed commit keeps them (a lock or a full disk may go away) and is retried no sooner than
    `retry_at`, so a lasting failure costs one attempt per RETRY_SECONDS, not a busy loop."""

    def __init__(self) -> None:
        self.jobs: dict[str | bytes, tuple[bool, _Row]] = {}
        self.statements: list[tuple[str, _Row]] = []
        self.count = 0
        self.deadline = 0.0
        self.retry_at = 0.0

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

    def due(self) -> bool:
        """True when the size or time trigger says commit now (and no retry is pending)."""
        now = time.monotonic()
        return (self.count >= BATCH_SIZE or now >= self.deadline) and now >= self.retry_at

    def commit(self, conn: sqlite3.Connection) -> None:
        """Write everything in one transaction (nothing, when empty); empties the batch when it
        succeeds, keeps it for a retry when it raises."""
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
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolls back itself when it cannot (an I/O error)
            self.deadline = self.retry_at = time.monotonic() + RETRY_SECONDS
            raise
        self.jobs.clear()
        self.statements.clear()
        self.count = 0
        self.retry_at = 0.0


_JOB = "job"  # payload: (skip_only, row)
_SQL = "sql"  # payload: (statement, params)
_CALL = "call"  # payload: (function of the connection, future for its result)
_SYNC = "sync"  # payload: a future set to the commit's error (None: committed)
_STOP = "stop"


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
        self._trace = trace
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._error: JournalError | None = None
        self._closed = False
        #: Called once, on the listener's thread, with one line when a write fails.
        self.on_error: Callable[[str], None] | None = None
        #: One line saying a damaged journal was moved aside (`move_damaged`), else None.
        self.notice: str | None = None
        # Touched on the caller's (event loop's) thread only.
        self._run_id: int | None = None
        self._run_ended = True
        self._specs: dict[int, JobSpec] = {}
        self._starts: dict[int, tuple[int, float]] = {}
        self._sync = True  # False once a finished job's commit failed: stop waiting for them
        self._failure: str | None = None  # the first write failure (set by either thread)
        self._failure_told = False
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.JobStateChanged: self._on_job,
            ev.CalibrationFinished: self._on_calibration,
            ev.LimitChanged: self._on_limit,
            ev.RunFinished: self._on_run_finished,
        }
        try:
            self._thread = self._start_writer()
        except JournalDamaged as exc:
            if not move_damaged:
                raise
            moved = self._move_aside()
            self.notice = (f"{path}: the journal was damaged ({exc.detail}); moved it to {moved} "
                           "and started a new journal")
            self._thread = self._start_writer()

    @classmethod
    def open(cls,
             state_dir: Path,
             *,
             trace: Callable[[str], None] | None = None,
             move_damaged: bool = False) -> Journal:
        """Create (mode 0o600) or open `state_dir`/journal.sqlite3 and check it: its files are
        the user's own and no symlinks, it is not damaged, not locked by another program, and
        its schema is not newer than this orch-tui's.

        `trace`, when given, is called with every SQL statement, on the writer thread (for
        debugging). `move_damaged` (--fresh) renames a damaged journal, with its -wal and -shm,
        to journal.sqlite3.damaged-<time> and starts a new one (`notice` says so). Raises
        JournalError (JournalDamaged for a corrupt file) with one line naming the file.
        """
        return cls(state_dir, trace=trace, move_damaged=move_damaged)

    def _start_writer(self) -> threading.Thread:
        self._check_files()
        ready: Future[None] = Future()
        thread = threading.Thread(target=self._writer,
                                  args=(ready, ),
                                  name="orch-tui journal",
                                  daemon=True)
        thread.start()
        ready.result()  # raises the writer's JournalError (corrupt, newer schema, locked...)
        return thread

    def _check_files(self) -> None:
        """Create the journal privately, or check that it and its -wal/-shm may be used.

        SQLite follows a symlink at the database's name (Python's sqlite3 cannot pass
        SQLITE_OPEN_NOFOLLOW, and there is no URI parameter for it); it opens -wal and -shm with
        O_NOFOLLOW, but a planted one would only fail later, less clearly."""
        path = self.path
        if not _create_private(path):
            _check_own_file(path)
            if not os.access(path, os.R_OK | os.W_OK):
                raise JournalError(f"cannot write the journal: {path} is not readable and "
                                   "writable")
        for suffix in SIDE_SUFFIXES:
            _check_own_file(Path(f"{path}{suffix}"))

    def _move_aside(self) -> Path:
        """Rename the damaged journal and its -wal/-shm (those first: a -wal left behind would be
        replayed into the new journal) to `journal.sqlite3.damaged-<time>[-wal|-shm]`."""
        path = self.path
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.damaged-{stamp}")
        number = 1
        while any(os.path.lexists(f"{target}{suffix}") for suffix in ("", *SIDE_SUFFIXES)):
            number += 1
            target = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
        for suffix in (*SIDE_SUFFIXES, ""):
            source = Path(f"{path}{suffix}")
            try:
                if os.path.lexists(source):
                    os.rename(source, f"{target}{suffix}")
            except OSError as exc:
                raise JournalError(f"{source}: cannot move the damaged journal aside: "
                                   f"{exc.strerror or exc}") from exc
        return target

    # --- the writer thread (the only user of the connection)

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        try:
            before = os.lstat(path)
            conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc.strerror or exc}") from exc
        except sqlite3.Error as exc:
            raise _sqlite_error(path, exc, "open") from exc
        try:
            if self._trace is not None:
                conn.set_trace_callback(self._trace)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._check_intact(conn)
            self._check_schema(conn)
            # Take the write lock once now: another program holding it is refused here, before
            # anything runs, not at the first write.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            after = os.lstat(path)
            if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
                raise JournalError(f"{path}: the journal was replaced while it was opened; "
                                   "run again")
        except sqlite3.Error as exc:
            conn.close()
            raise _sqlite_error(path, exc, "use") from exc
        except OSError as exc:
            conn.close()
            raise JournalError(f"{path}: cannot use the journal: {exc.strerror or exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_intact(self, conn: sqlite3.Connection) -> None:
        """PRAGMA quick_check: every b-tree page, not just the header (linear, about a second
        per GB; a journal is a few MB per 10,000 jobs)."""
        row = conn.execute("PRAGMA quick_check(1)").fetchone()
        result = str(row[0]) if row else "no result"
        if result != "ok":
            lines = [line for line in result.splitlines() if not line.startswith("***")]
            raise _damaged(self.path, f"quick_check: {lines[0] if lines else result}")

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
                    if batch.due():
                        self._commit(conn, batch)
                    continue
                error = self._commit(conn, batch)
                if kind == _SYNC:
                    payload.set_result(error)
                    continue
                if kind == _STOP:
                    return
                function, future = payload
                try:
                    future.set_result(function(conn))
                except BaseException as exc:  # pylint: disable=broad-exception-caught
                    future.set_exception(exc)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: _Batch) -> str | None:
        """Commit the batch; on failure record the first error and return its line (the batch
        is kept and retried; the thread keeps going, a full disk may free up)."""
        try:
            batch.commit(conn)
        except (sqlite3.Error, ValueError) as exc:
            line = (str(_sqlite_error(self.path, exc, "write")) if isinstance(exc, sqlite3.Error)
                    else f"{self.path}: journal write failed: {_one_line(exc)}")
            self._fail(line)
            return line
        return None

    def _fail(self, line: str) -> None:
        """Remember a write failure for flush()/`error` and for the `on_error` hook."""
        if self._error is None:
            self._error = JournalError(line)
        if self._failure is None:
            self._failure = line

    def _call(self, function: Callable[[sqlite3.Connection], _T], doing: str = "read") -> _T:
        """Run `function(conn)` on the writer thread after everything queued so far; a SQLite
        error becomes a one-line JournalError (locked, damaged, ...)."""
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
            except sqlite3.Error as exc:
                raise _sqlite_error(self.path, exc, doing) from exc

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
            row: _Row | None = conn.execute(
                "SELECT cpu_cores, rss_bytes, output_bytes FROM calibrations "
                "ORDER BY id DESC LIMIT 1").fetchone()
            return row

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

        self._run_id = self._call(insert, "start a run in")
        self._run_ended = False
        return self._run_id

    def listener(self, event: ev.Event) -> None:
        """Bus listener (register it with `first=True`): turns the events worth keeping into
        queued updates and never touches the database itself. O(1), except for a job's end,
        which it holds until the writer has committed it (see `_on_job`)."""
        handler = self._handlers.get(type(event))
        if handler is not None and not self._closed:
            handler(event)
        if self._failure is not None and not self._failure_told:
            self._tell_failure()

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

    def _tell_failure(self) -> None:
        """Call `on_error` once with the first failure (on the listener's thread, never on the
        writer's: the hook may touch the event loop)."""
        self._failure_told = True
        hook = self.on_error
        if hook is not None and self._failure is not None:
            # pylint: disable-next=not-callable  # it infers None from __init__; checked above
            hook(self._failure)

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
        skip = state is ev.JobState.SKIPPED
        self._queue.put((_JOB, (skip, row)))
        if state.finished and not skip and self._sync:
            self._commit_now()

    def _commit_now(self) -> None:
        """Wait until the writer has committed everything queued (the end of a job the
        listener was just told of), so no one hears of it before it is on disk.

        Skips stay batched: preflight marks them by the 100,000 and they are no news. A failed
        or stuck commit is recorded once (`error`, `on_error`) and later ends are not waited
        for: a locked journal must cost the run one wait, not one per job."""
        done: Future[str | None] = Future()
        self._queue.put((_SYNC, done))
        try:
            line = done.result(timeout=SYNC_SECONDS)
        except TimeoutError:
            line = (f"{self.path}: journal write failed: a commit took more than "
                    f"{SYNC_SECONDS:g}s")
            self._fail(line)
        if line is not None:
            self._sync = False

    def _on_calibration(self, event: ev.CalibrationFinished) -> None:
        # Figures taken from a previous run are in the journal already: never stored twice.
        if event.source.measured:
            self.record_profile(event.profile, event.decision)

    def _on_limit(self, event: ev.LimitChanged) -> None:
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
            return
        self._run_ended = True
        counts = json.dumps(dict(event.counts), sort_keys=True)
        self._queue.put((_SQL, ("UPDATE runs SET ended = ?, exit_code = ?, counts = ? WHERE id = ?",
                                (time.time(), event.exit_code, counts, self._run_id))))
