"""The run: overall progress, resource gauges and the job table, with per-job control keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.reactive import reactive
from textual.widgets import Input

from orch_tui.core import events as ev
from orch_tui.core.commands import requeue_refusal
from orch_tui.core.controller import Controller
from orch_tui.core.eta import Eta
from orch_tui.core.events import REQUEUEABLE, JobState
from orch_tui.core.tally import Counts
from orch_tui.tui.model import RunModel
from orch_tui.tui.screens.modals import DETACH, ConfirmMany, plural
from orch_tui.tui.widgets.charts import ResourceChart
from orch_tui.tui.widgets.gauges import NoticeLine, ProgressLine, ResourceGauge, run_figures
from orch_tui.tui.widgets.header import HeaderLine, panel_title
from orch_tui.tui.widgets.job_table import JobTable
from orch_tui.tui.widgets.nodes import NodesPanel
from orch_tui.tui.widgets.search import SearchBar
from orch_tui.tui.widgets.footer import FittedFooter

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


def run_bindings(*, detachable: bool = False) -> list[BindingType]:
    """The run screen's keys, in the order the footer shows them and cuts them from the
    right: at 80 columns the job keys, find, filter, detail, pause all, help and quit (and
    detach, for a run in another process) show; at 60 still help and quit. Every key, shown or not
    (show=False), is in the help (?)."""
    detach = [DETACH] if detachable else []
    # A run in another process: + and - share one footer entry (the help lists both).
    limit = [
        Binding("plus", "limit(1)", "±1", key_display="+/-"),
        Binding("minus", "limit(-1)", "-1", show=False),
    ] if detachable else [
        Binding("plus", "limit(1)", "+1"),
        Binding("minus", "limit(-1)", "-1"),
    ]
    return [
        Binding("space", "toggle_pause", "Pause", key_display="␣"),
        Binding("x", "kill", "Kill"),
        Binding("ctrl+k", "kill", "Kill", show=False),  # as k9s
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_run", "Quit"),  # ctrl+c too: the app binds it on every screen
        *detach,
        Binding("slash", "search", "Find"),
        Binding("f", "filter(1)", "Filter"),
        Binding("r", "requeue", "Requeue"),
        Binding("enter", "detail", "Detail"),
        Binding("P", "toggle_pause_all", "All"),
        Binding("m", "mark", "Mark"),
        Binding("s", "sort", "Sort"),
        *limit,
        Binding("c", "cancel", "Cancel", show=False),
        Binding("R", "requeue_all", "Requeue all", show=False),
        Binding("M", "mark_all", "Mark all", show=False),
        Binding("escape", "clear_marks", "Clear marks", show=False),
        Binding("n", "find_next(1)", "Next match", show=False),
        Binding("N", "find_next(-1)", "Previous match", show=False),
        Binding("F", "filter(-1)", "Previous filter", show=False),
        Binding("o", "node_filter(1)", "Node filter", show=False),
        Binding("O", "node_filter(-1)", "Previous node filter", show=False),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
    ]


# pylint: disable-next=too-many-public-methods  # one action per key of the run screen
class RunScreen(Screen[None]):
    """The screen an operator lives in while the jobs run."""

    BINDINGS = run_bindings()

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
        # Hidden (app.tcss) until the run has a second node: a local run's screen is unchanged.
        yield NodesPanel(self.model, id="nodes", classes="panel")
        yield JobTable(self.model, id="jobs", classes="panel")
        yield NoticeLine(id="notice").data_bind(RunScreen.pressure, RunScreen.paused_all,
                                                RunScreen.notice)
        yield FittedFooter(compact=True, show_command_palette=False)
        yield SearchBar(id="search")

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
        self.query_one(NodesPanel).set_class(compact, "-compact")
        self.query_one("#gauges").border_subtitle = ("" if compact else
                                                     "history of the run · ┄ reserve line")

    def _where(self) -> tuple[Path | None, Path | None]:
        """The config file (when this TUI knows it) and the output folder (every job's output
        is in it)."""
        plan = getattr(self.app, "plan", None)
        config = plan.config.path if plan is not None else getattr(self.app, "config_path", None)
        config = config or self.model.config_path  # an attached screen: the run's own
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
            nodes = self.query_one(NodesPanel)
            if nodes.several:
                nodes.add_class("-several")
                nodes.refresh_from_model()
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

    def _marked(self) -> list[int]:
        """The marked jobs, in the plan's order (empty: the keys act on the selected job)."""
        marked = self.query_one(JobTable).marked
        return [job_id for job_id in self.model.order if job_id in marked]

    # pylint: disable-next=too-many-arguments  # the verb, whom, how, and the question
    def _act_on_many(self,
                     verb: str,
                     ids: list[int],
                     applies: Callable[[JobState], bool],
                     command: Callable[[int], bool],
                     *,
                     ask: str | None = None) -> None:
        """`command` each of `ids` whose state `applies`, after one confirmation if `ask` (the
        question, formatted with {count} and {jobs}: how many); the notice says how many were
        done and how many skipped."""
        rows = self.model.rows
        chosen = [job_id for job_id in ids if applies(rows[job_id].state)]
        skipped = len(ids) - len(chosen)
        if not chosen:
            self.notify(
                f"nothing to {verb}: {plural(skipped)} skipped (not in a state to "
                f"{verb})",
                severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            done = sum(1 for job_id in chosen if command(job_id))
            skip = f"; {skipped} skipped (not in a state to {verb})" if skipped else ""
            self.notify(f"{verb}: {plural(done)}{skip}")
            self.refresh_view()

        if ask is None:
            confirmed(True)
        else:
            detail = f"{skipped} other{'' if skipped == 1 else 's'} skipped (not in a state to " \
                f"{verb})." if skipped else ""
            count = len(chosen)
            question = ask.format(count=count, jobs="job" if count == 1 else "jobs")
            self.app.push_screen(ConfirmMany(question, detail), confirmed)

    def action_toggle_pause(self) -> None:
        """Pause the selected running job, or resume it if paused; with marks: pause the
        marked running jobs, or if none runs, resume the marked paused ones (no confirmation,
        as for one job)."""
        if marked := self._marked():
            states = {self.model.rows[job_id].state for job_id in marked}
            if JobState.RUNNING in states:
                self._act_on_many("pause", marked, lambda state: state is JobState.RUNNING,
                                  self.controller.pause)
            else:
                self._act_on_many("resume", marked, lambda state: state is JobState.PAUSED,
                                  self.controller.resume)
            return
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

    def action_kill(self, cancel: bool = False) -> None:
        """Ask, then kill the selected job (a queued one is taken off the queue); with marks,
        kill the marked jobs (one question with the count). `cancel`: queued jobs only."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.modals import ConfirmKill
        if marked := self._marked():
            if cancel:
                self._act_on_many("cancel",
                                  marked,
                                  lambda state: state is JobState.QUEUED,
                                  self.controller.cancel,
                                  ask="Cancel {count} marked {jobs} (take them off the queue)?")
            else:
                self._act_on_many(
                    "kill",
                    marked,
                    lambda state: state is JobState.QUEUED or
                    (state.active and state is not JobState.STOPPING),
                    self.controller.kill,
                    ask="Kill {count} marked {jobs}? (a queued one is taken off the queue)")
            return
        job_id = self._selected()
        if job_id is None:
            return
        row = self.model.rows[job_id]
        if cancel and row.state is not JobState.QUEUED:
            self.notify(f"only queued jobs can be cancelled (#{job_id} is {row.state.value})",
                        severity="warning")
            return
        if row.state.finished:
            self.notify(f"job #{job_id} is already {row.state.value}", severity="warning")
            return

        dialog = ConfirmKill(job_id, row.name, row.state)

        def confirmed(yes: bool | None) -> None:
            if yes:
                dialog.carry_out(self.controller)
                self.refresh_view()

        self.app.push_screen(dialog, confirmed)

    def action_cancel(self) -> None:
        """Ask, then take the selected queued job (or the marked queued ones) off the queue."""
        self.action_kill(cancel=True)

    def action_requeue(self) -> None:
        """Run a failed, killed or cancelled job again; with marks: the marked ones that are
        (one question with the count)."""
        if marked := self._marked():
            self._act_on_many("requeue",
                              marked,
                              REQUEUEABLE.__contains__,
                              self.controller.requeue,
                              ask="Requeue {count} marked {jobs}?")
            return
        job_id = self._selected()
        if job_id is None:
            return
        if not self.controller.requeue(job_id):
            self.notify(requeue_refusal(job_id, self.model.rows[job_id].state), severity="warning")
        self.refresh_view()

    def action_requeue_all(self) -> None:
        """Requeue every failed and killed job, whatever the filter shows (one question)."""
        again = {JobState.FAILED, JobState.KILLED}
        ids = [job_id for job_id in self.model.order if self.model.rows[job_id].state in again]
        if not ids:
            self.notify("no failed or killed job to requeue", severity="warning")
            return
        self._act_on_many("requeue",
                          ids,
                          again.__contains__,
                          self.controller.requeue,
                          ask="Requeue {count} failed and killed {jobs}?")

    def action_mark(self) -> None:
        """Mark the selected job (or unmark it) and move down: m m m marks three in a row."""
        table = self.query_one(JobTable)
        table.toggle_mark()
        table.action_cursor_down()

    def action_mark_all(self) -> None:
        """Mark every job the filter shows."""
        self.query_one(JobTable).mark_visible()

    def action_clear_marks(self) -> None:
        """Escape: unmark every job."""
        self.query_one(JobTable).clear_marks()

    def action_sort(self) -> None:
        """Sort by the next column: index, state, elapsed, progress, CPU, RSS, output."""
        self.query_one(JobTable).cycle_sort()

    def action_reverse_sort(self) -> None:
        """Reverse the sort order."""
        self.query_one(JobTable).reverse_sort()

    def action_search(self) -> None:
        """Open the search line: the cursor follows the pattern as it is typed."""
        self.query_one(SearchBar).open(self.query_one(JobTable).cursor_row)

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        """Each keystroke: the first match at or after where the search started (none: the
        cursor waits there)."""
        table, search = self.query_one(JobTable), self.query_one(SearchBar)
        search.found = bool(event.value) and table.find(event.value, search.origin)
        if not search.found:
            table.cursor_row = search.origin

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        """Enter: keep the match, and the pattern for n / N."""
        search = self.query_one(SearchBar)
        if event.value:
            search.pattern = event.value
            if not search.found:
                self.notify(f"no input name contains {event.value!r}", severity="warning")
        self._close_search()

    @on(SearchBar.Cancelled)
    def _search_cancelled(self) -> None:
        """Escape: back where the search started."""
        self.query_one(JobTable).cursor_row = self.query_one(SearchBar).origin
        self._close_search()

    def _close_search(self) -> None:
        self.query_one(SearchBar).close()
        self.query_one(JobTable).focus()

    def action_find_next(self, step: int) -> None:
        """n / N: the next (previous) job matching the last search, wrapping."""
        pattern = self.query_one(SearchBar).pattern
        if not pattern:
            self.notify("no search yet: / searches input names", severity="warning")
            return
        table = self.query_one(JobTable)
        if not table.find(pattern, table.cursor_row + step, step):
            self.notify(f"no input name contains {pattern!r}", severity="warning")

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

    def action_filter(self, step: int) -> None:
        """Cycle the table's state filter (f forward, F back): all, running, paused, queued,
        failed, killed, done; the table's title says which and how many rows it shows."""
        self.query_one(JobTable).cycle_filter(step)

    def action_node_filter(self, step: int) -> None:
        """Cycle the table's node filter (o forward, O back): every node, then each node by
        name; composed with the state filter, said in the table's title."""
        if len(self.model.nodes) <= 1:
            self.notify("one node: every job runs on it", severity="warning")
            return
        self.query_one(JobTable).cycle_node(step)

    def action_help(self) -> None:
        """Every key and what it does."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.help import HelpScreen
        self.app.push_screen(
            HelpScreen(
                detachable=self.app.controller.detachable,  # type: ignore[attr-defined]
                nodes=len(self.model.nodes) > 1))

    def action_quit_run(self) -> None:
        """Wait for running jobs, kill them, or cancel."""
        self.app.ask_quit()  # type: ignore[attr-defined]


class DetachableRunScreen(RunScreen, inherit_bindings=False):
    """The run screen of a run in another process: `d` detaches (after q in the footer, so
    that it fits in 80 columns with the other keys)."""

    BINDINGS = [*Screen.BINDINGS, *run_bindings(detachable=True)]
