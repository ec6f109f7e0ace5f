"""The run is starting in a process of its own: how far it is with reading the input list.

With --yes the TUI starts the run before it draws anything, so a list of 100,000 inputs is
read by the run while this screen shows the count and keeps the terminal answering keys."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import ProgressBar, Static

from orch_tui.core.controller import LoadProgress
from orch_tui.core.textutil import printable
from orch_tui.tui.widgets.footer import FittedFooter

#: Seconds between two looks at the progress (the figure comes from a reader thread).
POLL = 0.1


def loading_line(progress: LoadProgress) -> str:
    """`reading the input list: 45,000 of 100,000 lines` (before the first figure: starting)."""
    if progress.total <= 0:
        return "starting the run process"
    return f"reading the input list: {progress.done:,} of {progress.total:,} lines"


class StartingScreen(Screen[None]):
    """A progress bar over the run's loading of its list, until it can be attached to."""

    BINDINGS = [Binding("q", "leave", "Leave (the run goes on)")]

    def __init__(self, progress: LoadProgress, config_path: Path | None) -> None:
        super().__init__()
        self.progress = progress
        self.config_path = config_path

    def compose(self) -> ComposeResult:
        with Vertical(id="starting"):
            where = printable(str(self.config_path)) if self.config_path else ""
            yield Static(Text.assemble(("Starting the run", "bold"), "  ", where), classes="title")
            yield Static(loading_line(self.progress), id="starting-line")
            yield ProgressBar(total=None, show_eta=False, id="starting-bar")
        yield FittedFooter()

    def on_mount(self) -> None:
        """Follow the figure the reader thread updates."""
        self.set_interval(POLL, self.refresh_progress)

    def refresh_progress(self) -> None:
        """Show the latest count (the bar is indeterminate until the total is known)."""
        progress = self.progress
        self.query_one("#starting-line", Static).update(loading_line(progress))
        if progress.total > 0:
            self.query_one("#starting-bar", ProgressBar).update(total=progress.total,
                                                                progress=progress.done)

    def action_leave(self) -> None:
        """Close the screen; the run started in its own process and goes on without it."""
        self.app.exit()
