"""GNU parallel's `--joblog` file, written line for line as parallel writes it.

Operators already have scripts (and `parallel --resume-failed`) that read this format, so it is
matched exactly (checked against GNU parallel 20221122): a tab-separated header, then one line
per job that ran, `Starttime` as epoch seconds `%.3f`, `JobRuntime` as `%10.3f` truncated to the
millisecond, Host ":" for the local machine (a cluster run's node name instead, as parallel names
its remote hosts). Exitval 0 with Signal 0 means success and nothing
else does: a job the orchestrator itself ended (timeout, kill, interrupt) gets Exitval -1 as
parallel gives its own kills, and so does one that exited 0 but was still judged failed (no
output). Like parallel with --retries, only a job's last attempt is logged. A job the operator
cancelled (took off the queue) gets no line, like every job that never ran: parallel logs only
jobs it ran, and `parallel --resume` runs again every job without a line, just as our resume
runs a cancelled job again.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from orch_tui.core import events as ev
from orch_tui.core.errors import OrchError
from orch_tui.core.events import JobState, StopReason
from orch_tui.core.plan import JobSpec, Plan, shell_quote

FIELDS = ("Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal",
          "Command")
HEADER = "\t".join(FIELDS) + "\n"
#: Exitval for a job ended by the orchestrator rather than by itself (GNU parallel's value).
KILLED_EXITVAL = -1


@dataclass(frozen=True, slots=True)
class JoblogMark:
    """Which joblog a run writes: its real path, its file (`dev:ino`: a file moved aside and
    replaced is another one) and its size when the run began (where that run's lines start)."""

    path: str
    file: str
    offset: int


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: what one joblog line says
class PastEnd:
    """A job's end that a run which then died committed to its journal: what its line needs."""

    spec: JobSpec
    started: float  # epoch seconds, as the run's joblog wrote them
    ended: float
    state: JobState
    exit_code: int | None
    signal: int | None
    stop: StopReason | None
    node: str
    seq: int  # its Seq in the run that ran it


def exitval(event: ev.JobStateChanged | PastEnd) -> int:
    """The Exitval column for a job's final state."""
    code = event.exit_code or 0
    ended_by_us = event.state is JobState.KILLED or event.stop in (StopReason.TIMEOUT,
                                                                   StopReason.MEMORY)
    if ended_by_us and not code:
        return KILLED_EXITVAL  # parallel keeps its -1 unless the job exited non-zero itself
    if event.state is JobState.FAILED and not code and not event.signal:
        return KILLED_EXITVAL  # exit 0 yet failed: must not read as success
    return code


def format_line(spec: JobSpec,
                start_wall: float,
                runtime: float,
                event: ev.JobStateChanged | PastEnd,
                host: str = ":") -> str:
    """One joblog line (with its newline) for a job that reached a final state."""
    runtime = int(max(0.0, runtime) * 1000) / 1000
    # One job stays one line and the columns stay apart: shell_quote writes a newline or tab
    # of an argument as `$'...'` escapes.
    command = shell_quote(spec.display_argv)
    seq = event.seq if isinstance(event, PastEnd) else spec.job_id
    fields = (str(seq), host, f"{start_wall:.3f}", f"{runtime:10.3f}", "0", "0",
              str(exitval(event)), str(event.signal or 0), command)
    return "\t".join(fields) + "\n"


# The writer's file, its columns and its error state.
# pylint: disable-next=too-many-instance-attributes
class JoblogWriter:
    """Bus listener appending one line per finished job (write + flush, no fsync)."""

    def __init__(self, path: Path, plan: Plan, *, hosts: bool = False) -> None:
        """Open `path` for appending; the header is written only when the file is new or empty
        (an existing joblog is continued, as `parallel --resume` does). OrchError if it cannot
        be opened. With `hosts` (a cluster run) the Host column names each job's node."""
        self.path = Path(path)
        self._hosts = hosts
        self.error: OrchError | None = None
        self._specs = {spec.job_id: spec for spec in plan.jobs}
        # job_id -> (attempt, wall-clock start, loop-clock start, node) of the attempt in
        # progress.
        self._starts: dict[int, tuple[int, float, float, str]] = {}
        # A FAILED line held back for one event: a retry re-queues the job right after it.
        self._held: tuple[int, str] | None = None
        # job_id -> the line of a failed attempt whose retry is queued, until the retry starts.
        self._retried: dict[int, str] = {}
        self._created = False
        _refuse_the_runs_own(self.path, plan)
        self._file = self._open()
        try:
            if os.fstat(self._file.fileno()).st_size == 0:
                self._write(HEADER)
            elif not _ends_with_newline(self._file.fileno()):
                self._write("\n")  # a line cut short by a crash must not swallow ours
        except OSError as exc:
            self._fail(exc)
        if self.error is not None:
            self.discard()
            raise self.error
        self._closed = False

    def __call__(self, event: ev.Event) -> None:
        """RUNNING remembers the start; a final state writes the job's line; a success the last
        run died before recording gets the line that run never wrote."""
        if self._closed:
            return
        if self._held is not None:
            self._settle_held(event)
        if isinstance(event, ev.JobRecovered):
            self._recovered(event)
        if not isinstance(event, ev.JobStateChanged):
            return
        job_id, state = event.job_id, event.state
        if state is JobState.RUNNING:
            self._retried.pop(job_id, None)  # the retry runs: its own line replaces that one
            start = self._starts.get(job_id)
            # Not a resume after a pause: a new attempt, or one started over on another node.
            if start is None or start[0] != event.attempt or event.restarted:
                wall = time.time() if event.started_wall is None else event.started_wall
                self._starts[job_id] = (event.attempt, wall, event.time, event.node)
            return
        if not state.finished:
            return
        start = self._starts.pop(job_id, None)
        owed = self._retried.pop(job_id, None)
        if start is None and owed is not None:  # its retry never ran: the failed attempt's line
            self._write(owed)
            return
        spec = self._specs.get(job_id)
        # Skipped, or cancelled while queued (even after an attempt the memory guard requeued):
        # not run to an end, so parallel logs nothing and its --resume runs it again.
        if start is None or spec is None or state is JobState.CANCELLED:
            return
        host = start[3] if self._hosts and start[3] else ":"
        line = format_line(spec, start[1], event.time - start[2], event, host)
        if state is JobState.FAILED:
            self._held = (job_id, line)
        else:
            self._write(line)

    def _settle_held(self, event: ev.Event) -> None:
        """The event after a FAILED line: a retry queued at once keeps the line owed until the
        retry runs (parallel logs only the last attempt); anything else writes it."""
        assert self._held is not None
        job_id, line = self._held
        self._held = None
        if (isinstance(event, ev.JobStateChanged) and event.job_id == job_id
                and event.state is JobState.QUEUED):
            self._retried[job_id] = line  # owed if the retry never runs
        else:
            self._write(line)

    def mark(self) -> JoblogMark:
        """This joblog as it is now: where the lines of a run starting now begin (the journal
        keeps it for `missing`)."""
        self._file.flush()
        info = os.fstat(self._file.fileno())
        return JoblogMark(os.path.realpath(self.path), f"{info.st_dev}:{info.st_ino}", info.st_size)

    def missing(self, ends: Iterable[PastEnd], since: JoblogMark) -> list[PastEnd]:
        """The `ends` whose lines are not among those written from `since` on, when this is
        still the file the run that wrote them had then; [] otherwise (moved aside, replaced,
        cut shorter) or when it cannot be read (an error told at the end)."""
        if self._closed:
            return []
        now = self.mark()
        if (now.path, now.file) != (since.path, since.file) or now.offset < since.offset:
            return []
        try:
            logged = self._logged_from(since.offset)
        except OSError as exc:
            self._fail(exc)
            return []
        return [end for end in ends if (str(end.seq), f"{end.started:.3f}") not in logged]

    def backfill(self, ends: Iterable[PastEnd]) -> int:
        """Write the lines of `ends` (from `missing`), in the order they ended; how many."""
        written = 0
        for end in sorted(ends, key=lambda end: end.ended):
            host = end.node if self._hosts and end.node else ":"
            self._write(format_line(end.spec, end.started, end.ended - end.started, end, host))
            written += 1
        return written

    def _logged_from(self, offset: int) -> set[tuple[str, str]]:
        """(Seq, Starttime) of the whole lines written from `offset` on (a line cut short by a
        crash has fewer than the nine fields and is no line). One read: a run's own lines."""
        fd = self._file.fileno()
        written = os.pread(fd, max(0, os.fstat(fd).st_size - offset), offset)
        found: set[tuple[str, str]] = set()
        for line in written.split(b"\n"):
            fields = line.split(b"\t")
            if len(fields) == len(FIELDS) and fields[0] != b"Seq":
                found.add((fields[0].decode("ascii",
                                            "replace"), fields[2].decode("ascii", "replace")))
        return found

    def _recovered(self, event: ev.JobRecovered) -> None:
        spec = self._specs.get(event.job_id)
        if spec is not None:  # a success: Exitval 0, Signal 0, as any success's line
            self.backfill([
                PastEnd(spec, event.started_wall, event.ended_wall, JobState.SUCCEEDED, 0, None,
                        None, event.node, spec.job_id)
            ])

    def _open(self) -> TextIO:
        """Append to the joblog, never through a symlink planted at its name (O_NOFOLLOW), never
        world-writable; OrchError (exit 2) when it cannot be opened, before any run state is
        touched."""
        flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o664)
                self._created = True
            except FileExistsError:
                fd = os.open(self.path, flags)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno == errno.ELOOP:
                reason = "it is a symlink; refusing to write through it"
            raise OrchError(f"cannot write the joblog {self.path}: {reason}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OrchError(f"cannot write the joblog {self.path}: not a plain file")
        return open(fd, "a", encoding="utf-8", errors="surrogateescape")

    def discard(self) -> None:
        """The run never started: close, and remove the joblog if this run created it."""
        self._closed = True
        try:
            self._file.close()
        except OSError:
            pass
        if self._created:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def close(self) -> None:
        """Write any held line and close the file; idempotent, never raises (see `error`)."""
        if self._closed:
            return
        if self._held is not None:
            self._write(self._held[1])
            self._held = None
        self._closed = True
        try:
            self._file.close()
        except OSError as exc:
            self._fail(exc)

    def _write(self, text: str) -> None:
        if self.error is not None:
            return
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        if self.error is None:
            self.error = OrchError(f"cannot write the joblog {self.path}: {exc.strerror or exc}")


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def _refuse_the_runs_own(path: Path, plan: Plan) -> None:
    """OrchError (exit 2) when `path` is one of the run's own files: its input list or config
    (lines appended there become inputs, or break it), anything in its state folder (the
    journal), or one of its outputs (a success's rename would replace the joblog)."""
    real = os.path.realpath(path)
    state = os.path.realpath(plan.state_dir)
    what = ""
    if real == state or real.startswith(state + os.sep):
        what = f"inside the run's state folder {plan.state_dir}"
    elif (os.path.dirname(real) == os.path.realpath(plan.config.directories.output_dir)
          and any(spec.output_name == os.path.basename(real) for spec in plan.jobs)):
        what = "one of the run's outputs"
    else:
        for name, other in (("the input list", plan.config.directories.input_file_list),
                            ("the config", plan.config.path)):
            try:
                if os.path.samefile(path, other):
                    what = name
            except OSError:
                continue  # one of them does not exist (yet): not the same file
    if what:
        raise OrchError(f"cannot write the joblog {path}: it is {what}")
