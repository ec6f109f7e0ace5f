"""The run: overall progress, resource gauges and the job table, with per-job control keys."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.reactive import reactive
from textual.widgets import Footer

from orch_tui.core import events as ev
from orch_tui.core.controller import Controller
from orch_tui.core.eta import Eta
from orch_tui.core.events import JobState
from orch_tui.core.tally import Counts
from orch_tui.tui.model import RunModel
from orch_tui.tui.screens.modals import DETACH
from orch_tui.tui.widgets.charts import ResourceChart
from orch_tui.tui.widgets.gauges import NoticeLine, ProgressLine, ResourceGauge, run_figures
from orch_tui.tui.widgets.header import HeaderLine, panel_title
from orch_tui.tui.widgets.job_table import JobTable

#: How often samples are applied to the screen (coalesced, inside batch_update).
REFRESH = 0.5
#: Below this many rows the resources panel is one line of gauges (the `-compact` class), so
#: that at 80x24 the table keeps its ten rows; from here on it is history charts.
CHARTS_MIN_HEIGHT = 28


def quit_notice(model: RunModel, paused_all: bool) -> str:
    """What a quit waits for: the jobs it stops, or those it lets finish (which paused ones
    never do until resumed)."""
    active = model.counts().active
    jobs = f"{active} job{'' if active == 1 else 's'}"
    if model.quitting == "kill":
        return f"stopping {jobs}... (quitting when they are gone; ctrl+c: SIGKILL now)"
    held = "; everything is paused: P resumes" if paused_all else ""
    return f"waiting for {jobs} to finish, then quitting (no more launches){held}"


class RunScreen(Screen[None]):
    """The screen an operator lives in while the jobs run."""

    BINDINGS = [
        # Short labels and a compact footer: every key must fit in 80 columns.
        Binding("space", "toggle_pause", "Pause", key_display="␣"),
        Binding("k", "kill", "Kill"),
        Binding("r", "requeue", "Requeue"),
        Binding("P", "toggle_pause_all", "All"),
        Binding("plus", "limit(1)", "+1"),
        Binding("minus", "limit(-1)", "-1"),
        Binding("enter", "detail", "Detail"),
        Binding("f", "filter", "Filter"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_run", "Quit"),  # ctrl+c too: the app binds it on every screen
    ]

    # The run-level figures, bound to the widgets that show them (data_bind in compose): set
    # from the model with each refresh, they repaint those widgets only when they change.
    counts: reactive[Counts] = reactive(Counts())
    eta: reactive[Eta] = reactive(Eta())
    limit: reactive[int] = reactive(0)
    limit_why: reactive[tuple[str, str]] = reactive(("", ""))
    pressure: reactive[tuple[ev.ResourcePressure, ...]] = reactive(())
    paused_all: reactive[bool] = reactive(False)
    notice: reactive[str] = reactive("")

    def __init__(self, model: RunModel, controller: Controller) -> None:
        super().__init__()
        self.model = model
        self.controller = controller

    def compose(self) -> ComposeResult:
        # Three bordered panels (app.tcss): the run, the machine's history, the jobs.
        with Vertical(id="run-header", classes="panel"):
            yield HeaderLine(self.model, id="header-line")
            yield ProgressLine(id="progress").data_bind(RunScreen.counts, RunScreen.eta,
                                                        RunScreen.limit, RunScreen.limit_why)
        with Horizontal(id="gauges", classes="panel"):
            yield ResourceChart(self.model, "cpu", id="gauge-cpu")
            yield ResourceChart(self.model, "memory", id="gauge-memory")
            yield ResourceChart(self.model, "disk", id="gauge-disk")
        yield JobTable(self.model, id="jobs", classes="panel")
        yield NoticeLine(id="notice").data_bind(RunScreen.pressure, RunScreen.paused_all,
                                                RunScreen.notice)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        """Focus the table (so single-letter keys reach the screen), title the panels and start
        the redraw timer."""
        header = self.query_one("#run-header")
        # Text, never a str: Textual reads a str title as markup, and a folder name is not.
        title, subtitle = panel_title(*self._where())
        header.border_title, header.border_subtitle = Text(title), Text(subtitle)
        resources = self.query_one("#gauges")
        resources.border_title = "resources"
        self._fit(self.size.height)
        self.query_one(JobTable).focus()
        self.set_interval(REFRESH, self.refresh_view)
        self.refresh_view()

    def on_resize(self, event: events.Resize) -> None:
        """Charts when there is room for them and the table's ten rows, gauges otherwise."""
        self._fit(event.size.height)

    def _fit(self, height: int) -> None:
        compact = height < CHARTS_MIN_HEIGHT
        self.set_class(compact, "-compact")
        self.query_one("#gauges").border_subtitle = ("" if compact else
                                                     "history of the run · ┄ reserve line")

    def _where(self) -> tuple[Path | None, Path | None]:
        """The config file (when this TUI knows it) and the output folder (every job's output
        is in it)."""
        plan = getattr(self.app, "plan", None)
        config = plan.config.path if plan is not None else getattr(self.app, "config_path", None)
        order = self.model.order
        output = self.model.rows[order[0]].output_path.parent if order else None
        return config, output

    def refresh_view(self) -> None:
        """Apply everything that changed since the last tick in one batch: the rows that
        changed, the gauges' samples, and the run-level figures (repainted only if changed)."""
        with self.app.batch_update():
            self.query_one(JobTable).refresh_from_model()
            self.query_one(HeaderLine).refresh()
            for gauge in self.query(ResourceGauge):
                gauge.refresh_from_model()
            self._set_figures()

    def _set_figures(self) -> None:
        for name, value in run_figures(self.model).items():
            setattr(self, name, value)
        paused_all = self.controller.paused_all
        if self.model.quitting is not None:  # what the exit waits for, above any other line
            self.notice = quit_notice(self.model, paused_all)
            self.pressure, self.paused_all = (), False
            return
        self.paused_all = paused_all
        self.notice = self.model.notices[-1].message if self.model.notices else ""

    def on_core(self, event: ev.Event) -> None:
        """Discrete events redraw at once (limit changes, pressure, notices)."""
        del event
        self.refresh_view()

    # --- actions

    def _selected(self) -> int | None:
        return self.query_one(JobTable).selected_job_id

    def action_toggle_pause(self) -> None:
        """Pause the selected running job, or resume it if paused."""
        job_id = self._selected()
        if job_id is None:
            return
        state = self.model.rows[job_id].state
        if state is JobState.PAUSED:
            self.controller.resume(job_id)
        elif state is JobState.RUNNING:
            self.controller.pause(job_id)
        else:
            self.notify(f"job #{job_id} is {state.value}: nothing to pause", severity="warning")
        self.refresh_view()

    def action_kill(self) -> None:
        """Ask, then kill the selected job (a queued one is taken off the queue)."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.modals import ConfirmKill
        job_id = self._selected()
        if job_id is None:
            return
        row = self.model.rows[job_id]
        if row.state.finished or row.state is JobState.STOPPING:
            self.notify(f"job #{job_id} is already {row.state.value}", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.controller.kill(job_id)
                self.refresh_view()

        self.app.push_screen(ConfirmKill(job_id, row.name, row.state), confirmed)

    def action_requeue(self) -> None:
        """Run a failed, killed or cancelled job again."""
        job_id = self._selected()
        if job_id is None:
            return
        if not self.controller.requeue(job_id):
            state = self.model.rows[job_id].state.value
            self.notify(
                f"only failed, killed or cancelled jobs can be requeued (#{job_id} is {state})",
                severity="warning")
        self.refresh_view()

    def action_toggle_pause_all(self) -> None:
        """Pause everything (no launches, all running jobs stopped), or resume it all."""
        if self.controller.paused_all:
            self.controller.resume_all()
        else:
            self.controller.pause_all()
        self.refresh_view()

    def action_limit(self, delta: int) -> None:
        """Raise or lower the process limit; lowering never kills a job."""
        self.controller.set_limit(max(1, self.controller.limit + delta))
        self.refresh_view()

    def action_detail(self) -> None:
        """Open the selected job's detail."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.detail import DetailScreen
        job_id = self._selected()
        if job_id is not None:
            self.app.push_screen(DetailScreen(self.model, self.controller, job_id))

    def action_filter(self) -> None:
        """Cycle the table's state filter: all, running, failed, done."""
        table = self.query_one(JobTable)
        table.cycle_filter()
        self.notify(f"filter: {table.filter}", timeout=2)

    def action_help(self) -> None:
        """Every key and what it does."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.help import HelpScreen
        self.app.push_screen(
            HelpScreen(detachable=self.app.controller.detachable))  # type: ignore[attr-defined]

    def action_quit_run(self) -> None:
        """Wait for running jobs, kill them, or cancel."""
        self.app.ask_quit()  # type: ignore[attr-defined]


class DetachableRunScreen(RunScreen):
    """The run screen of a run in another process: `d` detaches. To fit it in 80 columns
    with every other key, `+` and `-` share one footer entry (the help lists both)."""

    BINDINGS = [
        Binding("plus", "limit(1)", "±1", key_display="+/-"),
        Binding("minus", "limit(-1)", "-1", show=False),
        DETACH,
    ]
