"""A client's commands, carried out on the run and answered with what happened.

The answer names the job's state when a command does not apply ("job 3 is queued: nothing to
pause"); the states come from the snapshot the client got and the events since, the same
facts the client sees, so nothing here asks the scheduler anything but the command itself."""

from __future__ import annotations

import signal

from orch_tui.core import events as ev
from orch_tui.core.controller import RunControl
from orch_tui.core.events import JobState
from orch_tui.core.snapshot import RunSnapshot
from orch_tui.core.wire import Command

_PAST = {"pause": "paused", "resume": "resumed", "kill": "killed", "requeue": "requeued"}
_REFUSED = {
    "pause": "nothing to pause",
    "resume": "not paused",
    "kill": "nothing to kill",
    "requeue": "only a failed, killed or cancelled job can be requeued",
    "cancel": "only a queued job can be cancelled",
}


class CommandHandler:
    """Runs one client's commands on `host`; `observe` keeps job states current."""

    def __init__(self, host: RunControl) -> None:
        self.host = host
        self.states: dict[int, JobState] = {}
        self.over = False

    def seed(self, snapshot: RunSnapshot) -> None:
        """Every job's state when the client attached."""
        self.states = {job.job_id: job.state for job in snapshot.jobs}
        self.over = snapshot.finished is not None

    def observe(self, event: ev.Event) -> None:
        """Follow state changes (called for every event, so it stays this cheap)."""
        if isinstance(event, ev.JobStateChanged):
            self.states[event.job_id] = event.state
        elif isinstance(event, ev.RunFinished):
            self.over = True

    def run(self, cmd: Command) -> tuple[bool, str]:
        """Carry out `cmd`: (whether it did something, what happened in words)."""
        if cmd.cmd in _REFUSED:
            return self._job_command(cmd)
        if self.over and cmd.cmd != "stop":
            return False, "the run is over"
        if cmd.cmd == "set_limit":
            return self._set_limit(cmd.value)
        return self._run_wide(cmd.cmd)

    # One answer per way a job command can end.
    # pylint: disable-next=too-many-return-statements
    def _job_command(self, cmd: Command) -> tuple[bool, str]:
        job = cmd.job
        if job is None or job not in self.states:
            return False, f"no job {job}" if job is not None else "which job?"
        state = self.states[job]
        if self.over:
            return False, f"job {job} is {state.value}: the run is over"
        if cmd.cmd == "cancel":
            if state is not JobState.QUEUED:
                return False, f"job {job} is {state.value}: {_REFUSED['cancel']}"
            return (True, f"job {job} cancelled") if self.host.kill(job) else (
                False, f"job {job}: could not cancel it")
        done = getattr(self.host, cmd.cmd)(job)
        if not done:
            return False, f"job {job} is {state.value}: {_REFUSED[cmd.cmd]}"
        if cmd.cmd == "kill" and state is JobState.QUEUED:
            return True, f"job {job} cancelled (it was queued)"
        return True, f"job {job} {_PAST[cmd.cmd]}"

    def _set_limit(self, value: int | None) -> tuple[bool, str]:
        if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return False, f"limit {value!r}: give a whole number of at least 1"
        previous = self.host.limit
        self.host.set_limit(value)
        return True, f"limit set to {value} (was {previous})"

    # One answer per command and outcome.
    # pylint: disable-next=too-many-return-statements
    def _run_wide(self, name: str) -> tuple[bool, str]:
        host = self.host
        if name == "pause_all":
            if host.paused_all:
                return False, "every job is already paused"
            host.pause_all()
            return True, "every job paused, no launches"
        if name == "resume_all":
            if not host.paused_all:
                return False, "the run is not paused"
            host.resume_all()
            return True, "resumed: launching again"
        if name == "stop":
            if self.over:
                return False, "the run is over"
            # Same as SIGTERM to the orchestrator (the issue's `orch-tui stop`): exit code 143.
            host.shutdown(kill=True, interrupted=True, signal=signal.SIGTERM)
            return True, "stopping: no more launches, every job is being ended"
        host.kill_all_now()  # kill_now
        return True, "every job's process group got SIGKILL"
