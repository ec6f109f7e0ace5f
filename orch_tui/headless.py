"""The headless observer: plain progress lines for scripts, logs and `nohup`.

It sees the run only through the event stream, exactly like the TUI, and writes one line per
thing worth knowing: the preflight summary, the calibration result, throttled progress lines,
each failure with its log, and a final summary.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from orch_tui.core import events as ev
from orch_tui.core.events import JobState, LimitSource
from orch_tui.core.logtail import describe_failure
from orch_tui.core.scaling import FLOOR_NOTE, CapacitySource, ScalingDecision
from orch_tui.core.snapshot import CalibrationStatus, JobView, RunSnapshot, find_job
from orch_tui.core.tally import Tally
from orch_tui.core.textutil import format_bytes, format_duration, printable


def _silence(stream: TextIO) -> None:
    """A broken stdout must not raise again when the interpreter flushes it at exit."""
    if stream is sys.stdout:
        # stdout's descriptor now leads nowhere: the exit-time flush succeeds silently.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    try:
        stream.flush()
        if stream is not sys.stdout:
            stream.close()
    except (OSError, ValueError):
        pass


#: A job's memory when no figure is its own: it ended before the monitor's first sample, and
#: wait4's figure was this process's (local_runner._own_peak).
UNMEASURED = "not measured (the job ended before a sample)"


def describe_decision(decision: ScalingDecision) -> str:
    """One line with the three constraints, the binding one and the limit; a constraint that
    allows less than one job shows its raw figure and why one runs anyway (never `-> 0`)."""
    parts = []
    units = {"cpu": "cores", "memory": "", "disk": ""}
    for constraint in decision.constraints:
        if constraint.name == "cpu":
            per = f"{constraint.per_process:.2f} {units['cpu']}"
            system = f"{constraint.system:g} cores"
        else:
            per = format_bytes(int(constraint.per_process))
            system = format_bytes(int(constraint.system))
        system += constraint.source.note
        if constraint.below_one:  # the raw figure, and why the limit is 1 and not 0
            allowed = f"= {constraint.raw:.2g} -> {FLOOR_NOTE}"
        else:
            allowed = "-> " + ("does not bind"
                               if constraint.allowed is None else f"{constraint.allowed}")
        mark = "*" if constraint.name == decision.binding else ""
        if constraint.name == "memory" and not constraint.per_process:
            parts.append(f"{mark}memory {UNMEASURED} {allowed}")
            continue
        parts.append(f"{mark}{constraint.name} {per}/proc of {system} x{constraint.fraction:g}"
                     f" {allowed}")
    return f"{' | '.join(parts)} => limit {decision.limit} ({decision.binding} binds)"


class RunLog(io.TextIOWrapper):
    """run.log: every line starts with the local time it was written (ISO 8601, seconds), since
    nobody watches it live: it is read later, to learn what happened when."""

    def __init__(self, fd: int, clock: Callable[[], float] = time.time) -> None:
        super().__init__(io.FileIO(fd, "a"), encoding="utf-8", line_buffering=True)
        self._clock = clock
        self._at_line_start = True
        self._stamped: tuple[int, str] = (-1, "")  # (second, its stamp): two lines a job

    def _stamp(self) -> str:
        second = int(self._clock())
        if second != self._stamped[0]:
            self._stamped = (second, datetime.datetime.fromtimestamp(second).astimezone().isoformat(
                timespec="seconds"))
        return self._stamped[1]

    def write(self, text: str) -> int:
        """Write `text`, stamping the start of every line in it."""
        stamp = self._stamp()
        out = []
        for piece in text.splitlines(keepends=True):
            if self._at_line_start:
                out.append(f"{stamp} ")
            out.append(piece)
            self._at_line_start = piece.endswith("\n")
        super().write("".join(out))
        return len(text)


# One reporter's output state: stream, throttle, counts, limit.
#: How long a progress line due at a job's end waits for the ends of the same instant and the
#: launches they free (a loop turn or two; well under what a reader notices).
SETTLE_SECONDS = 0.05


# pylint: disable-next=too-many-instance-attributes
class HeadlessReporter:
    """Prints the run's events as lines to `stream`; call it with each event."""

    def __init__(self,
                 stream: TextIO | None = None,
                 *,
                 progress_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 fallback: Callable[[], TextIO] | None = None) -> None:
        """`fallback` opens where lines go once `stream` cannot take them (stdout closed, a
        broken pipe): the run goes on and keeps its record in run.log."""
        self._fallback = fallback
        stream = stream if stream is not None else sys.stdout
        if stream is None and fallback is not None:
            stream, self._fallback = fallback(), None
        # pylint: disable-next=consider-using-with  # lives as long as the reporter
        self.stream: TextIO = stream or open(os.devnull, "w", encoding="utf-8")
        self.progress_every = progress_every
        self._clock = clock
        self._tally = Tally()
        self._total = 0
        self._last_progress = float("-inf")
        self._limit = 0
        self._log_paths: dict[int, str] = {}
        self._views: Sequence[JobView] = ()
        self._capacity_said = False
        # What calibration is doing, while it measures (`calibrating job 1 (2.0 s left)`): no
        # running count, no limit and no ETA mean anything until it ends.
        self._calibrating: str | None = None
        self._calibration_job: int | None = None
        # A progress line due at a job's end, printed SETTLE_SECONDS later (see _due).
        self._pending: asyncio.TimerHandle | None = None
        # One dispatch idiom for every observer: a table from event type to handler.
        self._handlers: dict[type[ev.Event], Callable[[Any], None]] = {
            ev.PreflightDone: self._on_preflight_done,
            ev.Notice: self._on_notice,
            ev.CalibrationStarted: self._on_calibration_started,
            ev.CalibrationProgress: self._on_calibration_progress,
            ev.CalibrationFinished: self._on_calibration_finished,
            ev.LimitChanged: self._on_limit_changed,
            ev.ResourcePressure: self._on_resource_pressure,
            ev.SystemSample: self._on_system_sample,
            ev.JobStateChanged: self._on_job_state_changed,
            ev.JobSample: self._on_job_sample,
            ev.RunFinished: self._on_run_finished,
        }

    def register_logs(self, paths: dict[int, str]) -> None:
        """Tell the reporter where each job's log is, for failure lines."""
        self._log_paths.update(paths)

    def _log_of(self, job_id: int) -> str | None:
        log = self._log_paths.get(job_id)
        if log is None and (view := find_job(self._views, job_id)) is not None:
            log = str(view.log_path)
        return log

    def adopt(self, snapshot: RunSnapshot) -> None:
        """Attached midway (the TUI's terminal went away): go on from the run's state."""
        self._tally = snapshot.tally()
        self._total, self._limit = snapshot.counts.total, snapshot.limit
        self._views = snapshot.jobs  # a job's log path is looked up when it fails
        if snapshot.calibration is CalibrationStatus.MEASURING and snapshot.calibration_job:
            self._calibration_job = snapshot.calibration_job
            self._calibrating = f"calibrating job {snapshot.calibration_job}"

    def write(self, line: str) -> None:
        """Print one line; a closed terminal (SIGHUP), a closed stdout or a broken pipe must
        not stop the run: the line and the ones after it go to the fallback (run.log)."""
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            if self._fallback is None:
                return
            broken, self.stream, self._fallback = self.stream, self._fallback(), None
            _silence(broken)
            self.write(line)

    def __call__(self, event: ev.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # --- event handlers (see the table in __init__) ------------------------------------------

    def _on_preflight_done(self, event: ev.PreflightDone) -> None:
        self._total = event.total
        self._tally.apply(event)
        self.write(f"preflight: {event.total} inputs ({format_bytes(event.input_bytes)}): "
                   f"{event.runnable} to run, {event.skipped} already done, "
                   f"{event.missing} missing, {event.duplicates} duplicate lines ignored")

    def _on_notice(self, event: ev.Notice) -> None:
        self.write(f"{event.level.value}: {printable(event.message)}")

    def _on_calibration_started(self, event: ev.CalibrationStarted) -> None:
        self._calibration_job = event.job_id
        self._calibrating = f"calibrating job {event.job_id} ({event.window:.1f} s left)"
        self.write(f"calibrating: measuring job {event.job_id} for {event.window:g}s")

    def _on_calibration_progress(self, event: ev.CalibrationProgress) -> None:
        left = max(0.0, event.window - event.elapsed)
        self._calibrating = f"calibrating job {event.job_id} ({left:.1f} s left)"

    def _on_calibration_finished(self, event: ev.CalibrationFinished) -> None:
        self._calibrating = self._calibration_job = None
        if event.source is LimitSource.PREVIOUS_RUN:
            self.write(f"figures learned in a previous run: {describe_decision(event.decision)}")
            return
        how = ("whole-life figures (job ended inside the window)"
               if event.source is LimitSource.WHOLE_LIFE else "window")
        basis = event.output_basis
        output = "" if basis is None else f"; output est. from {basis.value}"
        self.write(f"calibration ({how}): {describe_decision(event.decision)}{output}")

    def _on_limit_changed(self, event: ev.LimitChanged) -> None:
        self._limit = event.limit
        if not event.source.measured:
            # The run's first limit (previous 0: none yet) changes nothing: it is just said.
            change = f"{event.previous} -> " if event.previous else ""
            self.write(f"limit: {change}{event.limit} ({event.reason})")

    def _on_resource_pressure(self, event: ev.ResourcePressure) -> None:
        self.write(f"{event.resource.value}: {event.message} "
                   f"(available {format_bytes(event.available)}, "
                   f"reserve {format_bytes(event.reserve)})")

    def _on_system_sample(self, event: ev.SystemSample) -> None:
        """Once, when a cgroup's limit is what the run divides: say so, with its figures."""
        host = CapacitySource.HOST
        if self._capacity_said or (event.cores_source is host and event.memory_source is host):
            return
        self._capacity_said = True
        self.write(f"capacity: {event.logical_cores} cores{event.cores_source.note}, memory "
                   f"{format_bytes(event.total_memory)}{event.memory_source.note} "
                   f"({format_bytes(event.available_memory)} available)")

    def _on_job_state_changed(self, event: ev.JobStateChanged) -> None:
        self._tally.change(event)
        now = self._clock()
        if event.job_id == self._calibration_job and event.state.finished:
            self._calibration_ended(event.state)
        if event.state in (JobState.FAILED, JobState.KILLED, JobState.MISSING):
            log = self._log_of(event.job_id)
            where = f" (log: {printable(log)})" if log and event.state is not JobState.MISSING \
                else ""
            reason = describe_failure(event.reason, event.detail)
            self.write(f"{event.state.value.upper()} #{event.job_id} {printable(event.name)}: "
                       f"{printable(reason)}{where}")
        if isinstance(self.stream, RunLog):
            self._log_job(event)
        if event.state.finished and event.state is not JobState.SKIPPED:
            if now - self._last_progress >= self.progress_every:
                self._due()

    def _due(self) -> None:
        """Print the progress line once the ends of the same instant and the launches they free
        are in: printed at the first of three jobs ending together it said `running 1 (limit
        3)` while three ran a moment later, and its ETA counted one end where three came. Said
        at once outside an event loop (a reporter driven by hand)."""
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.progress()
            return
        self._last_progress = self._clock()  # due now: the ends of the next instants wait
        self._pending = loop.call_later(SETTLE_SECONDS, self._settled)

    def _settled(self) -> None:
        self._pending = None
        self.progress()

    def _on_job_sample(self, event: ev.JobSample) -> None:
        """The running jobs' progress: the work the ETA is measured by."""
        self._tally.apply(event)

    def _log_job(self, event: ev.JobStateChanged) -> None:
        """run.log's line per job start and end (failures already have theirs)."""
        name = printable(event.name)
        if event.state is JobState.RUNNING and event.previous is not JobState.PAUSED:
            where = f" on {printable(event.node)}" if event.node else ""
            self.write(f"start #{event.job_id} {name}: attempt {event.attempt}, "
                       f"pid {event.pid}{where}")
        elif event.state in (JobState.SUCCEEDED, JobState.SKIPPED):
            reason = f": {printable(event.reason)}" if event.reason else ""
            self.write(f"{event.state.value} #{event.job_id} {name}{reason}")

    def _on_run_finished(self, event: ev.RunFinished) -> None:
        if self._pending is not None:  # the summary says it all, and last
            self._pending.cancel()
            self._pending = None
        self.write(self.summary_line(event))

    @staticmethod
    def summary_line(event: ev.RunFinished) -> str:
        """The run's last line (`done: 3 succeeded, 1 failed, ... (exit 1)`): headless ends with
        it, and so does the terminal when the TUI exits (cli.py)."""
        counts = event.counts
        names = ("succeeded", "failed", "killed", "skipped", "missing")
        summary = ", ".join(f"{counts.get(name, 0)} {name}" for name in names)
        if counts.get("cancelled", 0):  # taken off the queue by the operator: not a failure
            summary += f", {counts['cancelled']} cancelled"
        queued = counts.get("queued", 0)
        if queued:
            summary += f", {queued} not run"
        how = "interrupted" if event.interrupted else "done"
        return (f"{how}: {summary} in {format_duration(event.wall_seconds)} "
                f"(exit {event.exit_code})")

    # --- progress

    def progress(self, now: float | None = None) -> None:
        """Print `[ended/total] running N (limit N)  failed N  ETA h:mm:ss` (killed and paused
        jobs named when there are any: they are never inside failed and running)."""
        now = self._clock() if now is None else now
        self._last_progress = now
        if self._calibrating is not None:
            self.write(self._calibration_line())
            return
        counts = self._tally.counts()
        ended = counts.ended
        running = f"running {counts.running}"
        if counts.paused:
            running += f", paused {counts.paused}"
        if counts.stopping:
            running += f", stopping {counts.stopping}"
        failed = f"failed {counts.failed}"
        if counts.killed:
            failed += f", killed {counts.killed}"
        eta_text = self._tally.eta(now).text()
        self.write(f"[{ended:>{len(str(self._total))}}/{self._total}] {running} "
                   f"(limit {self._limit})  {failed}  ETA {eta_text}")

    def _calibration_ended(self, state: JobState) -> None:
        """The measured job ended inside its window: the figures follow, or (it failed) the
        next queued job is measured instead."""
        job_id, counts = self._calibration_job, self._tally.counts()
        if state is JobState.SUCCEEDED:
            self._calibrating = f"calibrating: job {job_id} ended, deriving the limit"
        elif counts.ended < self._total:
            self._calibrating = f"calibrating: job {job_id} {state.value}, measuring the next"
        else:
            self._calibrating = f"calibrating: job {job_id} {state.value}"

    def _calibration_line(self) -> str:
        """`[1/4] calibrating job 2 (2.0 s left)  failed 1`: the progress line while the limit
        is still being measured."""
        assert self._calibrating is not None
        counts = self._tally.counts()
        return (f"[{counts.ended:>{len(str(self._total))}}/{self._total}] {self._calibrating}"
                f"  failed {counts.failed}")
