"""The journal's file, its connection, and the writer thread that batches what is recorded.

Recording must never slow the scheduler: callers only append to a list, and a writer thread
commits the queued updates in batches (WAL, synchronous=NORMAL: no fsync per job); reads run on
that thread, after what was queued. `sync` (a job's end, which must be on disk before anyone
hears of it) commits on the caller's own thread, under the lock that guards the connection: a
hand-off to the writer and back cost two thread switches and about 0.15 ms per job.

Opening refuses, in one line, what must not be used: a journal, -wal or -shm that is a symlink or
someone else's file, a damaged file (PRAGMA quick_check), one locked by another program.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from orch_tui.core.journal.errors import (BUSY_SECONDS, JournalDamaged, JournalError, damaged,
                                          one_line, sqlite_error)
from orch_tui.core.journal.schema import UPSERT_JOB, UPSERT_SKIP, Row, check_schema
from orch_tui.core.statedir import check_private

#: A batch is committed this long after its first update, or once this many are pending.
BATCH_SECONDS = 0.5
BATCH_SIZE = 200
#: After a failed commit, the kept updates are tried again this much later (not in a busy loop).
RETRY_SECONDS = 2.0
#: The files SQLite keeps beside the journal in WAL mode.
SIDE_SUFFIXES = ("-wal", "-shm")

_T = TypeVar("_T")

_JOB = "job"  # payload: (skip_only, row)
_SQL = "sql"  # payload: (statement, params)
_CALL = "call"  # payload: (function of the connection, future for its result)
_STOP = "stop"
_WAKE = "wake"  # updates were handed while the writer was not collecting them
_TICK = "tick"  # (no message: the batch's deadline or the linger time passed)


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


def _check_own_file(path: Path) -> None:
    """Refuse (one line) a symlink, a non-file, a hard link, a file of another user or one
    others may write: SQLite would follow a planted symlink and write through it. The same
    rules as the state folder's files (statedir.check_private); an older orch-tui's journal,
    created through a umask of 022, passes them."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JournalError(f"{path}: cannot check the journal: {exc.strerror or exc}") from exc
    check_private(info, path, directory=False, error=JournalError)


class _Batch:
    """Updates waiting for the next transaction; job rows coalesce to the newest per input.

    A failed commit keeps them (a lock or a full disk may go away) and is retried no sooner than
    `retry_at`, so a lasting failure costs one attempt per RETRY_SECONDS, not a busy loop."""

    def __init__(self) -> None:
        self.jobs: dict[str | bytes, tuple[bool, Row]] = {}
        self.statements: list[tuple[str, Row]] = []
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
                conn.execute(UPSERT_SKIP if skip else UPSERT_JOB, row)
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


# The file, its connection and its writer thread.
# pylint: disable-next=too-many-instance-attributes
class Store:
    """The journal file at `path`, opened and checked, and its writer thread.

    `move_damaged` (--fresh) renames a damaged journal, with its -wal and -shm, to
    journal.sqlite3.damaged-<time> and starts a new one (`notice` says so). Raises JournalError
    (JournalDamaged for a corrupt file) with one line naming the file."""

    def __init__(self,
                 path: Path,
                 *,
                 trace: Callable[[str], None] | None = None,
                 move_damaged: bool = False) -> None:
        self.path = path
        self._trace = trace
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # Updates handed by callers, taken by the writer whenever it wakes: a job start must
        # not wake the writer (a context switch per event); only the first update after the
        # writer went idle, or every BATCH_SIZE-th, sends a _WAKE. `_collecting` (under
        # `_lock`) is True while the writer will come back for them without one.
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Any]] = []
        self._collecting = False
        # The connection and the batch, used by the writer and by `sync` on the caller's thread,
        # one at a time: whoever holds `_conn_lock`. None once the writer closed it.
        self._conn_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._batch = _Batch()
        self._error: JournalError | None = None
        #: The first write failure (set by either thread), for the recorder's `on_error` hook.
        self.failure: str | None = None
        self.closed = False
        #: One line saying a damaged journal was moved aside (`move_damaged`), else None.
        self.notice: str | None = None
        try:
            self._thread = self._start_writer()
        except JournalDamaged as exc:
            if not move_damaged:
                raise
            moved = self._move_aside()
            self.notice = (f"{path}: the journal was damaged ({exc.detail}); moved it to {moved} "
                           "and started a new journal")
            self._thread = self._start_writer()

    # --- the caller's side

    def put_job(self, skip: bool, row: Row) -> None:
        """Queue a job's row (the newest per input wins within a batch; see `_Batch`)."""
        self._hand((_JOB, (skip, row)))

    def put_sql(self, statement: str, params: Row) -> None:
        """Queue one statement for the next batch."""
        self._hand((_SQL, (statement, params)))

    def _hand(self, item: tuple[str, Any]) -> None:
        """Leave one update for the writer; wake it only when it would not come back for it
        by itself (idle), or when the batch reaches its size trigger."""
        with self._lock:
            self._pending.append(item)
            wake = not self._collecting or len(self._pending) % BATCH_SIZE == 0
            self._collecting = True
        if wake:
            self._queue.put((_WAKE, None))

    def sync(self, timeout: float) -> str | None:
        """Commit everything queued, here and now; the failure line, or None.

        Waits at most `timeout` for the writer to finish what it is doing with the connection;
        the commit itself waits at most SQLite's busy timeout for another program's lock."""
        # Not `with`: the wait is bounded; the lock is released in the `finally` below.
        if not self._conn_lock.acquire(timeout=timeout):  # pylint: disable=consider-using-with
            line = f"{self.path}: journal write failed: a commit took more than {timeout:g}s"
            self.fail(line)
            return line
        try:
            conn = self._conn
            if conn is None:
                line = f"{self.path}: journal write failed: the journal is closed"
                self.fail(line)
                return line
            self._take(conn, linger=False, keep_collecting=True)
            return self._commit(conn)
        finally:
            self._conn_lock.release()

    def call(self, function: Callable[[sqlite3.Connection], _T], doing: str = "read") -> _T:
        """Run `function(conn)` on the writer thread after everything queued so far; a SQLite
        error becomes a one-line JournalError (locked, damaged, ...)."""
        if self.closed:
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
                raise sqlite_error(self.path, exc, doing) from exc

    def fail(self, line: str) -> None:
        """Remember a write failure for `take_error` and for the `on_error` hook."""
        if self._error is None:
            self._error = JournalError(line)
        if self.failure is None:
            self.failure = line

    @property
    def error(self) -> JournalError | None:
        """The first write failure not yet taken."""
        return self._error

    def take_error(self) -> JournalError | None:
        """The first write failure since the last call (and forget it)."""
        error, self._error = self._error, None
        return error

    def close(self) -> None:
        """Commit what is queued and stop the writer; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._queue.put((_STOP, None))
        self._thread.join()

    # --- opening

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
            # Shared with `sync` on the caller's thread, always under `_conn_lock`.
            conn = sqlite3.connect(path,
                                   timeout=BUSY_SECONDS,
                                   isolation_level=None,
                                   check_same_thread=False)
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc.strerror or exc}") from exc
        except sqlite3.Error as exc:
            raise sqlite_error(path, exc, "open") from exc
        try:
            if self._trace is not None:
                conn.set_trace_callback(self._trace)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._check_intact(conn)
            check_schema(conn, path)
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
            raise sqlite_error(path, exc, "use") from exc
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
            raise damaged(self.path, f"quick_check: {lines[0] if lines else result}")

    def _writer(self, ready: Future[None]) -> None:
        # Signals are the main thread's: unblocked here, each job's SIGCHLD that arrives while
        # the main thread blocks it (inside posix_spawn) would wake this thread for nothing.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            conn = self._connect()
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            ready.set_exception(exc)
            return
        self._conn = conn
        ready.set_result(None)
        batch = self._batch
        try:
            while True:
                if batch.count:
                    timeout: float | None = max(0.0, batch.deadline - time.monotonic())
                else:
                    # Linger while updates may still be handed without a wake (see `_hand`).
                    timeout = BATCH_SECONDS if self._collecting else None
                try:
                    kind, payload = self._queue.get(timeout=timeout)
                except queue.Empty:
                    kind, payload = _TICK, None
                with self._conn_lock:
                    if self._serve(conn, kind, payload):
                        return
        finally:
            with self._conn_lock:
                self._conn = None
                conn.close()

    def _serve(self, conn: sqlite3.Connection, kind: str, payload: Any) -> bool:
        """One message, under `_conn_lock`; True for the last (stop)."""
        batch = self._batch
        # Everything handed before this message was sent goes in first (order kept).
        self._take(conn, linger=kind != _TICK)
        if kind in (_WAKE, _TICK):
            if batch.count and batch.due():
                self._commit(conn)
                self._take(conn, linger=kind != _TICK)
            return False
        self._commit(conn)
        if kind == _STOP:
            return True
        function, future = payload
        try:
            future.set_result(function(conn))
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            future.set_exception(exc)
        return False

    def _take(self,
              conn: sqlite3.Connection,
              *,
              linger: bool,
              keep_collecting: bool = False) -> None:
        """Move the handed updates into the batch, committing whenever it is due (size, time).

        The writer keeps collecting (callers do not wake it) while the batch holds updates,
        and for one more BATCH_SECONDS after any message (`linger`): a steady run's job starts
        then never wake it, the next job end's sync takes them. A sync on the caller's thread
        (`keep_collecting`) leaves the writer's collecting as it was."""
        batch = self._batch
        while True:
            with self._lock:
                items, self._pending = self._pending, []
                if not items:
                    if not keep_collecting:
                        self._collecting = bool(batch.count) or linger
                    return
            for kind, payload in items:
                batch.add(kind, payload)
                if batch.due():
                    self._commit(conn)

    def _commit(self, conn: sqlite3.Connection) -> str | None:
        """Commit the batch; on failure record the first error and return its line (the batch
        is kept and retried; the thread keeps going, a full disk may free up)."""
        try:
            self._batch.commit(conn)
        except (sqlite3.Error, ValueError, OverflowError) as exc:
            line = (str(sqlite_error(self.path, exc, "write")) if isinstance(exc, sqlite3.Error)
                    else f"{self.path}: journal write failed: {one_line(exc)}")
            self.fail(line)
            return line
        return None
