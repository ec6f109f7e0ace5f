"""The full-screen app: config → calibration → run → finished, all observing one core.

The orchestrator runs as a task on the app's own event loop. A bus listener folds every event
into the `RunModel` (cheap, synchronous) and forwards only the rare, discrete ones as Textual
messages; screens redraw from the model on timers. Commands go straight to the controller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from textual.app import App
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

from orch_tui.core import events as ev
from orch_tui.core.errors import OrchError
from orch_tui.core.events import EventBus
from orch_tui.core.orchestrator import Orchestrator
from orch_tui.core.plan import Plan, load_plan
from orch_tui.core.session import RunOptions, RunSession
from orch_tui.tui.driver import HangupSafeDriver
from orch_tui.tui.model import RunModel
from orch_tui.tui.screens.config import ConfigScreen

#: Events a screen must react to at once; samples and state changes are read from the model.
PUSHED = (ev.CalibrationStarted, ev.CalibrationFinished, ev.RunFinished, ev.Notice,
          ev.ResourcePressure, ev.LimitChanged)


class Controller(Protocol):
    """What the screens may ask of the core (the Orchestrator implements it)."""

    limit: int
    paused_all: bool

    def pause(self, job_id: int) -> bool:
        """SIGSTOP one job."""

    def resume(self, job_id: int) -> bool:
        """SIGCONT one job."""

    def kill(self, job_id: int) -> bool:
        """Terminate one job."""

    def requeue(self, job_id: int) -> bool:
        """Run a failed or killed job again."""

    def pause_all(self) -> None:
        """No launches, every job stopped."""

    def resume_all(self) -> None:
        """Undo pause_all."""

    def set_limit(self, limit: int) -> None:
        """The operator's process limit."""

    def shutdown(self, *, kill: bool = True, interrupted: bool = True) -> None:
        """Stop launching; with kill, end every job."""


class CoreEvent(Message):
    """A discrete core event delivered to the app (samples never travel this way)."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


@dataclass
class Session:
    """A model and controller handed in directly (snapshot tests, replays): no config, no core."""

    model: RunModel
    controller: Controller
    screen: str = "run"


class OrchApp(App[int]):
    """orch-tui's Textual application."""

    CSS_PATH = "app.tcss"
    TITLE = "orch-tui"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self,
                 config_path: Path | None = None,
                 *,
                 start_dir: Path | None = None,
                 yes: bool = False,
                 options: RunOptions | None = None,
                 max_procs: int | None = None,
                 clock: Callable[[], float] | None = None,
                 session: Session | None = None) -> None:
        super().__init__()
        self.config_path = config_path
        self.start_dir = start_dir or Path.cwd()
        self.yes = yes
        self.options = options or RunOptions(max_procs=max_procs)
        self.run_session: RunSession | None = None
        self.clock = clock or time.monotonic
        self.session = session
        self.model: RunModel | None = session.model if session else None
        self.controller: Controller | None = session.controller if session else None
        self.orchestrator: Orchestrator | None = None
        self.bus: EventBus | None = None
        self.plan: Plan | None = None
        self.run_task: asyncio.Task[int] | None = None
        self.quit_when_finished = False

    def get_driver_class(self) -> type[Driver]:
        """On Linux terminals, the driver that survives a hangup (see tui/driver.py)."""
        driver = super().get_driver_class()
        if issubclass(driver, LinuxDriver) and driver is LinuxDriver:
            return HangupSafeDriver
        return driver

    def on_mount(self) -> None:
        """Open the first screen: the session's, the run (with --yes) or the config screen."""
        if self.session is not None:
            self._show(self.session.screen)
            return
        if self.yes and self.config_path is not None:
            try:
                plan = load_plan(self.config_path)
            except OrchError:
                pass  # show the error on the config screen
            else:
                self.start_run(plan)
                return
        self.push_screen(ConfigScreen(self.config_path, start_dir=self.start_dir))

    def on_config_screen_start(self, message: Message) -> None:
        """The operator pressed enter on a valid config."""
        plan = getattr(message, "plan")
        self.start_run(plan)

    # --- the run

    def start_run(self, plan: Plan) -> None:
        """Create the core on this loop and show calibration (or the run with --jobs)."""
        try:
            session = RunSession.open(plan, self.options)
        except OrchError as exc:
            self._cannot_start(exc)
            return
        try:
            orchestrator = session.start()
        except OrchError as exc:
            session.close()  # the journal went away between open and start (locked, ...)
            self._cannot_start(exc)
            return
        if session.journal.notice:
            self.notify(session.journal.notice, severity="warning", timeout=15)
        self.run_session, self.plan = session, plan
        self.model = RunModel.from_plan(plan, clock=self.clock)
        self.model.joblog_path = self.options.joblog
        self.bus = session.bus
        self.bus.add_listener(self._fold_event)
        self.orchestrator = orchestrator
        self.controller = self.orchestrator
        self.run_task = asyncio.create_task(session.run(), name="orch-tui run")
        # Journal flushed and lock released as soon as the run ends, whatever the UI does.
        self.run_task.add_done_callback(lambda _task: session.close())
        resume = session.describe_resume()
        if resume:
            self.notify(resume, timeout=8)
        calibrate = self.options.max_procs is None and not session.seeded
        self._show("calibration" if calibrate else "run")

    def _cannot_start(self, exc: OrchError) -> None:
        """Another orchestrator holds the folder, or the state folder or journal is unusable:
        say so and stay on (or open) the config screen."""
        self.notify(str(exc), title="cannot start", severity="error", timeout=15)
        if len(self.screen_stack) <= 1:
            self.push_screen(ConfigScreen(self.config_path, start_dir=self.start_dir))

    def _fold_event(self, event: ev.Event) -> None:
        """Bus listener: every event into the model, the rare ones on to the screens."""
        assert self.model is not None
        self.model.apply(event)
        if isinstance(event, PUSHED):
            self.post_message(CoreEvent(event))

    def on_core_event(self, message: CoreEvent) -> None:
        """Route a discrete event: finish the run, or let the current screen react."""
        event = message.event
        if isinstance(event, ev.RunFinished):
            if self.quit_when_finished:
                self.exit(event.exit_code, return_code=event.exit_code)
                return
            self._show("finished")
            return
        handler = getattr(self.screen, "on_core", None)
        if handler is not None:
            handler(event)

    def _show(self, name: str) -> None:
        """Switch to one of the run's screens by name."""
        # pylint: disable=import-outside-toplevel
        from orch_tui.tui.screens.calibration import CalibrationScreen
        from orch_tui.tui.screens.finished import FinishedScreen
        from orch_tui.tui.screens.run import RunScreen
        assert self.model is not None and self.controller is not None
        screens = {
            "calibration": CalibrationScreen,
            "run": RunScreen,
            "finished": FinishedScreen,
        }
        screen = screens[name](self.model, self.controller)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(screen)

    def show_run(self) -> None:
        """Calibration is over (or skipped): show the job table."""
        self._show("run")

    def request_quit(self, how: str | None) -> None:
        """'wait': no more launches, exit when running jobs end; 'kill': end them now; None:
        the operator changed their mind."""
        if how is None:
            return
        if self.controller is None or (self.model is not None and self.model.finished):
            code = self.model.finished.exit_code if self.model and self.model.finished else 0
            self.exit(code, return_code=code)
            return
        self.quit_when_finished = True
        self.controller.shutdown(kill=how == "kill", interrupted=how == "kill")
