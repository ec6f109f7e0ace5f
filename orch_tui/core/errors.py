"""Errors the operator must see as one clear line, never as a traceback.

Every error raised for bad input carries where it came from (file, line, column, key) so the
command line and the TUI can both point at the exact place to fix.
"""

from __future__ import annotations

from pathlib import Path


class OrchError(Exception):
    """Base class: an error that ends the program with `exit_code` and a one-line message."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(OrchError):
    """A bad command line (unknown flag, bad number)."""


class ConfigError(OrchError):
    """A config or input-list problem, located as precisely as the source allows."""

    def __init__(self,
                 message: str,
                 *,
                 path: Path | str | None = None,
                 line: int | None = None,
                 column: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.key = key

    @property
    def location(self) -> str:
        """`file:line:column` (as much of it as is known), or '' when nothing is known."""
        if self.path is None:
            return ""
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        parts = [p for p in (self.location, self.key) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class SpawnError(OrchError):
    """A job's command could not be started at all (not found, not executable).

    `systemic` marks a cause that is not the job's (a full or read-only filesystem, no
    descriptors or memory left): the scheduler stops launching and keeps the job queued
    instead of failing it and every job after it. `told`: the runner already told the operator
    why, in its own words (a lost scheduler): the refusal adds no second error of its own."""

    exit_code = 1

    def __init__(self, message: str, *, systemic: bool = False, told: bool = False) -> None:
        super().__init__(message)
        self.systemic = systemic
        self.told = told


class LockError(OrchError):
    """Another orchestrator already owns the output directory."""
