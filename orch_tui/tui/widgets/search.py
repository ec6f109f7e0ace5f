"""`/`: the run screen's one-line search of input names, shown only while searching.

It is hidden and unfocused the rest of the time: a focused Input takes every letter, and the
run screen's keys are single letters."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class SearchBar(Input):
    """The pattern being typed; the screen moves the table's cursor as it changes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    DEFAULT_CSS = """
    SearchBar {
        dock: bottom;
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
        &.-open { display: block; }
    }
    """

    class Cancelled(Message):
        """Escape: close the search and put the cursor back where it was."""

    # pylint: disable-next=redefined-builtin  # `id` is Textual's name for it
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="search input names (enter keeps, escape goes back)",
                         id=id,
                         compact=True)
        #: The table's cursor when `/` was pressed: each keystroke searches from it, and
        #: escape goes back to it.
        self.origin = 0
        #: Whether the pattern being typed matches a job.
        self.found = False
        #: The last pattern kept with enter: what n / N look for.
        self.pattern = ""

    @property
    def is_open(self) -> bool:
        """True while a search is being typed."""
        return self.has_class("-open")

    def open(self, origin: int) -> None:
        """Show an empty search line and take the keys; `origin`: the cursor now."""
        self.origin, self.found = origin, False
        self.value = ""
        self.add_class("-open")
        self.focus()

    def close(self) -> None:
        """Hide the line (the screen gives the focus back to the table)."""
        self.remove_class("-open")

    def action_cancel(self) -> None:
        """Escape: tell the screen, which restores the cursor."""
        self.post_message(self.Cancelled())
