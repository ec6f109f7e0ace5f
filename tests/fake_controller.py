"""A stand-in for the Orchestrator that only records what the screens ask of it.

Snapshot and replay tests hand the TUI a hand-built RunModel and this controller through
`Session`, so no core, no subprocess and no clock can make a screenshot drift.
"""

from __future__ import annotations


class FakeController:
    """Implements the TUI's `Controller` protocol; every command is appended to `calls`."""

    def __init__(self, limit: int = 4, *, paused_all: bool = False) -> None:
        self.limit = limit
        self.paused_all = paused_all
        self.calls: list[tuple[str, object]] = []

    def _record(self, name: str, arg: object = None) -> bool:
        self.calls.append((name, arg))
        return True

    def pause(self, job_id: int) -> bool:
        """Record a pause."""
        return self._record("pause", job_id)

    def resume(self, job_id: int) -> bool:
        """Record a resume."""
        return self._record("resume", job_id)

    def kill(self, job_id: int) -> bool:
        """Record a kill."""
        return self._record("kill", job_id)

    def requeue(self, job_id: int) -> bool:
        """Record a requeue."""
        return self._record("requeue", job_id)

    def pause_all(self) -> None:
        """Record pause-all and reflect it like the core does."""
        self.paused_all = True
        self._record("pause_all")

    def resume_all(self) -> None:
        """Record resume-all and reflect it like the core does."""
        self.paused_all = False
        self._record("resume_all")

    def set_limit(self, limit: int) -> None:
        """Record the operator's limit and keep it, as the screens read it back."""
        self.limit = limit
        self._record("set_limit", limit)

    def shutdown(self, *, kill: bool = True, interrupted: bool = True) -> None:
        """Record a shutdown request."""
        self._record("shutdown", (kill, interrupted))
