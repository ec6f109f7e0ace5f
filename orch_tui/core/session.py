"""Everything one run owns, set up the same way for the TUI and the headless command line:
the private state folder, the folder lock, the journal (resume and learned figures), the
joblog, the runner and the orchestrator, all wired to one event bus.

Opening checks everything that could refuse the run, in an order that writes nothing for a
usage error: the joblog first (a path that cannot be opened touches no state folder), then the
state folder, the lock and the journal."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core import tally
from orch_tui.core.events import EventBus
from orch_tui.core.joblog import JoblogWriter, PastEnd
from orch_tui.core.journal import Journal, config_json
from orch_tui.core.lock import RunLock
from orch_tui.core.orchestrator import Orchestrator
from orch_tui.core.plan import Plan
from orch_tui.core.local_runner import LocalRunner
from orch_tui.core.runner import Runner
from orch_tui.core.containment import Containment, select_containment
from orch_tui.core.control.location import fallback_base
from orch_tui.core.statedir import StateDir, StateError
from orch_tui.core.statehome import WHERE_NAME, journal_folder, make_private, where_text

#: Builds the run's runner on the running loop from the plan, its state folder and its bus: the
#: command line's choice (a cluster's, cluster/), so the core never imports a cluster backend.
RunnerFactory = Callable[[Plan, StateDir, EventBus], Runner]

#: Journal states that mean "this input's work is done" (the tally's definition).
DONE_STATES = frozenset(state.value for state in tally.DONE_STATES)
#: The StopReason values a journal row may hold (any other, from a newer orch-tui: none known).
STOP_VALUES = frozenset(reason.value for reason in ev.StopReason)


@dataclass(frozen=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per option
class RunOptions:
    """What the operator asked for on the command line."""

    max_procs: int | None = None
    overwrite: bool = False
    fresh: bool = False
    recalibrate: bool = False
    joblog: Path | None = None
    adaptive: bool = False  # --adaptive (resources.adaptive turns it on from the config too)
    argv: Sequence[str] = ()
    runner: RunnerFactory | None = None  # None: this machine's LocalRunner


def done_before(plan: Plan, journal: Journal) -> frozenset[int]:
    """Jobs a previous run finished whose completion the outputs alone cannot show: commands
    without {output_file} (with one, an existing output already counts as done)."""
    if not plan.jobs or plan.jobs[0].layout.uses_output:  # one layout: all or none write one
        return frozenset()
    previous = journal.previous_jobs()
    done = set()
    for spec in plan.jobs:
        record = previous.get(spec.entry.location)
        if record is not None and record.state in DONE_STATES:
            done.add(spec.job_id)
    return frozenset(done)


def recovered_before(plan: Plan, journal: Journal) -> dict[int, ev.JobRecovered]:
    """Successes a run that died did not live to record: the journal has the job's attempt as
    still running, yet its final output is there, put in place after that attempt began. A job's
    output is renamed into place only when it succeeded, a few ms before the journal commits
    the end; a kill -9 in between left the output and no record, and the joblog without its
    line. Each comes back as the JobRecovered the orchestrator tells (its `time` is set then)."""
    if not plan.existing:
        return {}
    interrupted = {record.input_path: record for record in journal.interrupted_jobs()}
    if not interrupted:  # the last run ended as runs do: nothing to look for
        return {}
    found: dict[int, ev.JobRecovered] = {}
    for spec in plan.jobs:
        record = interrupted.get(spec.entry.location)
        if record is None or record.started is None or spec.job_id not in plan.existing:
            continue
        try:
            # The change time: the rename into place sets it, a command cannot set it back
            # (`cp -p` and `rsync -t` set the last write's time to their input's).
            written = os.stat(spec.output_path).st_ctime
        except OSError:
            continue
        if written >= record.started:
            found[spec.job_id] = ev.JobRecovered(time=0.0,
                                                 job_id=spec.job_id,
                                                 name=spec.name,
                                                 attempt=record.attempts,
                                                 started_wall=record.started,
                                                 ended_wall=written,
                                                 node=record.node)
    return found


@dataclass(frozen=True)
class Backfill:
    """What a resume did for the joblog lines the last run, killed, committed to its journal
    but never wrote: how many it wrote, and how many it could not (its config changed since,
    so the commands that ran are not known)."""

    written: int = 0
    unknown: int = 0


def backfill_joblog(plan: Plan, journal: Journal, joblog: JoblogWriter) -> Backfill:
    """Write to `joblog` the lines the last run committed to its journal but died before
    writing there (the journal commits a job's end before anyone hears of it, the joblog
    included): only into the very file that run wrote to, and only lines that are not there
    from where that run began."""
    died = journal.died_run()
    if died is None or died.joblog is None:
        return Backfill()
    specs = {spec.entry.location: spec for spec in plan.jobs}
    ends = []
    for record in journal.finished_in(died.run_id):
        spec = specs.get(record.input_path)
        if spec is None or record.started is None or record.ended is None:
            continue  # an input no longer listed: its line cannot be written as it was
        stop = ev.StopReason(record.stop) if record.stop in STOP_VALUES else None
        seq = spec.job_id if record.seq is None else record.seq
        ends.append(
            PastEnd(spec, record.started, record.ended, ev.JobState(record.state), record.exit_code,
                    record.signal, stop, record.node, seq))
    missing = joblog.missing(ends, died.joblog)
    if missing and died.config != config_json(plan):
        return Backfill(unknown=len(missing))
    return Backfill(written=joblog.backfill(missing))


# pylint: disable-next=too-many-instance-attributes  # the run's resources, each closed in order
class RunSession:
    """Open with `RunSession.open(plan, options)` (it raises LockError/JournalError before
    anything runs), then `await run()`; `close()` always."""

    # Called by open() only, one argument per resource.
    # pylint: disable-next=too-many-arguments,too-many-positional-arguments
    def __init__(self, plan: Plan, options: RunOptions, bus: EventBus, state: StateDir,
                 lock: RunLock, journal: Journal, joblog: JoblogWriter | None,
                 containment: Containment | None) -> None:
        self.plan = plan
        self.options = options
        self.bus = bus
        self.state = state
        self.lock = lock
        self.journal = journal
        self.joblog = joblog
        self.orchestrator: Orchestrator | None = None
        #: Where the journal and socket went off a network filesystem (one line), else None.
        self.where: str | None = None
        self.resumed = 0
        self.seeded = False
        self.backfilled = Backfill()  # joblog lines the last run died before writing
        self._closed = False
        self._joblog_error: Exception | None = None
        #: The local runner's containment until start hands it over (close closes it if not).
        self._containment = containment

    @classmethod
    def open(cls, plan: Plan, options: RunOptions, bus: EventBus | None = None) -> RunSession:
        """Choose the local runner's containment, open the joblog, lock the output folder, open
        the private state folder, the lock file and the journal, in that order (each raises an
        OrchError with one clear line, and a refusal leaves nothing new behind: a containment
        that cannot be had refuses before any file is made); nothing runs yet."""
        containment = None if options.runner is not None else select_containment(plan.run_token)
        output_dir = plan.config.directories.output_dir
        lock, state, joblog = RunLock(output_dir), None, None
        try:
            if options.joblog is not None:
                joblog = JoblogWriter(options.joblog, plan, hosts=options.runner is not None)
            lock.acquire_folder()
            state = StateDir.open(output_dir)
            lock.acquire_file(state)
            folder, where = local_journal(state)
            journal = Journal.open(folder, move_damaged=options.fresh)
        except BaseException:
            lock.release()
            if state is not None:
                state.close()
            if joblog is not None:
                joblog.discard()
            if containment is not None:
                containment.close()
            raise
        session = cls(plan, options, bus or EventBus(), state, lock, journal, joblog, containment)
        session.where = where
        return session

    def start(self) -> Orchestrator:
        """Build the runner and orchestrator on the running loop (call from async code)."""
        options = self.options
        skip = frozenset() if options.fresh or options.overwrite else done_before(
            self.plan, self.journal)
        recovered = {} if options.fresh or options.overwrite else recovered_before(
            self.plan, self.journal)
        profile = None
        if not (options.fresh or options.recalibrate) and options.max_procs is None:
            profile = self.journal.last_profile()
        self.resumed, self.seeded = len(skip), profile is not None
        # The runner first: a runner that cannot be had refuses the run before the journal
        # records a run that never started.
        runner: Runner
        if options.runner is not None:
            runner = options.runner(self.plan, self.state, self.bus)
        else:
            containment, self._containment = self._containment, None  # the runner's from now
            runner = LocalRunner(self.plan.config.directories.output_dir,
                                 state=self.state,
                                 run_token=self.plan.run_token,
                                 containment=containment)
        try:
            joblog = None
            if self.joblog is not None:
                if not options.fresh:
                    self.backfilled = backfill_joblog(self.plan, self.journal, self.joblog)
                joblog = self.joblog.mark()
            self.journal.start_run(self.plan, list(options.argv), joblog)
        except BaseException:
            runner.close()
            raise
        self.bus.add_listener(self.journal.listener, first=True)
        self.journal.hold_reports(self.bus, asyncio.get_running_loop())
        if self.joblog is not None:
            self.bus.add_listener(self.joblog)
        self.orchestrator = Orchestrator(self.plan,
                                         runner,
                                         self.bus,
                                         max_procs=options.max_procs,
                                         overwrite=options.overwrite,
                                         done_before=skip,
                                         recovered=recovered,
                                         profile=profile,
                                         state=self.state,
                                         adaptive=options.adaptive)
        orchestrator = self.orchestrator
        # Without the journal a later resume could redo finished work: launch nothing more.
        self.journal.on_error = lambda line: orchestrator.stop_launching(
            f"{line}: no more launches; running jobs finish; free the disk (or stop the program "
            "holding the journal) and run the same command again")
        return self.orchestrator

    def describe_resume(self) -> str | None:
        """One line on what the journal contributed (after start), or None for nothing."""
        parts = []
        if self.resumed:
            parts.append(f"{self.resumed} jobs done in a previous run are skipped")
        if self.seeded:
            parts.append("figures learned in a previous run replace calibration "
                         "(--recalibrate measures again)")
        written, unknown = self.backfilled.written, self.backfilled.unknown
        if written:
            lines = "line" if written == 1 else "lines"
            parts.append(f"the joblog gets the {written} {lines} the last run, killed, "
                         "recorded in its journal but never wrote there")
        if unknown:
            lines = "line" if unknown == 1 else "lines"
            parts.append(f"the joblog lacks {unknown} {lines} of jobs the last run, killed, "
                         "recorded in its journal: not written, as the config changed since")
        return "resume: " + "; ".join(parts) if parts else None

    async def run(self) -> int:
        """Start (if not yet) and run to the end; returns the run's exit code."""
        orchestrator = self.orchestrator or self.start()
        return await orchestrator.run()

    def errors(self) -> list[str]:
        """Journal or joblog write failures (closing never raises, so the lock is always
        released; the operator is told afterwards)."""
        found = [self.journal.error, self._joblog_error]
        return [str(error) for error in found if error is not None]

    def close(self) -> None:
        """Flush the journal and joblog, release the lock (safe to call twice)."""
        if self.joblog is not None:
            self.joblog.close()
            self._joblog_error = self.joblog.error
            self.joblog = None
        if self._containment is not None:
            self._containment.close()
            self._containment = None
        if not self._closed:
            self._closed = True
            self.journal.close()
            self.state.close()
            self.lock.release()


def local_journal(state: StateDir) -> tuple[Path, str | None]:
    """The folder for the run's journal, and the line saying so when it is not the shared state
    folder: an output folder on a network filesystem keeps its journal on this machine's disk,
    and `journal.where` in the shared state folder says where (core/statehome.py)."""
    folder, kind = journal_folder(state.output_dir)
    if kind is None:
        return folder, None
    make_private(folder)
    try:
        fd = state.open_file(WHERE_NAME, os.O_WRONLY | os.O_TRUNC)
    except OSError as exc:
        raise StateError(f"{state.path / WHERE_NAME}: cannot record where the journal is: "
                         f"{exc.strerror or exc}") from None
    try:
        os.write(fd, where_text(folder))
    finally:
        os.close(fd)
    return folder, (f"the output folder is on {kind}: the journal and the control socket are on "
                    f"this machine, in {folder} and {fallback_base()}")
