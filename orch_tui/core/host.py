"""The owner of a run: the command line creates it, observers attach to it.

`RunHost` opens the session, runs the orchestrator as a task on the loop, owns the event bus and
knows the exit code. The TUI and the headless reporter are listeners: `attach` gives one the
run's current state (a `RunSnapshot`), then events; `detach` stops them. A hangup detaches the
TUI and attaches the headless reporter; the run never notices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core.control.server import ControlServer
from orch_tui.core.controller import Launch, Listener
from orch_tui.core.errors import OrchError
from orch_tui.core.events import EventBus, JobState
from orch_tui.core.orchestrator import Orchestrator
from orch_tui.core.plan import Plan
from orch_tui.core.session import RunOptions, RunSession
from orch_tui.core.snapshot import RunRecord, RunSnapshot
from orch_tui.core.statedir import StateDir


# The run's owner: the Controller's commands plus attach/detach.
# pylint: disable-next=too-many-instance-attributes,too-many-public-methods
class RunHost:
    """One run, owned here; implements `RunControl` (core/controller.py)."""

    def __init__(self,
                 options: RunOptions,
                 *,
                 config: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`config` is the command line's config path: if it is invalid and no run starts,
        the exit code is the error's (2)."""
        self.options = options
        self.bus = EventBus()
        self._clock = clock
        self._config = Path(config).absolute() if config is not None else None
        self._config_error: OrchError | None = None
        self.session: RunSession | None = None
        self._orchestrator: Orchestrator | None = None
        self._record: RunRecord | None = None
        self._task: asyncio.Task[int] | None = None
        self.control: ControlServer | None = None

    # --- starting and ending

    @property
    def clock(self) -> Callable[[], float]:
        """Event times are on the loop's monotonic clock; so is this."""
        return self._clock

    @property
    def started(self) -> bool:
        """True once `start` succeeded."""
        return self._task is not None

    @property
    def detachable(self) -> bool:
        """The run is in this process: it cannot outlive it."""
        return False

    @property
    def state(self) -> StateDir | None:
        """The run's private state folder (for run.log), None before start."""
        return self.session.state if self.session is not None else None

    def start(self, plan: Plan) -> Launch:
        """Open the session and start the orchestrator as a task on the running loop."""
        if self._task is not None:
            raise RuntimeError("a run host runs one plan")
        session = RunSession.open(plan, self.options, self.bus)
        calibrate = self.options.max_procs is None
        # Before the observers, after the journal: the record is what a late listener sees.
        record = RunRecord(plan, joblog=self.options.joblog, paused_all=lambda: self.paused_all)
        self.bus.add_listener(record)
        try:
            orchestrator = session.start()
        except BaseException:
            self.bus.remove_listener(record)
            session.close()  # the journal went away between open and start (locked, ...)
            raise
        record.calibrate(calibrate and not session.seeded)
        self.session, self._orchestrator, self._record = session, orchestrator, record
        self._task = asyncio.create_task(session.run(), name="orch-tui run")
        # Journal flushed and lock released as soon as the run ends, whatever observers do.
        self._task.add_done_callback(lambda _task: session.close())
        self._serve_control(session.state)
        return Launch(notice=session.journal.notice,
                      resume=session.describe_resume(),
                      where=session.where)

    async def launch(self, plan: Plan) -> Launch:
        """`start`, for the TUI (which starts runs from its async handlers)."""
        return self.start(plan)

    def config_checked(self, path: Path, error: OrchError | None) -> None:
        """Remember whether the command line's config is valid (see __init__)."""
        if self._config is not None and Path(path).absolute() == self._config:
            self._config_error = error

    async def wait(self) -> int:
        """The run's exit code once it ended; without a run, 0 or the config error's code."""
        if self._task is None:
            return self._config_error.exit_code if self._config_error is not None else 0
        code = await self._task
        if self.control is not None:
            await self.control.wait_closed()  # attached clients get the run's last events
        return code

    @property
    def done(self) -> bool:
        """True when there is no run going on (never started, or over)."""
        return self._task is None or self._task.done()

    def close(self) -> None:
        """Flush and release everything the session holds (safe to call twice)."""
        if self.session is not None:
            self.session.close()

    def errors(self) -> list[str]:
        """Journal or joblog write failures, to tell the operator after the run."""
        return self.session.errors() if self.session is not None else []

    # --- the control socket: clients in other processes (attach, status, shell commands)

    def _serve_control(self, state: StateDir) -> None:
        """Serve the run on `<output_dir>/.orch-tui/control.sock` until it ends; a socket that
        cannot be made is a warning, never a reason to stop the run."""
        server = ControlServer(self, state)
        try:
            server.bind()
        except (OrchError, OSError) as exc:  # OSError: out of descriptors (ulimit -n)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.bus.publish(
                ev.Notice(time=self._clock(),
                          level=ev.NoticeLevel.WARNING,
                          message=f"no control socket (attach and shell commands will not "
                          f"work): {reason}"))
            return
        self.control = server
        serving = asyncio.create_task(server.start(), name="orch-tui control socket")
        assert self._task is not None

        def over(_task: asyncio.Task[int]) -> None:
            serving.cancel()
            server.close()

        self._task.add_done_callback(over)

    # --- observers

    def attach(self, listener: Listener) -> RunSnapshot:
        """The run's state now, then every event to `listener` (synchronously, on the loop)."""
        assert self._record is not None, "attach after start"
        snapshot = self._record.snapshot()
        self.bus.add_listener(listener)
        return snapshot

    def detach(self, listener: Listener) -> None:
        """No more events to `listener`."""
        self.bus.remove_listener(listener)

    # --- commands (Controller)

    def _core(self) -> Orchestrator:
        assert self._orchestrator is not None, "no run started"
        return self._orchestrator

    @property
    def limit(self) -> int:
        """The process limit in force."""
        return self._core().limit

    @property
    def paused_all(self) -> bool:
        """True after pause_all until resume_all."""
        return self._orchestrator is not None and self._orchestrator.paused_all

    def active_count(self) -> int:
        """How many jobs hold a process."""
        return self._core().active_count()

    def pause(self, job_id: int) -> bool:
        """SIGSTOP one job."""
        return self._core().pause(job_id)

    def resume(self, job_id: int) -> bool:
        """SIGCONT one job."""
        return self._core().resume(job_id)

    def kill(self, job_id: int) -> bool:
        """Terminate one job (cancel a queued one) while the run goes on."""
        return not self.done and self._core().kill(job_id)

    def job_state(self, job_id: int) -> JobState | None:
        """The job's state as the scheduler has it now (a client's view can lag: control)."""
        job = self._orchestrator.jobs.get(job_id) if self._orchestrator is not None else None
        return job.state if job is not None else None

    def run_stopping(self) -> bool:
        """True once a stop or drain began (a limit then changes nothing)."""
        return self._orchestrator is not None and self._orchestrator.stopping

    def cancel(self, job_id: int) -> bool:
        """Take a queued job off the queue; never touches one that has started."""
        return not self.done and self._core().cancel(job_id)

    def requeue(self, job_id: int) -> bool:
        """Run a failed, killed or cancelled job again; refused once the run is over, since
        nothing would run it (it would sit `queued` forever)."""
        return not self.done and self._core().requeue(job_id)

    def pause_all(self) -> None:
        """No launches, every job stopped."""
        self._core().pause_all()

    def resume_all(self) -> None:
        """Undo pause_all."""
        self._core().resume_all()

    def set_limit(self, limit: int) -> None:
        """The operator's process limit."""
        self._core().set_limit(limit)

    def shutdown(self,
                 *,
                 kill: bool = True,
                 interrupted: bool = True,
                 signal: int | None = None) -> None:
        """Stop launching; with kill, end every job (no-op before a run started); `signal`
        (SIGTERM, SIGINT) makes the exit code 128 + it."""
        if self._orchestrator is not None:
            self._orchestrator.shutdown(kill=kill, interrupted=interrupted, signal=signal)

    def kill_all_now(self) -> None:
        """A second Ctrl-C: no more grace, every job's group gets SIGKILL."""
        if self._orchestrator is not None:
            self._orchestrator.runner.kill_all()
