"""Calibration: the one measured job, live, then the three constraints and the chosen limit."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Sparkline, Static

from orch_tui.core import events as ev
from orch_tui.core.controller import Controller
from orch_tui.core.textutil import format_bytes, printable
from orch_tui.tui.screens.modals import DETACH
from orch_tui.tui.model import RunModel
from orch_tui.tui.widgets.footer import FittedFooter

#: Seconds the result stays on screen before the run screen opens by itself.
AUTO_CONTINUE = 4.0


def constraints_table(model: RunModel) -> Table:
    """CPU, memory and disk side by side: per-process figure, system figure, processes allowed."""
    decision = model.decision
    table = Table(expand=False, box=None, padding=(0, 2), show_edge=False)
    table.add_column("constraint")
    table.add_column("per process", justify="right")
    table.add_column("system", justify="right")
    table.add_column("share", justify="right")
    table.add_column("allows", justify="right")
    if decision is None:
        return table
    for constraint in decision.constraints:
        if constraint.name == "cpu":
            per, system = f"{constraint.per_process:.2f} cores", f"{constraint.system:g} cores"
        else:
            per = format_bytes(int(constraint.per_process))
            system = format_bytes(int(constraint.system))
        if constraint.name == "memory" and not constraint.per_process:
            per = "not measured"  # it ended before a sample (local_runner._own_peak)
        system += constraint.source.note
        allowed = "-" if constraint.allowed is None else str(constraint.allowed)
        if constraint.below_one:  # the raw figure: "0.61 -> 1", never a bare 0 beside limit 1
            allowed = f"{constraint.raw:.2g} -> 1"
        binding = constraint.name == decision.binding
        style = "bold reverse" if binding else ""
        name = constraint.name + (" (binds)" if binding else "")
        table.add_row(Text(name),
                      Text(per),
                      Text(system),
                      Text(f"{constraint.fraction:.0%}"),
                      Text(allowed),
                      style=style)
    return table


class CalibrationScreen(Screen[None]):
    """Live view of the calibration job, then its result; continues to the run screen."""

    BINDINGS = [
        Binding("enter", "continue", "Continue"),
        Binding("plus", "limit(1)", "+1 process"),
        Binding("minus", "limit(-1)", "-1 process"),
        Binding("question_mark", "help", "Help", show=False),
        DETACH,
        Binding("q", "quit_run", "Quit"),
    ]

    def __init__(self, model: RunModel, controller: Controller) -> None:
        super().__init__()
        self.model = model
        self.controller = controller
        self._continue_at: float | None = None
        self._ticker: Timer | None = None
        self._offered = False  # the footer offers enter and +/- (once a result is known)

    def compose(self) -> ComposeResult:
        yield Static(Text("Calibrating", style="bold"), id="calibration-title", classes="title")
        with Vertical(id="calibration-live"):
            yield Static(id="calibration-job")
            yield Static(id="calibration-countdown")
            yield Static(Text("CPU (cores)"), classes="muted")
            yield Sparkline([], id="calibration-cpu")
            yield Static(Text("RSS"), classes="muted")
            yield Sparkline([], id="calibration-rss")
            yield Static(id="calibration-io")
        yield Static(id="calibration-result")
        yield FittedFooter()

    def on_mount(self) -> None:
        """Redraw from the model four times a second (the calibration samples every 250 ms)."""
        self._ticker = self.set_interval(0.25, self.refresh_view)
        self.refresh_view()

    def refresh_view(self) -> None:
        """Draw the live figures, the result and the auto-continue countdown."""
        model = self.model
        job = model.rows.get(model.calibration_job) if model.calibration_job else None
        if job is not None:
            self.query_one("#calibration-job", Static).update(
                Text.assemble("job ", (f"#{job.job_id} ", "bold"), printable(job.name), "  ",
                              (job.state.value, "italic")))
        samples = model.calibration
        if samples:
            last = samples[-1]
            left = max(0.0, last.window - last.elapsed)
            self.query_one("#calibration-countdown", Static).update(
                Text(f"stabilization window: {left:.1f}s of {last.window:g}s left" if model.
                     calibrated is None else "window over"))
            self.query_one("#calibration-cpu", Sparkline).data = [s.cpu_cores for s in samples]
            self.query_one("#calibration-rss", Sparkline).data = [s.rss_bytes for s in samples]
            read = "-" if last.read_fraction is None else f"{last.read_fraction:.1%}"
            self.query_one("#calibration-io", Static).update(
                Text(f"cpu {last.cpu_cores:.2f} cores   rss {format_bytes(last.rss_bytes)}   "
                     f"input read {read}\noutput {format_bytes(last.output_bytes)} so far, "
                     f"est. {format_bytes(last.output_estimate)} "
                     f"(from {last.output_basis.value})"))
        if self._offered != (model.calibrated is not None):
            self._offered = model.calibrated is not None
            self.refresh_bindings()  # check_action again: the footer follows
        if model.calibrated is not None:
            self._show_result()

    def _show_result(self) -> None:
        model = self.model
        assert model.calibrated is not None
        how = model.calibrated.source.explained
        now = model.clock()
        if self._continue_at is None:
            self._continue_at = now + AUTO_CONTINUE
        left = max(0.0, self._continue_at - now)
        decision = model.calibrated.decision
        binds = {
            "jobs": "the number of jobs caps it",
            "max_processes": "resources.max_processes caps it",
            "none": "nothing binds: one job per core",
        }.get(decision.binding, f"{decision.binding} binds")
        limit_line = Text.assemble(("limit ", "bold"), (str(self.controller.limit), "bold"),
                                   f"  ({binds}; {model.limit_reason})   ")
        limit_line.append(f"continuing in {left:.0f}s: enter now, +/- to adjust", style="italic")
        self.query_one("#calibration-title", Static).update(Text("Calibration result",
                                                                 style="bold"))
        result = Table.grid()
        result.add_row(Text(f"Result ({how})", style="bold"))
        result.add_row(constraints_table(model))
        result.add_row(limit_line)
        floored = [c for c in decision.constraints if c.name == decision.binding and c.below_one]
        for constraint in floored:  # the arithmetic, and why the limit is 1 and not 0
            result.add_row(Text(constraint.formula()))
        self.query_one("#calibration-result", Static).update(result)
        if left <= 0:
            self._continue(automatic=True)

    def on_core(self, event: ev.Event) -> None:
        """Calibration restarted on another job (the first one failed): start over."""
        if isinstance(event, ev.CalibrationStarted):
            self._continue_at = None
        self.refresh_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Enter and +/- act on the result: out of the footer while there is none yet."""
        del parameters
        return action not in ("continue", "limit") or self.model.calibrated is not None

    def action_continue(self) -> None:
        """Open the run screen (only once the result is known)."""
        self._continue(automatic=False)

    def _continue(self, *, automatic: bool) -> None:
        """To the run screen, by the operator's Enter or the countdown (`automatic`), and only
        from this screen: a modal over it (the quit dialog) stays until it is answered."""
        if self.model.calibrated is None or not self.is_current:
            return
        if self._ticker is not None:
            self._ticker.stop()
        self.app.show_run(automatic=automatic)  # type: ignore[attr-defined]

    def action_limit(self, delta: int) -> None:
        """Set the limit from the result (the operator's value then sticks). The run launched up
        to the calibrated limit already: lowering it stops no job, fewer start as they end."""
        if self.model.calibrated is None:
            return
        self.controller.set_limit(max(1, self.controller.limit + delta))
        self._continue_at = self.model.clock() + AUTO_CONTINUE
        self.refresh_view()

    def action_help(self) -> None:
        """The key reference."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.help import HelpScreen
        self.app.push_screen(
            HelpScreen(detachable=self.app.controller.detachable))  # type: ignore[attr-defined]

    def action_quit_run(self) -> None:
        """The same quit dialog as the run screen."""
        self.app.ask_quit()  # type: ignore[attr-defined]
