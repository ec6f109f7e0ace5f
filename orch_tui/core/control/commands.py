"""A client's commands, carried out on the run and answered with what happened.

The answer names the job's state when a command does not apply ("job 3 is queued: nothing to
pause"); the states come from the snapshot the client got and the events since, the same
facts the client sees, except the commanded job's own: the run's events can be held (while the
journal commits an end), so a run that can tell (`LiveStates`) is asked for it, and a resume
right after an accepted pause is judged by the pause, not by the event not yet delivered.
`refusal` is the rule both ends use: the run to answer, a remote TUI to predict the answer
(and show it at once) while the command is on its way."""

from __future__ import annotations

import signal
from typing import Protocol, runtime_checkable

from orch_tui.core import events as ev
from orch_tui.core.commands import NOT_REQUEUEABLE, requeue_refusal
from orch_tui.core.config import MAX_JOBS
from orch_tui.core.controller import RunControl
from orch_tui.core.events import REQUEUEABLE, JobState
from orch_tui.core.snapshot import RunSnapshot, job_states
from orch_tui.core.wire import Command


@runtime_checkable
class LiveStates(Protocol):
    """A run that can tell a job's state as the scheduler has it now (the run's own host)."""

    def job_state(self, job_id: int) -> JobState | None:
        """The job's state now; None for no such job."""

    def run_stopping(self) -> bool:
        """True once a stop (or drain) began: nothing launches any more."""


_PAST = {"pause": "paused", "resume": "resumed", "kill": "killed", "requeue": "requeued"}
_REFUSED = {
    "pause": "nothing to pause",
    "resume": "not paused",
    "kill": "nothing to kill",
    "requeue": NOT_REQUEUEABLE,
    "cancel": "only a queued job can be cancelled",
}
#: The states each job command applies to: the orchestrator's own rules (core/commands.py,
#: lifecycle.py), which decide in the end (a job may change state on the way).
APPLIES: dict[str, frozenset[JobState]] = {
    "pause": frozenset({JobState.RUNNING}),
    "resume": frozenset({JobState.PAUSED}),
    "kill": frozenset({JobState.QUEUED, JobState.RUNNING, JobState.PAUSED, JobState.STOPPING}),
    "requeue": REQUEUEABLE,
    "cancel": frozenset({JobState.QUEUED}),
}


class JobStates:
    """Every job's state and whether the run is over, as a client sees them: the snapshot,
    then the events."""

    def __init__(self) -> None:
        self.states: dict[int, JobState] = {}
        self.over = False

    def seed(self, snapshot: RunSnapshot) -> None:
        """Every job's state when the client attached."""
        self.states = job_states(snapshot.jobs)
        self.over = snapshot.finished is not None

    def observe(self, event: ev.Event) -> None:
        """Follow state changes (called for every event, so it stays this cheap)."""
        if isinstance(event, ev.JobStateChanged):
            self.states[event.job_id] = event.state
        elif isinstance(event, ev.RunFinished):
            self.over = True


def refusal(cmd: Command, jobs: JobStates, *, paused_all: bool) -> str | None:
    """Why `cmd` does not apply to the run `jobs` describes, in words (None: it applies)."""
    if cmd.cmd in APPLIES:
        return _job_refusal(cmd.cmd, cmd.job, jobs)
    if jobs.over:
        return "the run is over"
    value = cmd.value
    if cmd.cmd == "set_limit" and (value is None or isinstance(value, bool)
                                   or not isinstance(value, int) or not 1 <= value <= MAX_JOBS):
        return f"limit {value!r}: give a whole number from 1 to {MAX_JOBS}"
    if cmd.cmd == "pause_all" and paused_all:
        return "every job is already paused"
    if cmd.cmd == "resume_all" and not paused_all:
        return "the run is not paused"
    return None


def _job_refusal(name: str, job: int | None, jobs: JobStates) -> str | None:
    if job is None or job not in jobs.states:
        return f"no job {job}" if job is not None else "which job?"
    state = jobs.states[job]
    if jobs.over:
        return f"job {job} is {state.value}: the run is over"
    if state not in APPLIES[name]:
        return f"job {job} is {state.value}: {_REFUSED[name]}"
    return None


class CommandHandler(JobStates):
    """Runs one client's commands on `host`; `observe` keeps job states current."""

    def __init__(self, host: RunControl) -> None:
        super().__init__()
        self.host = host

    def run(self, cmd: Command) -> tuple[bool, str]:
        """Carry out `cmd`: (whether it did something, what happened in words)."""
        live = self.host if isinstance(self.host, LiveStates) else None
        if live is not None and cmd.cmd in APPLIES and cmd.job is not None:
            now = live.job_state(cmd.job)
            if now is not None:
                self.states[cmd.job] = now  # not what the last delivered event said
        refused = refusal(cmd, self, paused_all=self.host.paused_all)
        if refused is not None:
            return False, refused
        stopping = live is not None and live.run_stopping()
        if stopping and cmd.cmd == "set_limit":
            return False, "the run is stopping: nothing launches any more, a limit changes nothing"
        if stopping and cmd.cmd == "stop":  # asked twice, as a second ctrl+c: no more grace
            self.host.kill_all_now()
            return True, "already stopping: every job's process group got SIGKILL"
        if cmd.cmd in APPLIES:
            return self._job_command(cmd)
        if cmd.cmd == "set_limit":
            assert cmd.value is not None
            previous = self.host.limit
            self.host.set_limit(cmd.value)
            was = f"was {previous}" if previous else "none yet: it holds once calibration ends"
            return True, f"limit set to {cmd.value} ({was})"
        return self._run_wide(cmd.cmd)

    def _job_command(self, cmd: Command) -> tuple[bool, str]:
        job = cmd.job
        assert job is not None
        state = self.states[job]
        if cmd.cmd == "cancel":
            return (True, f"job {job} cancelled") if self.host.cancel(job) else (
                False, f"job {job} is {state.value}: {_REFUSED['cancel']}")
        if not getattr(self.host, cmd.cmd)(job):
            if cmd.cmd == "requeue":
                return False, requeue_refusal(job, state)
            return False, f"job {job} is {state.value}: {_REFUSED[cmd.cmd]}"  # changed on the way
        if cmd.cmd == "kill" and state is JobState.QUEUED:
            return True, f"job {job} cancelled (it was queued)"
        if cmd.cmd == "kill" and state is JobState.STOPPING:
            return True, f"job {job} killed at once (SIGKILL: it was already stopping)"
        return True, f"job {job} {_PAST[cmd.cmd]}"

    def _run_wide(self, name: str) -> tuple[bool, str]:
        host = self.host
        if name == "pause_all":
            host.pause_all()
            return True, "every job paused, no launches"
        if name == "resume_all":
            host.resume_all()
            return True, "resumed: launching again"
        if name == "stop":
            # Same as SIGTERM to the orchestrator (the issue's `orch-tui stop`): exit code 143.
            host.shutdown(kill=True, interrupted=True, signal=signal.SIGTERM)
            return True, "stopping: no more launches, every job is being ended"
        if name == "drain":
            host.shutdown(kill=False, interrupted=False)
            return True, "no more launches: the running jobs finish, then the run ends"
        host.kill_all_now()  # kill_now
        return True, "every job's process group got SIGKILL"
