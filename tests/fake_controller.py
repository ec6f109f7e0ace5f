"""A stand-in for the run host that only records what the screens ask of it.

Snapshot and replay tests hand the TUI this controller: attaching gives a snapshot of hand-made
jobs (all queued), then the scripted events are delivered on the loop's next turn, as a live
host would deliver them. No core, no subprocess and no clock can make a screenshot drift.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core.controller import Launch, Listener
from orch_tui.core.errors import OrchError
from orch_tui.core.events import JobState
from orch_tui.core.plan import Plan
from orch_tui.core.snapshot import CalibrationStatus, JobView, RunSnapshot
from orch_tui.core.tally import Counts


def job_views(states: Sequence[JobState], ext: str = ".mp4") -> tuple[JobView, ...]:
    """Jobs 1, 2... in these states, named `1.mp4`..., with outputs and logs under /o."""
    return tuple(
        JobView(job_id=i,
                name=f"{i}{ext}",
                output_path=Path(f"/o/{i}{ext}"),
                log_path=Path(f"/o/.orch-tui/logs/{i}.log"),
                argv=("x", ),
                input_size=1,
                state=state) for i, state in enumerate(states, 1))


class FakeController:  # pylint: disable=too-many-instance-attributes  # a recorder of everything
    """Implements `RunControl` (core/controller.py); every command is appended to `calls`."""

    def __init__(self,
                 jobs: Sequence[JobView] = (),
                 events: Sequence[ev.Event] = (),
                 *,
                 limit: int = 4,
                 paused_all: bool = False,
                 calibration: CalibrationStatus = CalibrationStatus.SKIPPED,
                 clock: Callable[[], float] = lambda: 0.0,
                 started: bool = True,
                 detachable: bool = False) -> None:
        """`started=False`: no run yet (the app opens on the config screen); `detachable`: as
        a run in another process (`d`, the detach choice when quitting)."""
        self.jobs = tuple(jobs)
        self.events = list(events)
        self._limit = limit
        self._paused_all = paused_all
        self.calibration = calibration
        self._clock = clock
        self.calls: list[tuple[str, object]] = []
        self.listeners: list[Listener] = []
        self.delivered = False
        self._started = started
        self._detachable = detachable
        self.config: Path | None = None  # the run's config file, as a snapshot names it

    @property
    def clock(self) -> Callable[[], float]:
        """The frozen clock of the test."""
        return self._clock

    @property
    def started(self) -> bool:
        """As constructed: a run under way, or none yet."""
        return self._started

    @property
    def detachable(self) -> bool:
        """As constructed."""
        return self._detachable

    async def launch(self, plan: Plan) -> Launch:
        """Record the request; the fake then plays its script."""
        self._record("start", plan)
        self._started = True
        return Launch()

    def config_checked(self, path: Path, error: OrchError | None) -> None:
        """Record a validation."""
        self._record("config_checked", (path, error))

    def attach(self, listener: Listener) -> RunSnapshot:
        """The hand-made jobs, then the scripted events on the loop's next turn."""
        self.listeners.append(listener)
        asyncio.get_running_loop().call_soon(self._deliver, listener)
        return RunSnapshot(jobs=self.jobs,
                           counts=Counts.of(job.state for job in self.jobs),
                           calibration=self.calibration,
                           limit=self._limit,
                           paused_all=self._paused_all,
                           config=self.config)

    def _deliver(self, listener: Listener) -> None:
        for event in self.events:
            listener(event)
        self.delivered = True

    def detach(self, listener: Listener) -> None:
        """Record the detach."""
        if listener in self.listeners:
            self.listeners.remove(listener)

    def _record(self, name: str, arg: object = None) -> bool:
        self.calls.append((name, arg))
        return True

    @property
    def limit(self) -> int:
        """The limit the screens set last."""
        return self._limit

    @property
    def paused_all(self) -> bool:
        """As pause_all/resume_all left it."""
        return self._paused_all

    def pause(self, job_id: int) -> bool:
        """Record a pause."""
        return self._record("pause", job_id)

    def resume(self, job_id: int) -> bool:
        """Record a resume."""
        return self._record("resume", job_id)

    def kill(self, job_id: int) -> bool:
        """Record a kill."""
        return self._record("kill", job_id)

    def cancel(self, job_id: int) -> bool:
        """Record a cancel."""
        return self._record("cancel", job_id)

    def requeue(self, job_id: int) -> bool:
        """Record a requeue."""
        return self._record("requeue", job_id)

    def pause_all(self) -> None:
        """Record pause-all and reflect it like the core does."""
        self._paused_all = True
        self._record("pause_all")

    def resume_all(self) -> None:
        """Record resume-all and reflect it like the core does."""
        self._paused_all = False
        self._record("resume_all")

    def set_limit(self, limit: int) -> None:
        """Record the operator's limit and keep it, as the screens read it back."""
        self._limit = limit
        self._record("set_limit", limit)

    def shutdown(self,
                 *,
                 kill: bool = True,
                 interrupted: bool = True,
                 signal: int | None = None) -> None:
        """Record a shutdown request."""
        del signal  # the exit code is the core's business
        self._record("shutdown", (kill, interrupted))

    def kill_all_now(self) -> None:
        """Record that the grace was cut short."""
        self._record("kill_all_now", None)
