"""The first screen: pick a config, see why it is wrong or what a run would do, then start.

Everything the operator might regret is shown before a single job starts: which binary runs,
which inputs are missing or listed twice, where outputs go and how much room is left there,
the exact command of the first job, and how many jobs a resume would skip. Every path and
message is untrusted text and is rendered as `rich.text.Text`, never as markup.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DirectoryTree, Input, Static, TextArea

from orch_tui.core.config import load_config
from orch_tui.core.plan import load_plan
from orch_tui.core.errors import ConfigError, OrchError
from orch_tui.core.fsutil import existing_ancestor
from orch_tui.core.control.remote import live_run
from orch_tui.core.lock import held_by
from orch_tui.core.plan import Plan, shell_quote
from orch_tui.core.textutil import format_bytes, printable
from orch_tui.tui.widgets.footer import FittedFooter

#: Problem lines (missing inputs, duplicates) listed before "and N more".
MAX_LISTED = 10
YAML_SUFFIXES = frozenset({".yaml", ".yml"})


class YamlTree(DirectoryTree):  # pylint: disable=too-many-ancestors
    """A DirectoryTree showing only folders and YAML files, with ASCII icons for any terminal."""

    ICON_NODE = "+ "
    ICON_NODE_EXPANDED = "- "
    ICON_FILE = "  "

    def process_label(self, label: str | Text) -> Text:
        """A file name as text, its escapes shown, never sent: an OSC in a name retitled the
        terminal, a newline cut the name (Tree reads a str label as markup, then keeps its
        first line)."""
        return Text(printable(label if isinstance(label, str) else label.plain))

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        """Hide dot-entries and anything that cannot be a config file."""
        return [
            path for path in paths if not path.name.startswith(".") and (
                _is_dir(path) or path.suffix.lower() in YAML_SUFFIXES)
        ]


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _show(path: Path | str) -> str:
    """A path as one printable line (a newline in a name must not forge a line)."""
    return printable(str(path))


def _row(label: str, *parts: str | tuple[str, str]) -> tuple[str, Text]:
    """One summary row: a label and literal text parts (never markup)."""
    return label, Text.assemble(*parts)


#: Editors known to open a file at line N when given `+N` before it.
LINE_EDITORS = frozenset(
    {"vi", "vim", "nvim", "nano", "emacs", "emacsclient", "micro", "vim.basic", "vim.tiny"})


def editor_command() -> list[str]:
    """$VISUAL, else $EDITOR, else vi (the order git and crontab use), split like a shell would
    (so "code -w" works), never run by one.

    Raises ValueError when the variable has unbalanced quotes."""
    for value in (os.environ.get("VISUAL"), os.environ.get("EDITOR")):
        argv = shlex.split(value) if value else []
        if argv:
            return argv
    return ["vi"]


def edit_argv(editor: list[str], path: Path, line: int | None) -> list[str]:
    """The editor's argv opening `path`, at `line` (`+LINE`) for editors known to take it;
    an unknown editor gets the file alone, since `+12` could mean anything to it."""
    at_line = [f"+{line}"] if line is not None and line > 0 and \
        os.path.basename(editor[0]) in LINE_EDITORS else []
    return editor + at_line + [str(path)]


# pylint: disable-next=too-many-locals  # one local per summary row, read top to bottom
def summary_rows(plan: Plan) -> list[tuple[str, Text]]:
    """The preflight summary of a valid plan as (label, literal Text) rows."""
    config = plan.config
    inputs = plan.inputs
    rows: list[tuple[str, Text]] = []
    binary = config.binary.path
    runnable = os.path.isfile(binary) and os.access(binary, os.X_OK)
    state = ("found, executable", "green") if runnable else ("NOT executable any more", "red")
    declared = ("" if config.binary.declared == str(binary) else
                f"  (as written: {_show(config.binary.declared)})")
    rows.append(_row("Binary", _show(binary), "  ", state, declared))

    problems = inputs.problems
    counts: list[str | tuple[str, str]] = [(f"{len(inputs.valid)} valid", "green")]
    counts.append(", ")
    counts.append((f"{len(problems)} missing or unusable", "red" if problems else ""))
    counts.append(", ")
    counts.append((f"{len(inputs.duplicates)} duplicated", "yellow" if inputs.duplicates else ""))
    rows.append(_row("Inputs", *counts))
    rows.append(_row("", ("list ", "dim"), _show(inputs.path)))
    notes = [(entry.line, entry.problem or "", entry.path) for entry in problems]
    notes += [(dup.line, f"duplicate of line {dup.first_line}", dup.path)
              for dup in inputs.duplicates]
    notes.sort(key=lambda note: note[0])
    for line, what, path in notes[:MAX_LISTED]:
        rows.append(_row("", (f"line {line}: ", "dim"), (what, "yellow"), " ", _show(path)))
    if len(notes) > MAX_LISTED:
        rows.append(_row("", (f"and {len(notes) - MAX_LISTED} more", "dim")))
    rows.append(_row("Size", format_bytes(inputs.total_size), " in total"))

    output_dir = config.directories.output_dir
    exists = os.path.isdir(output_dir)
    where = existing_ancestor(output_dir)
    try:
        free: str | tuple[str, str] = f"{format_bytes(shutil.disk_usage(where).free)} free"
    except OSError as exc:
        free = (f"free space unknown ({exc.strerror})", "yellow")
    rows.append(
        _row("Output", _show(output_dir), "  ", ("exists" if exists else "will be created", "dim"),
             ", ", free))
    holder = held_by(output_dir)
    live = live_run(output_dir) if holder is not None else None
    if live is not None:  # Enter attaches to it instead of starting
        when = time.strftime(" started %H:%M:%S", time.localtime(
            live.started)) if live.started else ""
        rows.append(
            _row("", (f"a run is active (pid {live.pid},{when})", "bold yellow"),
                 ": Enter attaches"))
    elif holder is not None:  # said before Enter, which would be refused
        rows.append(
            _row("", (f"held by another orch-tui (pid {holder})", "bold red"),
                 ": starting now would be refused; r checks again"))

    skip = len(plan.existing)
    if skip:
        rows.append(
            _row("Resume", (f"{skip} of {len(plan.jobs)} jobs", "yellow"),
                 " already have their output and will be skipped; use --overwrite to redo them"))
    else:
        rows.append(_row("Resume", "no job has an output yet; all will run"))

    if plan.jobs:
        first = plan.jobs[0]
        rows.append(_row("Command", (f"job 1 of {len(plan.jobs)}, exactly as it will run:", "dim")))
        rows.append(_row("", (_show(shell_quote(first.display_argv)), "bold")))
    else:
        rows.append(_row("Command", ("no valid input: nothing would run", "red")))
    return rows


def summarize(plan: Plan) -> Table:
    """The summary as a two-column grid, so wrapped values keep their indentation."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, text in summary_rows(plan):
        grid.add_row(Text(label), text)
    return grid


#: Input lists this long (bytes; about 20,000 lines) are read in a thread with a progress line.
BACKGROUND_LIST_BYTES = 1 << 20

#: The largest config the error view shows (a config is a few hundred bytes; a huge file named
#: .yaml is shown by its error line alone).
SHOWN_MAX = 1 << 20


def _shown_file(path: Path) -> str | None:
    """A config's text for the error view, its escapes shown line by line, never sent to the
    terminal; None for what is no regular file (a FIFO would block the screen in open), too big
    or unreadable."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > SHOWN_MAX:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    return "\n".join(printable(line) for line in text.split("\n"))


def _list_bytes(config_path: Path) -> int:
    """The size of the config's input list (0 when the config or the list cannot be read: the
    load then reports why, at once)."""
    try:
        return os.stat(load_config(config_path).directories.input_file_list).st_size
    except (OrchError, OSError):
        return 0


def _load(
        path: Path,
        progress: Callable[[int, int], None] | None = None
) -> tuple[Plan | None, ConfigError | None]:
    try:
        return load_plan(path, progress), None
    except ConfigError as exc:
        return None, exc


class ConfigScreen(Screen):
    """Choose and validate a config; Enter posts `ConfigScreen.Start` with the Plan."""

    CSS_PATH = "config.tcss"
    BINDINGS = [
        Binding("enter", "start", "Start"),
        Binding("e", "edit", "Edit"),
        Binding("r", "reload", "Revalidate"),
        Binding("r", "refresh_tree", "Refresh"),
        Binding("escape", "back", "Back"),
        Binding("q", "quit", "Quit"),
    ]

    class Start(Message):
        """The operator accepted the preflight summary: run this plan."""

        def __init__(self, plan: Plan) -> None:
            super().__init__()
            self.plan = plan

    class Attach(Message):
        """The config's output folder is held by a live run: open it (its control socket)
        rather than start `plan`."""

        def __init__(self, plan: Plan, socket: Path) -> None:
            super().__init__()
            self.plan = plan
            self.socket = socket

    class Checked(Message):
        """The config at `path` was validated (`error` None when it is valid)."""

        def __init__(self, path: Path, error: OrchError | None) -> None:
            super().__init__()
            self.path = path
            self.error = error

    def __init__(self, path: Path | None, *, start_dir: Path) -> None:
        super().__init__()
        self.path: Path | None = Path(os.path.abspath(path)) if path is not None else None
        self.start_dir = Path(start_dir)
        self.plan: Plan | None = None
        self.error: ConfigError | None = None
        self._picker = path is None

    def compose(self) -> ComposeResult:
        yield Static(id="config-status")
        with ContentSwitcher(id="config-views", initial="picker" if self._picker else None):
            if self._picker:
                with Vertical(id="picker"):
                    yield Static("Pick a config (.yaml/.yml) in the tree, or type its path below.",
                                 id="picker-hint")
                    yield YamlTree(self.start_dir, id="picker-tree")
                    yield Input(placeholder="path/to/config.yaml, then Enter", id="picker-input")
            with Vertical(id="error-view"):
                yield TextArea("",
                               read_only=True,
                               show_line_numbers=True,
                               soft_wrap=True,
                               language=None,
                               id="config-yaml")
                yield Static(id="error-message")
            with VerticalScroll(id="summary-view"):
                yield Static(id="summary")
        yield FittedFooter()

    def on_mount(self) -> None:
        """Load the given config at once, or wait in the picker."""
        self.query_one("#config-yaml", TextArea).cursor_blink = False
        if self._picker:
            self._picker_status()
            self.query_one("#picker-tree", YamlTree).focus()
        else:
            self.revalidate()

    # --- loading -------------------------------------------------------------------------

    def load(self, path: Path) -> None:
        """Switch to `path` (from the picker or the lead app) and validate it."""
        self.path = Path(os.path.abspath(path))
        self.revalidate()

    def revalidate(self) -> None:
        """Load the config again and show either its error or the preflight summary. A long
        input list is read in a thread, its progress on the status line, and the screen keeps
        answering keys meanwhile; a short one (most) at once, without a flicker."""
        if self.path is None:
            return
        self.plan = None
        if _list_bytes(self.path) >= BACKGROUND_LIST_BYTES:
            self._set_status(
                Text.assemble(("Reading the input list", "bold"), "  ", _show(self.path)))
            self.run_worker(self._load_in_thread, thread=True, exclusive=True, group="load")
            return
        self._loaded(self.path, *_load(self.path))

    def _load_in_thread(self) -> None:
        path = self.path
        assert path is not None

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._loading, done, total)

        plan, error = _load(path, progress)
        self.app.call_from_thread(self._loaded, path, plan, error)

    def _loading(self, done: int, total: int) -> None:
        self._set_status(
            Text.assemble(("Reading the input list", "bold"), f"  {done:,} of {total:,} lines",
                          f"  {done / total:.0%}" if total else ""))

    def _loaded(self, path: Path, plan: Plan | None, error: ConfigError | None) -> None:
        if path != self.path:
            return  # another config was picked meanwhile; its own load shows it
        self.plan, self.error = plan, error
        if error is not None:
            self._show_error(error)
        elif plan is not None:
            self._show_summary(plan)
        self.post_message(self.Checked(path, error))
        self.refresh_bindings()

    def _picker_status(self) -> None:
        root = self.query_one("#picker-tree", YamlTree).path
        self._set_status(Text.assemble(("Choose a config", "bold"), "  in ", _show(root)))

    def _set_status(self, text: Text) -> None:
        self.query_one("#config-status", Static).update(text)

    def _show_error(self, error: ConfigError) -> None:
        assert self.path is not None
        self._set_status(
            Text.assemble(("Config error", "bold red"), "  ", _show(self.path), "  ",
                          ("e edit, r revalidate", "dim")))
        self.query_one("#error-message", Static).update(Text(_show(str(error))))
        area = self.query_one("#config-yaml", TextArea)
        yaml_text = _shown_file(self.path)
        area.display = yaml_text is not None
        self.query_one("#config-views", ContentSwitcher).current = "error-view"
        if yaml_text is None:
            self.set_focus(None)  # nothing to scroll; keys go straight to the screen
            return
        area.load_text(yaml_text)
        same_file = error.path is not None and os.path.abspath(error.path) == str(self.path)
        if same_file and error.line is not None:
            row = min(error.line, area.document.line_count) - 1
            area.select_line(max(row, 0))
            self.call_after_refresh(area.scroll_cursor_visible, center=True)
        area.focus()

    def _show_summary(self, plan: Plan) -> None:
        assert self.path is not None
        runnable = len(plan.jobs) - len(plan.existing)
        self._set_status(
            Text.assemble(("Ready", "bold green"), "  ", _show(self.path), "  ",
                          (f"{runnable} to run, {len(plan.existing)} to skip", "dim")))
        self.query_one("#summary", Static).update(summarize(plan))
        self.query_one("#config-views", ContentSwitcher).current = "summary-view"
        view = self.query_one("#summary-view", VerticalScroll)
        view.scroll_home(animate=False)
        view.focus()

    # --- picker events ---------------------------------------------------------------------

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        """A YAML file chosen in the tree: validate it."""
        event.stop()
        self.load(event.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """A typed path: a folder re-roots the tree, anything else is loaded as a config."""
        event.stop()
        raw = event.value.strip()
        if not raw:
            return
        path = Path(os.path.expanduser(raw))
        if not path.is_absolute():
            path = self.start_dir / path
        if _is_dir(path):
            tree = self.query_one("#picker-tree", YamlTree)
            tree.path = path
            tree.focus()
            self._picker_status()
            return
        self.load(path)

    # --- actions -------------------------------------------------------------------------

    def _in_picker(self) -> bool:
        return self._picker and self.query_one("#config-views", ContentSwitcher).current == "picker"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers only what works here: Start on a valid plan, Edit and Revalidate
        on a config, Refresh (the tree) and no Back in the picker."""
        if not self.is_mounted:
            return True
        picking = self._in_picker()
        if action == "start":
            return self.plan is not None and not picking
        if action in ("edit", "reload"):
            return self.path is not None and not picking
        if action == "refresh_tree":
            return picking
        if action == "back":
            return self._picker and not picking
        return True

    def action_start(self) -> None:
        """Hand the validated plan to the app, which owns what happens next."""
        if self.plan is not None and not self._in_picker():
            live = live_run(self.plan.config.directories.output_dir)
            self.post_message(
                self.Start(self.plan) if live is None else self.Attach(self.plan, live.socket))

    def action_edit(self) -> None:
        """Open the config in the operator's editor (at the error's line), the TUI suspended,
        then validate what they saved."""
        if self.path is None or self._in_picker():
            return
        path, line = self.path, None
        error = self.error
        if error is not None and error.path is not None and os.path.isfile(error.path):
            # The file the error is in (the config, or the input list it names), at its line.
            path, line = Path(os.path.abspath(error.path)), error.line
        try:
            argv = edit_argv(editor_command(), path, line)
        except ValueError as exc:
            self.notify(f"cannot parse $EDITOR: {exc}", severity="error")
            return
        try:
            with self.app.suspend():
                problem = self._run_editor(argv)
        except SuspendNotSupported:
            # Headless or web: no terminal to hand over; a GUI editor or script still works.
            problem = self._run_editor(argv)
        if problem:
            self.notify(problem, severity="error", markup=False)
        self.revalidate()

    def _run_editor(self, argv: list[str]) -> str | None:
        """Run the editor; never raise (inside App.suspend an exception would leave the
        terminal suspended)."""
        try:
            code = subprocess.run(argv, check=False).returncode
        except OSError as exc:
            return f"cannot start editor {_show(argv[0])}: {exc.strerror or exc}"
        if code != 0:
            return f"editor {_show(argv[0])} exited with status {code}"
        return None

    def action_reload(self) -> None:
        """Revalidate the config."""
        self.revalidate()

    def action_refresh_tree(self) -> None:
        """Rescan the folder tree (files saved since it was read)."""
        self.query_one("#picker-tree", YamlTree).reload()

    def action_back(self) -> None:
        """Back to the picker to choose another config."""
        if not self._picker or self._in_picker():
            return
        self.plan = None
        self.error = None
        self.query_one("#config-views", ContentSwitcher).current = "picker"
        self._picker_status()
        self.query_one("#picker-tree", YamlTree).focus()
        self.refresh_bindings()

    def action_quit(self) -> None:
        """Leave without running anything."""
        self.app.exit()
