"""`?`: every key of the run screen, in one place."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("space", "pause / resume the selected job (SIGSTOP / SIGCONT to its tree)"),
    ("k", "kill the selected job (asks first; SIGTERM, SIGKILL after the grace period); "
     "a queued one is cancelled: taken off the queue"),
    ("r", "requeue a failed, killed or cancelled job"),
    ("P", "pause / resume everything (no launches, all running jobs stopped)"),
    ("+ / -", "raise / lower the process limit"),
    ("enter", "job detail: command, exit code, live log, samples"),
    ("f", "cycle the filter: all, running, failed, done"),
    ("arrows, pgup/pgdn", "move in the table (home/end: first/last)"),
    ("q, ctrl+c", "quit: wait for running jobs, kill them, or cancel (ctrl+c twice: kill)"),
    ("?", "this help"),
]
#: The run lives in another process (orch-tui attach, or a run started from the TUI).
DETACHABLE_KEYS = [
    ("d", "detach: the run goes on; orch-tui attach OUTPUT_DIR comes back to it"),
    ("q, ctrl+c", "quit: detach (the default), wait for running jobs, stop the run, or cancel "
     "(ctrl+c twice: stop it)"),
]


class HelpScreen(ModalScreen[None]):
    """The key reference."""

    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def __init__(self, *, detachable: bool = False) -> None:
        super().__init__()
        self.detachable = detachable

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        keys = KEYS
        if self.detachable:
            keys = [*KEYS[:-2], *DETACHABLE_KEYS, KEYS[-1]]
        for key, what in keys:
            table.add_row(Text(key), Text(what))
        with VerticalScroll(classes="dialog help"):
            yield Static(Text("Keys (escape closes)", style="bold"))
            yield Static(table, id="help-text")
