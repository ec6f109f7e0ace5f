"""One job up close: its exact command, how it ended, a live tail of its log, its CPU and RSS
over its whole life (mean cores, peak RSS: see tui/history.py), running or finished.

The tail behaves like `less +F`: it opens at the newest line and follows new ones while the view
is at the bottom; scrolled up, it stays where the operator is reading until they scroll back
down (Textual's Log follows only from its end)."""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Log, Static

from orch_tui.core.commands import requeue_refusal
from orch_tui.core.controller import Controller
from orch_tui.core.events import REQUEUEABLE, JobState, ProgressSource
from orch_tui.core.logtail import read_log
from orch_tui.core.textutil import format_bytes, format_duration, printable
from orch_tui.tui.history import Aggregate
from orch_tui.tui.screens.modals import DETACH
from orch_tui.tui.model import JobRow, RunModel
from orch_tui.tui.widgets.charts import SeriesChart, compact_bytes, cores
from orch_tui.tui.widgets.columns import format_speed
from orch_tui.tui.widgets.footer import FittedFooter

#: The log tail reads at most this much per tick, so a chatty job cannot stall the UI.
TAIL_CHUNK = 256 * 1024
#: Bytes read from the end of an existing log when the view opens.
TAIL_START = 64 * 1024


def describe_progress(row: JobRow) -> str:
    """'42.0% (ffmpeg)   speed 1.50x   fps 37   eta 0:12', or why there is no figure."""
    source = row.progress_source
    if row.progress is not None:
        text = f"{row.progress:.1%}"
        text += f" ({source.value})" if source is not ProgressSource.NONE else ""
    elif source is ProgressSource.FFMPEG and row.state.active:
        text = "- (no duration or status line from ffmpeg yet; -nostats and -v quiet hide them)"
    else:
        text = "-"
    if row.state is JobState.RUNNING:  # a paused job's speed and time left are stale
        if row.speed is not None:
            text += f"   speed {format_speed(row.speed, None)}"
        if row.fps is not None:
            text += f"   fps {row.fps:.0f}"
        if row.eta_seconds is not None:
            text += f"   eta {format_duration(row.eta_seconds)}"
    return text


class DetailScreen(Screen[None]):
    """The detail of one job; its log is shown as plain text, never markup."""

    # Only the keys that apply to the job's state now are offered (check_action): one key may
    # mean pause or resume, kill or cancel, whichever the state allows.
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("space", "pause", "Pause"),
        Binding("space", "resume", "Resume"),
        Binding("x,ctrl+k", "kill", "Kill"),
        Binding("x,c", "cancel", "Cancel"),
        Binding("r", "requeue", "Requeue"),
        Binding("q", "quit_run", "Quit"),
        DETACH,
    ]

    def __init__(self, model: RunModel, controller: Controller, job_id: int) -> None:
        super().__init__()
        self.model = model
        self.controller = controller
        self.job_id = job_id
        self._offset = 0
        self._partial = ""
        self._keys_for: tuple[JobState, bool] | None = None  # what the footer was made for
        self._cut = False  # the tail starts inside a line: shown from there, marked as cut

    def compose(self) -> ComposeResult:
        yield Static(id="detail-info")
        with Horizontal(id="detail-charts"):
            yield SeriesChart("CPU cores (mean)", Aggregate.MEAN, cores, id="detail-cpu")
            yield SeriesChart("RSS (peak)", Aggregate.MAX, compact_bytes, id="detail-rss")
        yield Log(id="detail-log", max_lines=5000, auto_scroll=True)
        yield FittedFooter()

    def on_mount(self) -> None:
        """Start the tail where the last TAIL_START bytes begin, then follow."""
        path = self.model.rows[self.job_id].log_path
        try:
            self._offset = max(0, os.path.getsize(path) - TAIL_START)
        except OSError:
            self._offset = 0
        self._cut = self._offset > 0 and read_log(path, self._offset - 1, 1) != b"\n"
        self.set_interval(0.5, self.refresh_view)
        self.refresh_view()
        # The first lines land before the log has a size, so Log cannot scroll to them yet:
        # once laid out, show the newest (from there on, Log follows while at the bottom).
        self.call_after_refresh(self._open_at_end)

    def _open_at_end(self) -> None:
        self.query_one(Log).scroll_end(animate=False, immediate=True, x_axis=False)

    def refresh_view(self) -> None:
        """Redraw the figures and append what the log gained."""
        row = self.model.rows[self.job_id]
        keys_for = (row.state, self.model.finished is None)
        if keys_for != self._keys_for:
            self._keys_for = keys_for
            self.refresh_bindings()
        elapsed = row.elapsed(self.model.clock())
        info = Text()
        info.append(f"#{row.job_id} ", style="bold")
        info.append(printable(row.name))
        info.append(f"   {row.state.value}", style="bold")
        if row.reason:
            info.append(f" ({printable(row.reason)})")
        if row.detail:  # why it failed, in the job's own words (its log's last line)
            info.append("\nreason: ", style="bold")
            info.append(row.detail, style="red")
        info.append("\ncommand: ", style="bold")
        info.append(printable(row.command))
        ended = "-" if row.exit_code is None else str(row.exit_code)
        if row.signal is not None:
            ended = f"signal {row.signal}"
        info.append("\nexit: ", style="bold")
        info.append(f"{ended}   attempt {row.attempt}   node {row.node or '-'}   "
                    f"pid {row.pid or '-'}   elapsed "
                    f"{format_duration(elapsed) if elapsed is not None else '-'}")
        info.append("\ncpu ", style="bold")
        info.append(f"{row.cpu:.2f} cores   ")
        info.append("rss ", style="bold")
        info.append(f"{format_bytes(row.rss)}   ")
        info.append("output ", style="bold")
        info.append(f"{format_bytes(row.output_bytes)}   ")
        info.append("\nprogress ", style="bold")
        info.append(describe_progress(row))
        info.append("\nlog: ", style="bold")
        info.append(str(row.log_path))
        self.query_one("#detail-info", Static).update(info)
        # The attempt's whole life in at most HISTORY_POINTS points, kept after the job ends,
        # on a time axis from the job's start.
        history = row.history
        cpu = [] if history is None else history.cpu.values()
        rss = [] if history is None else history.rss.values()
        span = None
        if history is not None and history.first is not None and history.last is not None:
            start = row.started if row.started is not None else history.first
            span = (history.first - start, history.last - start)
        over = row.state.finished
        self.query_one("#detail-cpu", SeriesChart).set_data(cpu, span, ended=over)
        self.query_one("#detail-rss", SeriesChart).set_data(rss, span, ended=over)
        self._tail(row.log_path, ended=over)

    def _tail(self, path: Path, *, ended: bool) -> None:
        """Append the log's new lines; a line still being written waits for its end, unless
        the job ended without one (its last words, often why it failed, end no line)."""
        data = read_log(path, self._offset, TAIL_CHUNK)  # never through a symlink
        if not data and not (ended and self._partial):
            return  # nothing new (a pending line is not split again every tick)
        self._offset += len(data)
        text = self._partial + data.decode("utf-8", errors="replace").replace("\r", "\n")
        lines = text.split("\n")
        self._partial = lines.pop()
        if ended and len(data) < TAIL_CHUNK and self._partial:  # all read: nothing will follow
            lines.append(self._partial)
            self._partial = ""
        if self._cut and lines:
            self._cut = False
            lines[0] = "…" + lines[0]  # its start is before the tail's
        if lines:
            self.query_one(Log).write_lines(printable(line) for line in lines)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer a job key only in the states it applies to: requeue only while the run goes on
        (once it is over nothing would run a requeued job)."""
        del parameters
        state = self.model.rows[self.job_id].state
        live = self.model.finished is None
        allowed = {
            "pause": state is JobState.RUNNING,
            "resume": state is JobState.PAUSED,
            "kill": state in (JobState.RUNNING, JobState.PAUSED, JobState.STOPPING),
            "cancel": live and state is JobState.QUEUED,
            "requeue": live and state in REQUEUEABLE,
        }
        return allowed.get(action, True)

    def action_quit_run(self) -> None:
        """The same quit dialog as the run screen (once the run is over, q leaves with its
        code, as on the finished screen)."""
        self.app.ask_quit()  # type: ignore[attr-defined]  # OrchApp's (app.py imports screens)

    def action_pause(self) -> None:
        """SIGSTOP this job."""
        self.controller.pause(self.job_id)
        self.refresh_view()

    def action_resume(self) -> None:
        """SIGCONT this job."""
        self.controller.resume(self.job_id)
        self.refresh_view()

    def action_kill(self) -> None:
        """Ask, then kill this job (or cancel it, queued: the dialog says which)."""
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.tui.screens.modals import ConfirmKill
        row = self.model.rows[self.job_id]

        dialog = ConfirmKill(self.job_id, row.name, row.state)

        def confirmed(yes: bool | None) -> None:
            if yes:
                dialog.carry_out(self.controller)
                self.refresh_view()

        self.app.push_screen(dialog, confirmed)

    def action_cancel(self) -> None:
        """Ask, then take this queued job off the queue."""
        self.action_kill()

    def action_requeue(self) -> None:
        """Run this job again (failed, killed or cancelled only)."""
        if not self.controller.requeue(self.job_id):
            self.notify(requeue_refusal(self.job_id, self.model.rows[self.job_id].state),
                        severity="warning")
        self.refresh_view()
