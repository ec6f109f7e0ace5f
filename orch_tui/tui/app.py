"""The full-screen app: config → calibration → run → finished, all observing one core.

The app owns no run: a host (core/host.py, created by the command line) does, and the app is one
of its listeners. Attaching gives a snapshot, folded into a fresh `RunModel`; then every event is
folded in (cheap, synchronous) and only the rare, discrete ones are forwarded as Textual
messages; screens redraw from the model on timers. Commands go to the host (`Controller`).

The app's chrome: Textual's themes through the command palette (ctrl+p), the choice kept in
the user's settings (tui/settings.py); NO_COLOR greys every theme (Textual's filter); the end of
the run rings the bell and, on terminals known to show one, sends a desktop notification
(tui/notify.py), once, unless `quiet`.

The run may live in another process (a `RemoteRun`: `controller.detachable`): then `d` leaves
it running, the quit dialog offers that first, and a broken connection either starts the model
over from a new snapshot or ends the app with why (`lost`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from textual import events
from textual._time import get_time
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message
from textual.screen import ModalScreen, Screen

from orch_tui.core import events as ev
from orch_tui.core.controller import Connection, Connector, Launch, RunControl, Starting
from orch_tui.core.errors import OrchError
from orch_tui.core.plan import Plan, load_plan
from orch_tui.core.snapshot import CalibrationStatus, RunSnapshot
from orch_tui.tui.driver import HangupSafeDriver
from orch_tui.tui.model import RunModel
from orch_tui.tui.notify import notification
from orch_tui.tui.screens.config import ConfigScreen
from orch_tui.tui.screens.starting import StartingScreen
from orch_tui.tui.settings import Settings, SettingsError, SettingsFile

#: Events a screen must react to at once; samples and state changes are read from the model.
PUSHED = (ev.CalibrationStarted, ev.CalibrationFinished, ev.RunFinished, ev.Notice,
          ev.ResourcePressure, ev.LimitChanged, ev.PauseAllChanged)

#: The app's exit code when the connection to a run in another process is lost for good.
EXIT_LOST = 1

#: Seconds after the calibration countdown opened the run screen by itself during which keys
#: are still taken as meant for the calibration result (Enter as the count reaches 0).
KEY_GRACE = 0.4

#: Calibration states that open on the calibration screen.
CALIBRATING = (CalibrationStatus.PENDING, CalibrationStatus.MEASURING)


class CoreEvent(Message):
    """A discrete core event delivered to the app (samples never travel this way)."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


# pylint: disable-next=too-many-instance-attributes  # the run's handle, model and quit state
class OrchApp(App[int]):
    """orch-tui's Textual application: a listener of the run its `controller` (the host) owns."""

    CSS_PATH = "app.tcss"
    TITLE = "orch-tui"
    # ctrl+p on every screen (Textual binds it with priority; no orch-tui key uses it).
    ENABLE_COMMAND_PALETTE = True
    # One meaning on every screen of a run, as the quit dialog says: the first ctrl+c asks how
    # to quit, the second kills and quits (priority: before a screen's copy binding).
    BINDINGS = [Binding("ctrl+c", "ctrl_c", "Quit", show=False, priority=True)]

    # pylint: disable-next=too-many-arguments  # the run, the config, each keyword option
    def __init__(self,
                 controller: RunControl,
                 config_path: Path | None = None,
                 *,
                 start_dir: Path | None = None,
                 yes: bool = False,
                 connector: Connector | None = None,
                 starting: Starting | None = None,
                 settings: SettingsFile | None = None,
                 quiet: bool = False) -> None:
        """With a host already running (an attached TUI, a test's fake), the app opens on the
        run; otherwise on the config screen, and Enter asks the host to start. `connector`
        opens a run another process holds (the config screen's "Enter attaches");
        `starting`, a run already being started (--yes), is shown loading, then attached.
        `settings`: where the theme is kept (None: nowhere, as in tests); `quiet`: no bell
        nor notification at the end."""
        super().__init__()
        self.settings_file = settings
        self.settings = Settings()
        self._settings_warning: str | None = None
        self.quiet = quiet
        self._alerted = False
        self._load_settings()
        # One handle on the run, for the app and its screens alike (no second one beside it).
        self.controller = controller
        self.config_path = config_path
        self.start_dir = start_dir or Path.cwd()
        self.yes = yes
        self.model: RunModel | None = None
        self.quit_when_finished = False
        self.connector = connector
        self.starting = starting
        #: The plan of the run started or attached to from the config screen (the command
        #: line prints its resume command and where to attach again).
        self.plan: Plan | None = None
        #: Set when the app ended by `d` (the run goes on) or by a lost connection (why).
        self.detached = False
        self.lost: str | None = None
        self._attached = False
        self._keys_from = 0.0  # keys typed before this (monotonic) time were for another screen

    def get_driver_class(self) -> type[Driver]:
        """On Linux terminals, the driver that survives a hangup (see tui/driver.py)."""
        driver = super().get_driver_class()
        if issubclass(driver, LinuxDriver) and driver is LinuxDriver:
            return HangupSafeDriver
        return driver

    # --- settings: the theme

    def _load_settings(self) -> None:
        """The saved theme, if it is one Textual knows; else the default and, on mount, one
        warning (a settings file never stops a run)."""
        if self.settings_file is None:
            return
        try:
            self.settings = self.settings_file.load()
        except SettingsError as exc:
            self._settings_warning = f"{exc}; using the default theme"
            return
        theme = self.settings.theme
        if theme is None:
            return
        if theme in self.available_themes:
            self.theme = theme
        else:
            self._settings_warning = (f"unknown theme {theme!r} in {self.settings_file.path}; "
                                      "using the default theme")

    def watch_theme(self, theme: str) -> None:
        """A theme chosen in the palette is saved for the next start (the one loaded at start
        is not written again)."""
        if self.settings_file is None or theme == (self.settings.theme or ""):
            return
        self.settings = Settings(theme=theme)
        try:
            self.settings_file.save(self.settings)
        except SettingsError as exc:
            self.notify(str(exc),
                        title="theme not saved",
                        severity="warning",
                        timeout=8,
                        markup=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's palette commands ("Theme" among them), but "Quit" asks as q does: the
        plain exit Textual offers would leave a run without the choice of how."""
        for command in super().get_system_commands(screen):
            if command.title == "Quit":
                yield SystemCommand("Quit", "Leave orch-tui (asks what to do with the run)",
                                    self._palette_quit)
            else:
                yield command

    def _palette_quit(self) -> None:
        if self.controller.started:
            self.ask_quit()
        else:
            self.exit()

    async def on_mount(self) -> None:
        """Open the first screen: the running host's, the run (with --yes) or the config."""
        if self._settings_warning is not None:
            self.notify(self._settings_warning,
                        title="settings",
                        severity="warning",
                        timeout=8,
                        markup=False)
        if self.controller.started:
            self._listen()
            return
        if self.starting is not None:
            self.push_screen(StartingScreen(self.starting.progress, self.config_path))
            self.run_worker(self._started(self.starting), exit_on_error=False)
            return
        if self.yes and self.config_path is not None:
            try:
                plan = load_plan(self.config_path)
            except OrchError as exc:
                self.controller.config_checked(self.config_path, exc)  # shown on the config screen
            else:
                await self.start_run(plan)
                return
        self.push_screen(ConfigScreen(self.config_path, start_dir=self.start_dir))

    async def on_event(self, event: events.Event) -> None:
        """A key typed for a screen that has since been replaced (Enter as the calibration
        countdown ends) is dropped: it never acts on the screen that took its place."""
        if isinstance(event, events.Key) and event.time < self._keys_from:
            return
        await super().on_event(event)

    async def on_config_screen_start(self, message: ConfigScreen.Start) -> None:
        """The operator pressed enter on a valid config."""
        await self.start_run(message.plan)

    async def on_config_screen_attach(self, message: ConfigScreen.Attach) -> None:
        """The config's folder is held by a live run: open that run instead of starting
        (without a connector, starting says why it cannot, as before)."""
        if self.connector is None:
            await self.start_run(message.plan)
            return
        try:
            self.controller = await self.connector(message.socket)
            self.plan = message.plan
        except OrchError as exc:
            self.notify(str(exc), title="cannot attach", severity="error", timeout=15)
            return
        self._listen()

    def on_config_screen_checked(self, message: ConfigScreen.Checked) -> None:
        """The host decides the exit code of a run that never started."""
        self.controller.config_checked(message.path, message.error)

    # --- the run

    async def start_run(self, plan: Plan) -> None:
        """Ask the host to start the run, then listen to it."""
        try:
            launch = await self.controller.launch(plan)
        except OrchError as exc:
            self._cannot_start(exc)
            return
        self.plan = plan
        self._launched(launch)

    async def _started(self, starting: Starting) -> None:
        """The run started before the app: attach once it answers; if it refused, the config
        screen says why (it checks the config again: a config error shows in place)."""
        try:
            launch = await starting.launch
        except OrchError as exc:
            self.starting = None
            while len(self.screen_stack) > 1:
                self.pop_screen()
            self._cannot_start(exc)
            return
        self._launched(launch)

    def _launched(self, launch: Launch) -> None:
        """Say what starting said, then follow the run."""
        if launch.notice:
            self.notify(launch.notice, severity="warning", timeout=15)
        if launch.where:
            self.notify(launch.where, timeout=15)
        if launch.resume:
            self.notify(launch.resume, timeout=8)
        self._listen()

    def _listen(self) -> None:
        """The run's state into a fresh model, then events; open the screen that fits it."""
        if isinstance(self.controller, Connection):
            self.controller.follow(lost=self._connection_lost, resynced=self._resynced)
        snapshot = self.controller.attach(self._fold_event)
        self._attached = True
        self._open_on(snapshot)

    def _open_on(self, snapshot: RunSnapshot) -> None:
        self.model = RunModel.from_snapshot(snapshot, clock=self.controller.clock)
        self._open_screen(snapshot)

    def _open_screen(self, snapshot: RunSnapshot) -> None:
        if snapshot.finished is not None:
            self._show("finished")
        else:
            self._show("calibration" if snapshot.calibration in CALIBRATING else "run")

    def detach(self) -> None:
        """Stop listening to the run (the terminal is gone); the run goes on."""
        if self._attached:
            self.controller.detach(self._fold_event)
            self._attached = False

    def hang_up(self) -> None:
        """The terminal went away (SIGHUP; SIGTERM or SIGINT to this process): leave a run that
        goes on, as `d` does; end with the code of a run that is over, as `q` does; nothing
        started: just end."""
        if self._over():
            self._leave_ended()
        elif self.controller.started:
            self.action_detach_run()
        else:
            self.exit()

    def _over(self) -> bool:
        """The run finished: nothing goes on that a detach could leave running."""
        return self.model is not None and self.model.finished is not None

    def _leave_ended(self) -> None:
        """Exit with the code of the run that is over (0 when none started), as `q` does on
        the finished screen."""
        finished = self.model.finished if self.model is not None else None
        code = finished.exit_code if finished is not None else 0
        self.exit(code, return_code=code)

    def action_detach_run(self) -> None:
        """`d`: leave a run in another process running and close the app (exit code 0)."""
        if not self.controller.detachable or self._over():
            return
        self.detached = True
        self.detach()
        self.exit(0, return_code=0)

    def _connection_lost(self, why: str) -> None:
        """The run's process is gone (or will not take this client again): say so, exit.
        Called from the connection's task: the app acts on its own turn (call_later)."""
        self.lost = f"connection to the run lost: {why}"
        self.detach()
        self.call_later(self.exit, EXIT_LOST, return_code=EXIT_LOST)

    def _resynced(self, snapshot: RunSnapshot) -> None:
        """The connection was made again: what happened meanwhile is only in the new snapshot,
        so the model starts over from it now (before the next event is folded in), and the
        screens on the app's next turn (they are built in its context)."""
        quitting = self.model.quitting if self.model is not None else None
        self.model = RunModel.from_snapshot(snapshot, clock=self.controller.clock)
        self.model.quitting = quitting
        self.call_later(self._open_screen, snapshot)
        self.call_later(self.notify, "reconnected to the run", timeout=4)

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
            self._alert(event)
            self._show("finished")
            return
        handler = getattr(self.screen, "on_core", None)
        if handler is not None:
            handler(event)

    def _alert(self, finished: ev.RunFinished) -> None:
        """The run ended while watched: the bell, and a desktop notification where the terminal
        is known to show one. Once per app (a resync's snapshot or a re-attach of a finished
        run never rings: the end was already told); never with `quiet`, never in tests'
        headless runs. Written before the finished screen, so a terminal has it first."""
        if self.quiet or self._alerted:
            return
        self._alerted = True
        self.bell()
        text = notification(finished, os.environ)
        if text:
            self.write_escape(text)

    def write_escape(self, text: str) -> None:
        """Write an escape sequence to the terminal as `bell()` does (Textual has no public
        call for a raw sequence; its own bell and clipboard write through the driver)."""
        driver = self._driver  # pylint: disable=protected-access  # see the docstring
        if not self.is_headless and driver is not None:
            driver.write(text)

    def _show(self, name: str, *, grace: float = 0.0) -> None:
        """Switch to one of the run's screens by name. Keys typed before the switch, still
        queued, were meant for the screen that goes, and so were those typed within `grace`
        seconds after a switch nobody asked for: they are dropped (see on_event)."""
        self._keys_from = get_time() + grace
        # pylint: disable=import-outside-toplevel
        from orch_tui.tui.screens.calibration import CalibrationScreen
        from orch_tui.tui.screens.finished import FinishedScreen
        from orch_tui.tui.screens.run import DetachableRunScreen, RunScreen
        assert self.model is not None
        screens = {
            "calibration": CalibrationScreen,
            "run": DetachableRunScreen if self.controller.detachable else RunScreen,
            "finished": FinishedScreen,
        }
        screen = screens[name](self.model, self.controller)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(screen)

    def show_run(self, *, automatic: bool = False) -> None:
        """Calibration is over (or skipped): show the job table; `automatic` when the
        countdown, not the operator, moved on."""
        self._show("run", grace=KEY_GRACE if automatic else 0.0)

    def request_quit(self, how: str | None) -> None:
        """'wait': no more launches, exit when running jobs end; 'kill': end them now; None:
        the operator changed their mind. Until the run is over the run screen shows what the
        exit waits for (`stopping N jobs...`), whatever screen the choice was made on."""
        if how is None:
            return
        if how == "detach" and not self._over():  # over: leave as q does, with its code
            self.action_detach_run()
            return
        if not self.controller.started or self._over():
            self._leave_ended()
            return
        self.quit_when_finished = True
        if self.model is not None and self.model.quitting != "kill":
            self.model.quitting = how
        self.controller.shutdown(kill=how == "kill", interrupted=how == "kill")
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.run import RunScreen
        under = [screen for screen in self.screen_stack if not isinstance(screen, ModalScreen)]
        if how == "kill" and not isinstance(under[-1], RunScreen):
            self._show("run")  # where the rows turn `stopping` and the wait is said

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """ctrl+c is the run's quit key once a run exists; before, it keeps Textual's meaning
        (copy in an input of the config screen)."""
        del parameters
        if action == "detach_run":  # `d`, in the footer only when the run outlives the app
            return self.controller.detachable and self.controller.started and not self._over()
        return action != "ctrl_c" or self.controller.started

    def action_ctrl_c(self) -> None:
        """First ctrl+c: the quit dialog; in the dialog: kill running jobs and quit, as the
        dialog says; while they stop (SIGTERM ignored, a long grace): SIGKILL now, as a second
        SIGINT does headless; once the run is over: quit."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.modals import QuitModal
        if isinstance(self.screen, QuitModal):
            self.screen.dismiss("kill")
        elif self.model is None and self.starting is not None:
            self.exit()  # still starting: nothing to ask, the run goes on in its own process
        elif self.model is not None and self.model.finished is not None:
            self.request_quit("kill")
        elif self.model is not None and self.model.quitting == "kill":
            self.controller.kill_all_now()
            self.notify(f"SIGKILL sent to {self.model.counts().active} jobs", timeout=3)
        else:
            self.ask_quit()

    def ask_quit(self) -> None:
        """The quit dialog: detach first when the run outlives the app. Once the run is over
        (the palette's Quit on its finished or detail screen) nothing is left to choose."""
        if self._over():
            self._leave_ended()
            return
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.modals import QuitModal
        self.push_screen(QuitModal(detachable=self.controller.detachable), self.request_quit)
