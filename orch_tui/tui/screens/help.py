"""`?`: every key of the run screen, in one place."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from orch_tui.tui.screens.modals import dialog_footer

#: Every key of the run screen, by what it is for: (group, note, [(keys, what they do)]).
GROUPS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("move", "", [
        ("up/down, k/j", "one job up / down (a click selects, the wheel scrolls)"),
        ("pgup/pgdn", "one screen up / down"),
        ("ctrl+u/ctrl+d", "half a screen up / down"),
        ("home/end, g/G", "first / last job"),
        ("enter", "job detail: command, exit code, live log, samples"),
    ]),
    ("find", "", [
        ("/", "search input names as you type (enter keeps the match, escape goes back)"),
        ("n / N", "next / previous match of the last search, wrapping"),
        ("f / F", "next / previous filter: all, running, paused, queued, failed, killed, "
         "done (the table's title says which, and how many)"),
        ("s / S", "sort by the next column (index, state, elapsed, progress, cpu, rss, "
         "output) / reverse it (▲ ▼ in the header)"),
    ]),
    ("act", "on the marked jobs if any, else on the selected one", [
        ("space", "pause / resume (SIGSTOP / SIGCONT to its tree); marks: pause the running "
         "ones, or if none runs resume the paused ones"),
        ("x, ctrl+k", "kill (asks first; SIGTERM, SIGKILL after the grace period); a queued "
         "one is cancelled: taken off the queue"),
        ("c", "cancel: take queued jobs off the queue (asks first)"),
        ("r", "requeue failed, killed or cancelled jobs (marks: asks first)"),
        ("R", "requeue every failed and killed job (asks first, with the count)"),
    ]),
    ("marks", "", [
        ("m", "mark / unmark the selected job and move down"),
        ("M", "mark every job the filter shows"),
        ("escape", "clear the marks"),
    ]),
    ("run", "", [
        ("P", "pause / resume everything (no launches, all running jobs stopped)"),
        ("+ / -", "raise / lower the process limit"),
        ("ctrl+p", "command palette: change the theme (remembered), keys, screenshot, quit"),
        ("q, ctrl+c", "quit: wait for running jobs, kill them, or cancel (ctrl+c twice: kill)"),
        ("?", "this help"),
    ]),
]
#: A run on several nodes (a cluster): the node filter, after the state filter.
NODE_KEYS = [
    ("o / O", "next / previous node: only the jobs that node runs or ran, with the state "
     "filter (the title says which node)"),
]
#: The run lives in another process (orch-tui attach, or a run started from the TUI): these
#: replace the run group's quit.
DETACHABLE_KEYS = [
    ("d", "detach: the run goes on; orch-tui attach OUTPUT_DIR comes back to it"),
    ("q, ctrl+c", "quit: detach (the default), wait for running jobs, stop the run, or cancel "
     "(ctrl+c twice: stop it)"),
]


class HelpScreen(ModalScreen[None]):
    """The key reference."""

    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def __init__(self, *, detachable: bool = False, nodes: bool = False) -> None:
        super().__init__()
        self.detachable = detachable
        self.nodes = nodes

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for group, note, keys in GROUPS:
            if group == "run" and self.detachable:
                keys = [*keys[:-2], *DETACHABLE_KEYS, keys[-1]]
            if group == "find" and self.nodes:
                keys = [*keys[:3], *NODE_KEYS, *keys[3:]]
            table.add_row(Text(group, style="underline"), Text(note, style="italic"))
            for key, what in keys:
                table.add_row(Text(key), Text(what))
        with VerticalScroll(classes="dialog help"):
            yield Static(Text("Keys (escape closes)", style="bold"))
            yield Static(table, id="help-text")
        yield dialog_footer()
