"""What an observer may ask of a run, and how it attaches to one.

The TUI speaks only these protocols: `RunHost` implements them in process, a socket client will
implement them for an attached TUI, and the tests' FakeController implements them for
snapshots. Everything crossing them is plain data (a `RunSnapshot`, then events)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from orch_tui.core import events as ev

if TYPE_CHECKING:
    from pathlib import Path

    from orch_tui.core.errors import OrchError
    from orch_tui.core.plan import Plan
    from orch_tui.core.snapshot import RunSnapshot

Listener = Callable[[ev.Event], None]


class Controller(Protocol):
    """The commands an operator gives a running run."""

    @property
    def limit(self) -> int:
        """The process limit in force."""

    @property
    def paused_all(self) -> bool:
        """True after pause_all until resume_all."""

    def pause(self, job_id: int) -> bool:
        """SIGSTOP one job."""

    def resume(self, job_id: int) -> bool:
        """SIGCONT one job."""

    def kill(self, job_id: int) -> bool:
        """Terminate one job (a queued one is taken off the queue)."""

    def cancel(self, job_id: int) -> bool:
        """Take a queued job off the queue; refused (False) once it has started."""

    def requeue(self, job_id: int) -> bool:
        """Run a failed or killed job again."""

    def pause_all(self) -> None:
        """No launches, every job stopped."""

    def resume_all(self) -> None:
        """Undo pause_all."""

    def set_limit(self, limit: int) -> None:
        """The operator's process limit."""

    def shutdown(self,
                 *,
                 kill: bool = True,
                 interrupted: bool = True,
                 signal: int | None = None) -> None:
        """Stop launching; with kill, end every job; `signal` sets the exit code."""

    def kill_all_now(self) -> None:
        """No more grace: SIGKILL to every job's group (a shutdown's kill already under way)."""


@dataclass(frozen=True, slots=True)
class Launch:
    """What starting a run told the operator: a journal warning, what resuming contributed."""

    notice: str | None = None
    resume: str | None = None
    #: Where the journal and control socket went when the output folder is on a network
    #: filesystem (core/statehome.py), else None.
    where: str | None = None


@dataclass(frozen=True, slots=True)
class Spawned:
    """A run started in a process of its own (new session, no terminal): its pid, the control
    socket it serves, and what starting it told the operator."""

    pid: int
    socket: Path
    launch: Launch


@dataclass
class LoadProgress:
    """How far a starting run is with reading its input list: lines read, of all. Written by
    the thread reading the run's reports, read by a screen's timer (two ints, no lock needed:
    a late or torn pair only shows a frame of an older figure)."""
    done: int = 0
    total: int = 0

    def update(self, done: int, total: int) -> None:
        """The run has read `done` of `total` lines."""
        self.done, self.total = done, total


@dataclass(frozen=True)
class Starting:
    """A run already starting in a process of its own (the TUI with --yes starts it before
    drawing anything): `launch` completes when it can be attached to (or raises OrchError)."""
    launch: Awaitable[Launch]
    progress: LoadProgress


#: Starts a plan's run in a process of its own and returns once its control socket answers;
#: raises OrchError (with the run's own message and exit code) when the run refuses to start.
Spawner = Callable[["Plan"], Awaitable[Spawned]]


class RunControl(Controller, Protocol):
    """A run an observer can start, attach to and detach from, and command."""

    @property
    def clock(self) -> Callable[[], float]:
        """The clock event times are on (elapsed times and the ETA are measured with it)."""

    @property
    def started(self) -> bool:
        """True once a run was started (attach only then)."""

    @property
    def detachable(self) -> bool:
        """True when the run lives in another process: leaving the screen (`d`) leaves it
        running; False for a run in this process, which ends with it."""

    async def launch(self, plan: Plan) -> Launch:
        """Start the run (in this process, or one of its own); raises OrchError (another
        orchestrator holds the folder, the journal is unusable, ...) with nothing started."""

    def config_checked(self, path: Path, error: OrchError | None) -> None:
        """The config at `path` was validated: with an error, a run never started from the
        command line's config exits with that error's code."""

    def attach(self, listener: Listener) -> RunSnapshot:
        """The run's state now; then every event to `listener`, until detached."""

    def detach(self, listener: Listener) -> None:
        """No more events to `listener` (idempotent)."""


@runtime_checkable
class Connection(Protocol):  # pylint: disable=too-few-public-methods  # one hook: what broke
    """A run watched over a connection that can break (a run in another process): what the
    observer is told when it does."""

    def follow(self, *, lost: Callable[[str], None], resynced: Callable[[RunSnapshot],
                                                                        None]) -> None:
        """`lost(why)`: the connection broke and could not be made again (the run died, or
        dropped this client and is gone); `resynced(snapshot)`: it broke and was made again:
        the events in between are lost, so the observer starts over from `snapshot` (its
        listener keeps getting events after it)."""


#: Connects to the run serving the control socket at a path (a RemoteRun, already attached
#: to nothing): how a screen that found a live run opens it.
Connector = Callable[["Path"], Awaitable["RunControl"]]
