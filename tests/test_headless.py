"""The headless reporter and the event bus, fed with hand-made events."""

from __future__ import annotations

import io

from orch_tui.core import events as ev
from orch_tui.core.events import EventBus, JobState
from orch_tui.core.scaling import ProcessProfile, SystemCapacity, compute_limit
from orch_tui.core.snapshot import RunSnapshot
from orch_tui.core.tally import Counts
from orch_tui.core.textutil import format_bytes
from orch_tui.headless import HeadlessReporter
from tests.fake_controller import job_views
from tests.helpers import eventually

GB = 1024**3


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _state(job_id, state, name="a.mp4", reason="", time=0.0):
    return ev.JobStateChanged(time=time,
                              job_id=job_id,
                              name=name,
                              state=state,
                              previous=None,
                              attempt=1,
                              reason=reason)


def _preflight(total, *, missing=0):
    """Every input runnable but the missing ones, 1 GiB each."""
    return ev.PreflightDone(time=0,
                            total=total,
                            runnable=total - missing,
                            skipped=0,
                            missing=missing,
                            duplicates=0,
                            input_bytes=(total - missing) * GB)


def _calibrated(profile, capacity):
    """What a calibration over its window reports for `profile` on `capacity`."""
    return ev.CalibrationFinished(time=0,
                                  profile=profile,
                                  decision=compute_limit(profile, capacity),
                                  source=ev.LimitSource.WINDOW)


def test_reporter_prints_preflight_calibration_progress_failures_and_summary():
    out, clock = io.StringIO(), Clock()
    reporter = HeadlessReporter(out, progress_every=0, clock=clock)
    reporter.register_logs({2: "/o/.orch-tui/logs/00002-b.log"})
    reporter(_preflight(4, missing=1))
    finished = _calibrated(ProcessProfile(1.0, GB, GB), SystemCapacity(32, 32 * GB, 100 * GB))
    decision = finished.decision
    reporter(finished)
    reporter(
        ev.LimitChanged(time=0,
                        limit=25,
                        previous=0,
                        source=ev.LimitSource.WINDOW,
                        decision=decision))
    for job_id in (1, 2, 3):
        reporter(_state(job_id, JobState.RUNNING))
    clock.now = 10.0
    reporter(_state(1, JobState.SUCCEEDED, time=10.0))
    reporter(_state(2, JobState.FAILED, name="b\x1b[2J.mp4", reason="exit 3", time=10.0))
    reporter(
        ev.RunFinished(time=0,
                       counts={
                           "succeeded": 2,
                           "failed": 1,
                           "missing": 1
                       },
                       wall_seconds=75,
                       exit_code=1,
                       interrupted=False))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("preflight: 4 inputs (3.00 GiB): 3 to run")
    assert "*cpu" in lines[1] and "=> limit 25 (cpu binds)" in lines[1]
    assert "-> 80" in lines[1]
    # One input's work done in 10 s of running; two inputs are left (no sizes: one unit each).
    assert lines[2] == "[2/4] running 2 (limit 25)  failed 0  ETA 0:00:20"
    # The escape sequence in the name is shown, not executed.
    assert lines[3] == ("FAILED #2 b\\x1b[2J.mp4: exit 3 (log: /o/.orch-tui/logs/00002-b.log)")
    assert lines[-1] == ("done: 2 succeeded, 1 failed, 0 killed, 0 skipped, 1 missing in 0:01:15 "
                         "(exit 1)")


def test_reporter_survives_a_closed_stream():
    stream = io.StringIO()
    reporter = HeadlessReporter(stream)
    stream.close()
    reporter(ev.Notice(time=0, level=ev.NoticeLevel.INFO, message="still running"))


def test_bus_delivers_to_every_listener_in_order():
    bus = EventBus()
    heard, also_heard = [], []
    bus.add_listener(heard.append)
    bus.add_listener(also_heard.append)
    events = [ev.Notice(time=i, level=ev.NoticeLevel.INFO, message=str(i)) for i in range(3)]
    for event in events:
        bus.publish(event)
    assert heard == events
    assert also_heard == events


def test_format_bytes_never_uses_exponents():
    assert format_bytes(1536) == "1.50 KiB"
    assert format_bytes(1023 * 1024) == "1023 KiB"
    assert format_bytes(150 * 1024**3) == "150 GiB"
    assert format_bytes(12) == "12 B"


def test_a_reporter_attached_midway_goes_on_from_the_snapshot():
    # What a hangup does: the TUI detaches, this reporter attaches and gets the run's state.
    views = job_views([JobState.SUCCEEDED, JobState.RUNNING, JobState.PAUSED, JobState.QUEUED])
    counts = Counts.of((view.state for view in views), missing=1)
    snapshot = RunSnapshot(jobs=tuple(views), counts=counts, first_launch=0.0, limit=2)
    out, clock = io.StringIO(), Clock()
    reporter = HeadlessReporter(out, progress_every=0, clock=clock)
    reporter.adopt(snapshot)
    clock.now = 10.0
    reporter(_state(2, JobState.FAILED, name="2.mp4", reason="exit 1"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "FAILED #2 2.mp4: exit 1 (log: /o/.orch-tui/logs/2.log)"
    # 3 of 5 ended (one missing); the only active job is paused: the ETA says so (issue 9's
    # ETA from work: a failure is no work done, and a paused run has no rising figure).
    assert lines[1] == "[3/5] running 0, paused 1 (limit 2)  failed 1  ETA paused"


def test_while_calibrating_the_progress_line_names_the_measured_job_not_a_limit_0():
    """No `running 0 (limit 0)` and no ETA before the limit exists: what calibration does."""
    out, clock = io.StringIO(), Clock()
    reporter = HeadlessReporter(out, progress_every=0, clock=clock)
    reporter(_preflight(4))
    reporter(_state(1, JobState.RUNNING))
    reporter(ev.CalibrationStarted(time=0, job_id=1, window=5.0))
    reporter.progress()
    reporter(_state(1, JobState.FAILED, reason="exit 1"))
    reporter(_state(2, JobState.RUNNING))
    reporter(ev.CalibrationStarted(time=0, job_id=2, window=5.0))
    reporter(
        ev.CalibrationProgress(time=3,
                               job_id=2,
                               elapsed=3.0,
                               window=5.0,
                               cpu_cores=1.0,
                               rss_bytes=GB,
                               output_bytes=0,
                               read_fraction=None))
    reporter.progress()
    reporter(_calibrated(ProcessProfile(1.0, GB, GB), SystemCapacity(4, 32 * GB, 100 * GB)))
    reporter(ev.LimitChanged(time=5, limit=3, previous=0, source=ev.LimitSource.WINDOW))
    reporter.progress()
    lines = [line for line in out.getvalue().splitlines() if line.startswith("[")]
    assert lines[:3] == [
        "[0/4] calibrating job 1 (5.0 s left)  failed 0",
        "[1/4] calibrating: job 1 failed, measuring the next  failed 1",
        "[1/4] calibrating job 2 (2.0 s left)  failed 1",
    ]
    # Once the limit is known, the usual line (its ETA is the ETA model's business).
    assert lines[3].startswith("[1/4] running 1 (limit 3)  failed 1  ETA "), lines[3]


def test_a_job_bigger_than_the_machine_shows_the_raw_figure_not_minus_0():
    """`-> 0` beside `=> limit 1` reads as a bug: the line shows 0.61 and why one job runs."""
    finished = _calibrated(ProcessProfile(1.0, 2 * GB, GB),
                           SystemCapacity(8, int(1.5 * GB), 100 * GB))
    decision = finished.decision
    out = io.StringIO()
    HeadlessReporter(out)(finished)
    line = out.getvalue()
    assert decision.limit == 1 and decision.memory.allowed == 0  # the rule is unchanged
    assert "*memory 2.00 GiB/proc of 1.50 GiB x0.8 = 0.6 -> at least 1 job always runs" in line
    assert "-> 0" not in line and "=> limit 1 (memory binds)" in line
    assert decision.memory.formula() == (
        "memory: 0.8 × 1.50 GiB / 2.00 GiB per job = 0.6 -> at least 1 job always runs")
    assert decision.cpu.formula() == "cpu: 0.8 × 8 cores / 1.00 cores per job = 6.40 -> 6"
    assert "0.6 by memory" in decision.describe()


async def test_a_progress_line_due_at_an_end_waits_for_the_ends_and_launches_of_that_instant():
    """Three jobs end together and three start in their slots: printed at the first end, the
    line said `[1/6] running 2 (limit 3)` while three ran a moment later."""
    out, clock = io.StringIO(), Clock()
    reporter = HeadlessReporter(out, clock=clock)
    reporter(_preflight(6))
    reporter(ev.LimitChanged(time=0, limit=3, previous=0, source=ev.LimitSource.MAX_PROCS))
    for job_id in (1, 2, 3):
        reporter(_state(job_id, JobState.RUNNING))
    clock.now = 3.0
    reporter(_state(1, JobState.SUCCEEDED))
    assert "[" not in out.getvalue(), "not yet: the same instant's ends are still coming"
    for job_id in (2, 3):
        reporter(_state(job_id, JobState.SUCCEEDED))
    for job_id in (4, 5, 6):
        reporter(_state(job_id, JobState.RUNNING))
    await eventually(lambda: "[" in out.getvalue(), "the progress line")
    progress = [line for line in out.getvalue().splitlines() if line.startswith("[")]
    assert progress[0].startswith("[3/6] running 3 (limit 3)  failed 0"), progress
    reporter(_state(4, JobState.SUCCEEDED))  # due again only after progress_every
    reporter(ev.RunFinished(time=9, counts={}, wall_seconds=9.0, exit_code=0, interrupted=False))
    assert len([line for line in out.getvalue().splitlines() if line.startswith("[")]) == 1
