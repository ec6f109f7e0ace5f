"""Small dialogs: confirm a kill (of one job or many), and how to quit while jobs are running."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from orch_tui.core.controller import Controller
from orch_tui.core.events import JobState
from orch_tui.core.textutil import printable
from orch_tui.tui.widgets.footer import FittedFooter


def dialog_footer() -> FittedFooter:
    """A dialog's footer of its own, over the one of the screen below: that one would go on
    offering keys (Pause, Kill...) that do nothing while the dialog is open."""
    return FittedFooter(compact=True, show_command_palette=False)


class Confirm(ModalScreen[bool]):
    """A yes / no question whose safe answer, no, has the focus."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def on_mount(self) -> None:
        """No is the safe default."""
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Buttons answer like their keys."""
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)


class ConfirmKill(Confirm):
    """Kill job N? y / n; for a queued job, which has no process yet: cancel it? y / n; for a
    stopping one: kill it now (SIGKILL)? y / n."""

    def __init__(self, job_id: int, name: str, state: JobState = JobState.RUNNING) -> None:
        super().__init__()
        self.job_id = job_id
        self.job_name = name
        self.queued = state is JobState.QUEUED
        self.stopping = state is JobState.STOPPING

    def carry_out(self, controller: Controller) -> None:
        """What a yes means: a job asked about while queued is cancelled, and so left running
        if it started meanwhile (the run refuses, in its own words); any other is killed."""
        (controller.cancel if self.queued else controller.kill)(self.job_id)

    def compose(self) -> ComposeResult:
        job = ((f"#{self.job_id} ", "bold"), printable(self.job_name))
        if self.queued:
            words = ("Cancel job ", "?\nIt has not started: it is removed from the queue and "
                     "ends cancelled (r or a later resume runs it).", "Remove from queue (y)",
                     "Keep it queued (n)")
        elif self.stopping:
            words = ("Kill job ", " now?\nIt is already stopping, waiting out its grace period: "
                     "SIGKILL at once; its temporary output is deleted.", "Kill now (y)",
                     "Let it stop (n)")
        else:
            words = ("Kill job ", "?\nSIGTERM to its process group, SIGKILL after the grace "
                     "period; its temporary output is deleted.", "Kill (y)", "Cancel (n)")
        with Vertical(classes="dialog"):
            yield Static(Text.assemble(words[0], *job, words[1]))
            yield Button(words[2], variant="warning" if self.queued else "error", id="yes")
            yield Button(words[3], id="no")
        yield dialog_footer()


def plural(count: int, word: str = "job") -> str:
    """'1 job', '3 jobs'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


class ConfirmMany(Confirm):
    """One confirmation for an action on many jobs, saying how many: "Kill 3 marked jobs?"."""

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                Text.assemble((self.question, "bold"), f"\n{self.detail}" * bool(self.detail)))
            yield Button("Yes (y)", variant="warning", id="yes")
            yield Button("No (n)", id="no")
        yield dialog_footer()


#: `d` on the run's screens: handled (and shown in the footer only for a run in another
#: process) by the app's check_action.
DETACH = Binding("d", "app.detach_run", "Detach")


class QuitModal(ModalScreen[str | None]):
    """Quit while jobs run: wait for them, kill them, or stay; for a run in another process,
    first of all: detach (the run goes on), the default."""

    BINDINGS = [
        Binding("d", "choose('detach')", "Detach"),  # in the footer only when it is offered
        Binding("w", "choose('wait')", "Wait"),
        Binding("k", "choose('kill')", "Kill and quit"),
        Binding("ctrl+c", "choose('kill')", "Kill and quit", show=False, priority=True),
        Binding("escape,c", "choose(None)", "Cancel"),
        # q: as Kill when the run ends with the app; as Detach when it does not, so that q, q
        # never stops a run that could have gone on.
        Binding("q", "q", "Quit", show=False, priority=True),
    ]

    def __init__(self, *, detachable: bool = False) -> None:
        super().__init__()
        self.detachable = detachable

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            if self.detachable:
                yield Static(Text("Leave the run?", style="bold"))
                yield Button("Detach, the run goes on (d)", variant="primary", id="detach")
                yield Button("Wait for running jobs, then quit (w)", id="wait")
                yield Button("Stop the run: kill running jobs (k)", variant="error", id="kill")
            else:
                yield Static(Text("Quit orch-tui?", style="bold"))
                yield Button("Wait for running jobs, then quit (w)", id="wait")
                yield Button("Kill running jobs and quit (k, q, ctrl+c)",
                             variant="error",
                             id="kill")
            yield Button("Cancel (escape)", id="cancel")
        yield dialog_footer()

    def on_mount(self) -> None:
        """Cancel is the safe default; detach when the run goes on without the app."""
        self.query_one("#detach" if self.detachable else "#cancel", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`d` means something only when detaching is offered (False: out of the footer)."""
        return self.detachable or parameters != ("detach", )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Buttons answer like their keys."""
        choice = event.button.id
        self.dismiss(None if choice == "cancel" else choice)

    def action_q(self) -> None:
        """q: detach a run that goes on, kill one that would not."""
        self.dismiss("detach" if self.detachable else "kill")

    def action_choose(self, choice: str | None) -> None:
        """Close with the choice."""
        self.dismiss(choice)
