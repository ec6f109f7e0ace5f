"""Small dialogs: confirm a kill, and how to quit while jobs are running."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from orch_tui.core.events import JobState


class ConfirmKill(ModalScreen[bool]):
    """Kill job N? y / n; for a queued job, which has no process yet: cancel it? y / n."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, job_id: int, name: str, state: JobState = JobState.RUNNING) -> None:
        super().__init__()
        self.job_id = job_id
        self.job_name = name
        self.queued = state is JobState.QUEUED

    def compose(self) -> ComposeResult:
        job = ((f"#{self.job_id} ", "bold"), self.job_name)
        if self.queued:
            words = ("Cancel job ", "?\nIt has not started: it is removed from the queue and "
                     "ends cancelled (r or a later resume runs it).", "Remove from queue (y)",
                     "Keep it queued (n)")
        else:
            words = ("Kill job ", "?\nSIGTERM to its process group, SIGKILL after the grace "
                     "period; its temporary output is deleted.", "Kill (y)", "Cancel (n)")
        with Vertical(classes="dialog"):
            yield Static(Text.assemble(words[0], *job, words[1]))
            yield Button(words[2], variant="warning" if self.queued else "error", id="yes")
            yield Button(words[3], id="no")

    def on_mount(self) -> None:
        """Cancel is the safe default."""
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Buttons answer like their keys."""
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)


class QuitModal(ModalScreen[str | None]):
    """Quit while jobs run: wait for them, kill them, or stay."""

    BINDINGS = [
        Binding("w", "choose('wait')", "Wait"),
        Binding("k,q,ctrl+c", "choose('kill')", "Kill and quit", priority=True),
        Binding("escape,c", "choose(None)", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Quit orch-tui?", style="bold"))
            yield Button("Wait for running jobs, then quit (w)", id="wait")
            yield Button("Kill running jobs and quit (k, q, ctrl+c)", variant="error", id="kill")
            yield Button("Cancel (escape)", id="cancel")

    def on_mount(self) -> None:
        """Cancel is the safe default."""
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Buttons answer like their keys."""
        choice = event.button.id
        self.dismiss(None if choice == "cancel" else choice)

    def action_choose(self, choice: str | None) -> None:
        """Close with the choice."""
        self.dismiss(choice)
