"""The end of the run: counts, wall time, throughput, every failure with its log."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from orch_tui.core.controller import Controller
from orch_tui.core.events import JobState
from orch_tui.core.logtail import describe_failure
from orch_tui.core.journal.schema import JOURNAL_NAME
from orch_tui.core.statedir import LOGS_DIR_NAME
from orch_tui.core.statehome import journal_folder
from orch_tui.core.tally import BAD_STATES
from orch_tui.core.textutil import format_duration, printable
from orch_tui.tui.model import RunModel
from orch_tui.tui.widgets.footer import FittedFooter


class FinishedScreen(Screen[None]):
    """Summary; enter on a failure opens its detail; q exits with the run's exit code."""

    BINDINGS = [
        # priority: the focused failure list would otherwise take enter and hide this hint.
        Binding("enter", "detail", "Detail", priority=True),
        Binding("q", "quit_app", "Quit"),
    ]

    def __init__(self, model: RunModel, controller: Controller) -> None:
        super().__init__()
        self.model = model
        self.controller = controller

    def compose(self) -> ComposeResult:
        yield Static(self._summary(), id="finished-summary")
        options = []
        for job_id in self.model.order:
            row = self.model.rows[job_id]
            if row.state in BAD_STATES:  # failed, killed, vanished mid-run
                # A missing input never ran: it has no log to point at.
                log = "" if row.state is JobState.MISSING else str(row.log_path)
                label = Text.assemble((f"#{row.job_id} ", "bold"), printable(row.name), "  ",
                                      (row.state.value, "red"),
                                      f"  {printable(describe_failure(row.reason, row.detail))}  ",
                                      (log, "dim"))
                options.append(Option(label, id=str(job_id)))
        if options:
            yield OptionList(*options, id="failures")
        missing = self._missing()
        if missing is not None:
            yield Static(missing, id="missing")
        elif not options:
            yield Static(Text("No failures.", style="green"), id="failures")
        yield FittedFooter()

    def _missing(self) -> Text | None:
        """The inputs no job ran for (missing, a folder, unreadable when the run began): they
        make the exit code 1 too, and have no row to list them (None when there are none)."""
        preflight = self.model.preflight
        if preflight is None or not preflight.missing:
            return None
        text = Text()
        count = preflight.missing
        text.append(f"{count} input{'s' if count != 1 else ''} never ran (as the run began):\n",
                    style="bold")
        for line, path, problem in preflight.problems:
            text.append(f"line {line}  ", style="bold")
            text.append(printable(path))
            text.append(f"  {problem}\n", style="magenta")
        if count > len(preflight.problems):
            more = count - len(preflight.problems)
            text.append(f"and {more} more: see run.log\n"
                        if preflight.problems else "their names are in run.log\n",
                        style="dim")
        return text

    def on_mount(self) -> None:
        """Focus the failure list so enter opens the highlighted one."""
        for widget in self.query(OptionList):
            widget.focus()

    def _summary(self) -> Text:
        model = self.model
        finished = model.finished
        counts = finished.counts if finished else {}
        wall = finished.wall_seconds if finished else 0.0
        done = counts.get("succeeded", 0)
        text = Text()
        head = "Interrupted" if finished and finished.interrupted else "Finished"
        text.append(f"{head}: exit code {finished.exit_code if finished else '-'}\n", style="bold")
        for name, style in (("succeeded", "green"), ("failed", "red"), ("killed", "red"),
                            ("cancelled", "yellow"), ("skipped", ""), ("missing",
                                                                       "magenta"), ("queued", "")):
            value = counts.get(name, 0)
            if value or name not in ("cancelled", "queued"):
                text.append(f"{name} ", style=style)
                text.append(f"{value}   ", style="bold")
        rate = done / wall * 60 if wall > 0 else 0.0
        text.append(f"\nwall time {format_duration(wall)}   throughput {rate:.1f} jobs/min\n")
        first = next(iter(model.rows.values()), None)
        if first is not None:
            # The logs folder, above the log's shard folder (an older run's logs have none).
            logs = next((p for p in first.log_path.parents if p.name == LOGS_DIR_NAME),
                        first.log_path.parent)
            text.append("logs: ", style="bold")
            text.append(str(logs) + "\n")
            text.append("journal: ", style="bold")
            # Off a network filesystem's output folder, on this machine (core/statehome.py).
            text.append(str(journal_folder(logs.parent.parent)[0] / JOURNAL_NAME))
        if model.joblog_path is not None:
            text.append("\njoblog: ", style="bold")
            text.append(str(model.joblog_path))
        return text

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Detail only when there is a failure to open (False: out of the footer)."""
        del parameters
        return action != "detail" or bool(self.query(OptionList))

    def action_detail(self) -> None:
        """Open the highlighted failure's detail."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.detail import DetailScreen
        for widget in self.query(OptionList):
            index = widget.highlighted
            if index is not None:
                option = widget.get_option_at_index(index)
                if option.id is not None:
                    self.app.push_screen(DetailScreen(self.model, self.controller, int(option.id)))

    def action_quit_app(self) -> None:
        """Leave with the run's exit code."""
        code = self.model.finished.exit_code if self.model.finished else 0
        self.app.exit(code, return_code=code)
