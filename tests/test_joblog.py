"""The joblog matches GNU parallel's --joblog: header, field formats, Exitval/Signal, append."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.errors import OrchError
from orch_tui.core.events import JobState, StopReason
from orch_tui.core.joblog import HEADER, JoblogWriter
from orch_tui.core.plan import Plan, load_plan, shell_quote
from tests.helpers import write_workspace

# What GNU parallel 20221122 writes (`parallel --joblog x.log -j2 true ::: 1 2`):
#   Seq<TAB>Host<TAB>Starttime<TAB>JobRuntime<TAB>Send<TAB>Receive<TAB>Exitval<TAB>Signal<TAB>Command
#   1<TAB>:<TAB>1795805851.670<TAB>     0.000<TAB>0<TAB>0<TAB>0<TAB>0<TAB>true 1
LINE = re.compile(r"^(\d+)\t:\t(\d+\.\d{3})\t( *\d+\.\d{3})\t0\t0\t(-?\d+)\t(\d+)\t(.*)\n$")


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    """A real three-job plan."""
    return load_plan(write_workspace(tmp_path / "ws", 3).config)


class Feeder:
    """Publishes job events with a controllable loop clock."""

    def __init__(self, plan: Plan, listener) -> None:
        self.plan = plan
        self.listener = listener
        self.clock = 1000.0

    def __call__(self, job_id: int, state: JobState, attempt: int = 1, **fields) -> None:
        self.listener(
            ev.JobStateChanged(time=self.clock,
                               job_id=job_id,
                               name=self.plan.jobs[job_id - 1].name,
                               state=state,
                               previous=None,
                               attempt=attempt,
                               **fields))

    def run(self, job_id: int, final: JobState, seconds: float = 0.25, **fields) -> None:
        """One attempt: RUNNING, `seconds` of loop time, then `final`."""
        attempt = fields.pop("attempt", 1)
        self(job_id, JobState.RUNNING, attempt)
        self.clock += seconds
        self(job_id, final, attempt, **fields)


def lines(path: Path) -> list[str]:
    """The joblog's lines, newline kept."""
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_header_and_one_line_per_finished_job_in_parallels_format(plan, tmp_path):
    path = tmp_path / "joblog"
    writer = JoblogWriter(path, plan)
    feed = Feeder(plan, writer)
    before = time.time()
    feed.run(1, JobState.SUCCEEDED, 1.23456, exit_code=0)
    after = time.time()
    # Written and flushed at once, before close().
    written = lines(path)
    assert written[0] == HEADER == ("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval"
                                    "\tSignal\tCommand\n")
    match = LINE.match(written[1])
    assert match, written[1]
    seq, start, runtime, exitval, signal, command = match.groups()
    assert (seq, exitval, signal) == ("1", "0", "0")
    assert runtime == "     1.234"  # %10.3f, truncated to the millisecond like parallel
    assert before - 0.0005 <= float(start) <= after + 0.0005  # %.3f rounds
    assert command == shell_quote(plan.jobs[0].display_argv)
    writer.close()
    writer.close()  # idempotent
    assert writer.error is None


@pytest.mark.parametrize(
    ("final", "fields", "expected"),
    [
        (JobState.SUCCEEDED, {
            "exit_code": 0
        }, ("0", "0")),
        (JobState.FAILED, {
            "exit_code": 3,
            "reason": "exit 3"
        }, ("3", "0")),
        # Died of a signal by itself: parallel's `kill -9 $$` line reads Exitval 0, Signal 9.
        (JobState.FAILED, {
            "signal": 9,
            "reason": "signal SIGKILL"
        }, ("0", "9")),
        # Ended by us: parallel writes -1 for the jobs it kills itself (--timeout).
        (JobState.FAILED, {
            "signal": 15,
            "reason": "timeout after 1s (signal SIGTERM)",
            "stop": StopReason.TIMEOUT
        }, ("-1", "15")),
        (JobState.KILLED, {
            "signal": 15,
            "reason": "killed by operator"
        }, ("-1", "15")),
        (JobState.KILLED, {
            "signal": 9,
            "reason": "interrupted"
        }, ("-1", "9")),
        # ... unless the job exited non-zero by itself on SIGTERM (parallel keeps that status).
        (JobState.KILLED, {
            "exit_code": 143,
            "reason": "killed by operator"
        }, ("143", "0")),
        # Command not found, as parallel's shell reports it.
        (JobState.FAILED, {
            "exit_code": 127,
            "reason": "cannot execute"
        }, ("127", "0")),
        # Exit 0 yet failed (no output): must not read as a success to --resume-failed.
        (JobState.FAILED, {
            "exit_code": 0,
            "reason": "no output",
            "stop": StopReason.NO_OUTPUT
        }, ("-1", "0")),
    ])
def test_exitval_and_signal_follow_parallel(plan, tmp_path, final, fields, expected):
    path = tmp_path / "joblog"
    writer = JoblogWriter(path, plan)
    Feeder(plan, writer).run(2, final, **fields)
    writer.close()
    match = LINE.match(lines(path)[1])
    assert match and match.group(1) == "2"
    assert (match.group(4), match.group(5)) == expected


def test_only_the_last_attempt_of_a_retried_job_is_logged(plan, tmp_path):
    path = tmp_path / "joblog"
    writer = JoblogWriter(path, plan)
    feed = Feeder(plan, writer)
    feed.run(1, JobState.FAILED, exit_code=1)
    feed(1, JobState.QUEUED, reason="retry 1/2 after: exit 1")
    feed.run(1, JobState.FAILED, attempt=2, exit_code=2)
    feed(1, JobState.QUEUED, 2, reason="retry 2/2 after: exit 2")
    feed.run(1, JobState.FAILED, 0.5, attempt=3, exit_code=4)
    assert len(lines(path)) == 1  # the last failure waits for one event: is it retried too?
    writer(ev.Notice(time=feed.clock, level=ev.NoticeLevel.INFO, message="anything"))
    assert [LINE.match(line).group(4) for line in lines(path)[1:]] == ["4"]
    assert LINE.match(lines(path)[1]).group(3) == "     0.500"
    # A failure later requeued by the operator was final when it happened: it stays logged.
    feed(1, JobState.QUEUED, 3, reason="requeued")
    feed.run(1, JobState.SUCCEEDED, attempt=4, exit_code=0)
    writer.close()
    assert [LINE.match(line).group(4) for line in lines(path)[1:]] == ["4", "0"]


def test_a_held_failure_is_written_by_close(plan, tmp_path):
    path = tmp_path / "joblog"
    writer = JoblogWriter(path, plan)
    Feeder(plan, writer).run(3, JobState.FAILED, exit_code=5)
    writer.close()
    assert LINE.match(lines(path)[1]).groups()[0::3] == ("3", "5")


def test_jobs_that_never_ran_write_nothing_and_pauses_do_not_restart_the_clock(plan, tmp_path):
    path = tmp_path / "joblog"
    writer = JoblogWriter(path, plan)
    feed = Feeder(plan, writer)
    feed(1, JobState.SKIPPED, 0, reason="output exists")
    feed(2, JobState.KILLED, 0, reason="killed by operator")  # taken off the queue
    feed(3, JobState.RUNNING)
    feed.clock += 1
    feed(3, JobState.PAUSED)
    feed.clock += 2
    feed(3, JobState.RUNNING)
    feed.clock += 0.0009
    feed(3, JobState.SUCCEEDED, exit_code=0)
    writer.close()
    (line, ) = lines(path)[1:]
    assert LINE.match(line).group(3) == "     3.000"


def test_an_existing_joblog_is_appended_without_a_second_header(plan, tmp_path):
    path = tmp_path / "joblog"
    for job_id in (1, 2):
        writer = JoblogWriter(path, plan)
        Feeder(plan, writer).run(job_id, JobState.SUCCEEDED, exit_code=0)
        writer.close()
    written = lines(path)
    assert written[0] == HEADER and [l.split("\t")[0] for l in written[1:]] == ["1", "2"]
    # An empty file (touched beforehand) gets the header.
    empty = tmp_path / "empty"
    empty.touch()
    JoblogWriter(empty, plan).close()
    assert empty.read_text(encoding="utf-8") == HEADER


def test_a_last_line_cut_short_does_not_swallow_the_next_one(plan, tmp_path):
    path = tmp_path / "joblog"
    path.write_text(HEADER + "1\t:\t1700000000.000\t     0.1", encoding="utf-8")
    writer = JoblogWriter(path, plan)
    Feeder(plan, writer).run(2, JobState.SUCCEEDED, exit_code=0)
    writer.close()
    written = lines(path)
    assert written[1] == "1\t:\t1700000000.000\t     0.1\n" and LINE.match(written[2])


def test_a_newline_or_tab_in_the_command_stays_in_its_field_and_pastes_back(tmp_path):
    """GNU parallel writes a tab raw (a tenth column) and splits a newline over two lines; the
    joblog's Command is shell_quote's `$'...'`, one field that bash turns back into the argv."""
    ws = write_workspace(tmp_path / "ws",
                         1,
                         flags=["-c", "import sys\nsys.exit(0)\t", "{input_file}"])
    plan = ws.plan()
    path = tmp_path / "joblog"
    writer = JoblogWriter(path, plan)
    Feeder(plan, writer).run(1, JobState.SUCCEEDED, exit_code=0)
    writer.close()
    lines = path.read_text(encoding="utf-8").split("\n")
    fields = lines[1].split("\t")
    assert len(lines) == 3 and len(fields) == 9
    assert fields[8] == shell_quote(plan.jobs[0].display_argv)
    pasted = subprocess.run(["bash", "-c", f"printf '%s\\0' {fields[8]}"],
                            capture_output=True,
                            check=True).stdout
    assert pasted.split(b"\0")[:-1] == [os.fsencode(arg) for arg in plan.jobs[0].display_argv]


def test_an_unwritable_joblog_path_is_a_one_line_error(plan, tmp_path):
    with pytest.raises(OrchError, match="cannot write the joblog") as caught:
        JoblogWriter(tmp_path, plan)  # a directory
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel not installed")
def test_lines_have_the_same_shape_as_gnu_parallels_own(plan, tmp_path):
    """Run the real GNU parallel and compare field by field (times and command aside)."""
    theirs_path = tmp_path / "theirs"
    subprocess.run([
        "parallel", "--will-cite", "-j1", "--joblog",
        str(theirs_path), "exit {}", ":::", "0", "3"
    ],
                   check=False,
                   capture_output=True,
                   timeout=60)
    theirs = lines(theirs_path)
    ours_path = tmp_path / "ours"
    writer = JoblogWriter(ours_path, plan)
    feed = Feeder(plan, writer)
    feed.run(1, JobState.SUCCEEDED, 0.0021, exit_code=0)
    feed.run(2, JobState.FAILED, 0.0031, exit_code=3)
    writer.close()
    ours = lines(ours_path)
    assert ours[0] == theirs[0]
    assert len(ours) == len(theirs) == 3
    for our_line, their_line in zip(ours[1:], theirs[1:]):
        mine, real = our_line.split("\t"), their_line.split("\t")
        assert len(mine) == len(real) == 9
        assert [mine[i] for i in (0, 1, 4, 5, 6, 7)] == [real[i] for i in (0, 1, 4, 5, 6, 7)]
        for i in (2, 3):
            assert len(mine[i]) == len(real[i]) and re.fullmatch(r" *\d+\.\d{3}", mine[i])
