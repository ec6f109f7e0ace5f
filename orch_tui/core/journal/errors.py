"""The journal's errors, each one line naming the file: locked, damaged, or what SQLite said."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from orch_tui.core.errors import OrchError

#: How long SQLite waits for another program's lock before the journal gives up (one line).
BUSY_SECONDS = 3.0


class JournalError(OrchError):
    """The journal cannot be used: not a SQLite file, from a newer orch-tui, not writable..."""

    exit_code = 2


class JournalDamaged(JournalError):
    """The journal file is corrupt: nothing runs, `--fresh` moves it aside (see `Journal`)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def one_line(exc: BaseException | str) -> str:
    """`exc` as one line (SQLite's messages may hold newlines), never empty."""
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


def damaged(path: Path, detail: str) -> JournalDamaged:
    """The refusal of a corrupt journal, pointing at --fresh."""
    detail = one_line(detail)
    return JournalDamaged(
        f"{path}: the journal is damaged ({detail}); nothing was run: run again with --fresh to "
        "move it aside and start a new journal", detail)


def sqlite_error(path: Path, exc: sqlite3.Error, doing: str) -> JournalError:
    """One line for the operator: locked by another program, damaged, or what SQLite said."""
    locked = f"the journal is locked by another program ({one_line(exc)} after {BUSY_SECONDS:g}s)"
    if doing == "write":
        return JournalError(f"{path}: journal write failed: "
                            f"{locked if _is_busy(exc) else one_line(exc)}")
    if _is_busy(exc):
        return JournalError(f"{path}: {locked}; close that program (an open sqlite3 shell?) and "
                            "run again")
    if _is_corrupt(exc):
        return damaged(path, one_line(exc))
    return JournalError(f"{path}: cannot {doing} the journal: {one_line(exc)}")
