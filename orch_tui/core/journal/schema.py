"""The journal's tables, the migrations that bring an older journal up to them, and the row
a job leaves.

A journal written by an earlier orch-tui is migrated when it is opened, never refused: each
schema change adds the SQL taking version N to N + 1 to MIGRATIONS, run in one transaction
with the version bump. Only a journal from a newer orch-tui is refused (it may hold what this
one cannot read). Version 1 is the first released schema; tests/fixtures/journal_v1.sql is a
journal the release before the current code wrote, and is resumed by the tests.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orch_tui.core.journal.errors import JournalError
from orch_tui.core.tally import ACTIVE_STATES

SCHEMA_VERSION = 5
JOURNAL_NAME = "journal.sqlite3"
#: A state that means the job was cut short when its row is the last one left (rerun it): the
#: tally's active states, those holding a process (`stopping` too: SIGTERM was sent, the run
#: ended before the exit was recorded).
INTERRUPTED_STATES = frozenset(state.value for state in ACTIVE_STATES)
#: Columns version 3 added to `runs` (status reads them; NULL in runs an older version wrote).
RUN_STATUS_COLUMNS = ("pid INTEGER", "total INTEGER", "skipped INTEGER", "missing INTEGER",
                      "limit_value INTEGER", "limit_source TEXT")
#: Columns version 5 added: why the run ended a job (a StopReason: a joblog line's Exitval
#: depends on it) and its Seq in that run; the joblog a run wrote (its path, its file, its size
#: when the run began), so the next run writes the lines a killed run committed but never wrote.
JOBLOG_COLUMNS = (
    ("jobs", "stop TEXT"),
    ("jobs", "seq INTEGER"),
    ("runs", "joblog TEXT"),
    ("runs", "joblog_file TEXT"),
    ("runs", "joblog_offset INTEGER"),
)
#: version N -> the SQL that makes a version N journal a version N + 1 one.
MIGRATIONS: dict[int, str] = {
    # 2: why a job ended (its status) and a failure's last meaningful log line.
    1: "ALTER TABLE jobs ADD COLUMN reason TEXT; ALTER TABLE jobs ADD COLUMN detail TEXT",
    # 3: what `orch-tui status` needs of a run that is still going or died: who ran it, the
    # preflight's figures (queued jobs have no row yet) and the limit in force.
    2: ";".join(f"ALTER TABLE runs ADD COLUMN {column}" for column in RUN_STATUS_COLUMNS),
    # 4: the node a job ran on (a cluster run): `orch-tui status` lists each node's jobs from
    # the journal when the run does not answer.
    3: "ALTER TABLE jobs ADD COLUMN node TEXT",
    # 5: JOBLOG_COLUMNS.
    4: ";".join(f"ALTER TABLE {table} ADD COLUMN {column}" for table, column in JOBLOG_COLUMNS),
}

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE runs(id INTEGER PRIMARY KEY, started REAL, ended REAL, config TEXT, argv TEXT,
                  exit_code INTEGER, counts TEXT, pid INTEGER, total INTEGER,
                  skipped INTEGER, missing INTEGER, limit_value INTEGER, limit_source TEXT,
                  joblog TEXT, joblog_file TEXT, joblog_offset INTEGER);
CREATE TABLE jobs(input TEXT PRIMARY KEY, output TEXT, state TEXT, exit_code INTEGER,
                  signal INTEGER, started REAL, ended REAL, attempts INTEGER, peak_rss INTEGER,
                  cpu_seconds REAL, log_path TEXT, run_id INTEGER, reason TEXT, detail TEXT,
                  node TEXT, stop TEXT, seq INTEGER);
CREATE TABLE calibrations(id INTEGER PRIMARY KEY, run_id INTEGER, time REAL, source TEXT,
                          cpu_cores REAL, rss_bytes INTEGER, output_bytes INTEGER,
                          limit_value INTEGER, binding TEXT);
"""
JOB_COLUMNS = ("input", "output", "state", "exit_code", "signal", "started", "ended", "attempts",
               "peak_rss", "cpu_seconds", "log_path", "run_id", "reason", "detail", "node", "stop",
               "seq")
UPSERT_JOB = (f"INSERT OR REPLACE INTO jobs({', '.join(JOB_COLUMNS)}) "
              f"VALUES ({', '.join('?' * len(JOB_COLUMNS))})")
# A skip (the output is already there) must not erase how the job succeeded in an earlier run.
UPSERT_SKIP = (f"INSERT INTO jobs({', '.join(JOB_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(JOB_COLUMNS))}) ON CONFLICT(input) DO UPDATE SET " +
               ", ".join(f"{c} = excluded.{c}"
                         for c in JOB_COLUMNS[1:]) + " WHERE jobs.state != 'succeeded'")
INSERT_CALIBRATION = ("INSERT INTO calibrations(run_id, time, source, cpu_cores, rss_bytes, "
                      "output_bytes, limit_value, binding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

Row = tuple[Any, ...]


@dataclass(frozen=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per column of a job row
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
    reason: str = ""  # how it ended ('exit 1'); '' in rows a version 1 journal wrote
    detail: str = ""  # a failure's last meaningful log line (core/logtail.py)
    node: str = ""  # where its last attempt ran; '' in rows a version 3 journal or older wrote
    stop: str = ""  # why the run ended it (a StopReason's value); '' for none or an older row
    seq: int | None = None  # its job number in the run that wrote the row (the joblog's Seq)

    @property
    def interrupted(self) -> bool:
        """True when the run that wrote this row ended while the job still held a process."""
        return self.state in INTERRUPTED_STATES

    @classmethod
    def from_row(cls, row: Row) -> JobRecord:
        """A `SELECT JOB_COLUMNS FROM jobs` row (NULL counters read as zero)."""
        return cls(py_text(row[0]), py_text(row[1]), row[2], row[3], row[4], row[5], row[6], row[7]
                   or 0, row[8] or 0, row[9] or 0.0, py_text(row[10]), row[11], py_text(row[12]),
                   py_text(row[13]), py_text(row[14]), row[15] or "", row[16])


def db_text(text: str) -> str | bytes:
    """A path as SQLite can store it: undecodable file names (surrogate escapes) go in as the
    original bytes, so they still round-trip exactly."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def py_text(value: str | bytes | None) -> str:
    """The path `db_text` stored."""
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return value or ""


def check_schema(conn: sqlite3.Connection,
                 path: Path,
                 *,
                 version: int = SCHEMA_VERSION,
                 migrations: Mapping[int, str] | None = None) -> None:
    """Create the tables in an empty database, migrate an older journal to `version`, refuse
    a newer one or a database that is not a journal (JournalError, one line)."""
    migrations = MIGRATIONS if migrations is None else migrations
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if "meta" not in tables:
        if tables:
            raise JournalError(f"{path}: a SQLite database but not an orch-tui journal; "
                               "move it aside to start a new one")
        conn.executescript(f"BEGIN;{_SCHEMA}INSERT INTO meta(key, value) "
                           f"VALUES ('schema_version', '{version}');COMMIT;")
        return
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        found = int(row[0])
    except (TypeError, ValueError) as exc:
        raise JournalError(f"{path}: journal has no valid schema version "
                           f"({row[0] if row else 'none'!r})") from exc
    if found > version:
        raise JournalError(f"{path}: journal schema version {found} is newer than "
                           f"this orch-tui supports ({version}); upgrade orch-tui or "
                           "move the file aside")
    for step in range(found, version):
        if step not in migrations:
            raise JournalError(f"{path}: this orch-tui cannot migrate a journal of schema "
                               f"version {step}; move the file aside")
        try:
            conn.executescript(f"BEGIN IMMEDIATE;{migrations[step]};UPDATE meta SET value = "
                               f"'{step + 1}' WHERE key = 'schema_version';COMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
