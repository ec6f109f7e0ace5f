"""States that say what happened: cancelled, stopping, a requeue that forgets its attempt, and
the real size of a finished output (core, journal, joblog, snapshot and the TUI's model)."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import signal
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.events import JobState, StopReason
from orch_tui.core.host import RunHost
from orch_tui.core.joblog import JoblogWriter
from orch_tui.core.journal import INTERRUPTED_STATES, Journal
from orch_tui.core.plan import load_plan
from orch_tui.core.session import RunOptions
from orch_tui.core.snapshot import RunRecord
from orch_tui.core.tally import Counts
from orch_tui.headless import HeadlessReporter
from orch_tui.tui.app import OrchApp
from orch_tui.tui.model import RunModel
from orch_tui.tui.screens.run import RunScreen
from tests.fake_controller import FakeController, job_views
from tests.fake_runner import Script, start_fake_run
from tests.helpers import alive, eventually
from tests.test_tui_app import until


# --- cancelled
async def test_a_queued_job_killed_by_the_operator_is_cancelled_and_the_run_still_succeeds(
        workspace):
    ws = workspace(2)
    run = await start_fake_run(ws.plan(), Script(seconds=5), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.RUNNING)
    assert run.orchestrator.kill(2)
    assert run.state(2) is JobState.CANCELLED
    assert await run.result() == 0, "cancelled is not a failure"
    assert 2 not in run.runner.attempts, "a cancelled job never starts"
    (change, ) = [e for e in run.recorder.of(ev.JobStateChanged) if e.job_id == 2]
    assert (change.stop, change.reason, change.pid) == (StopReason.CANCELLED,
                                                        "cancelled by operator", None)
    assert run.recorder.final().counts == {"succeeded": 1, "cancelled": 1, "missing": 0}


async def test_a_cancelled_job_can_be_requeued_and_then_runs(workspace):
    ws = workspace(2)
    run = await start_fake_run(ws.plan(), Script(seconds=5), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.RUNNING)
    run.orchestrator.kill(2)
    assert run.orchestrator.requeue(2)
    assert await run.result() == 0
    assert run.recorder.states(2) == [
        JobState.CANCELLED, JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED
    ]


def test_cancelled_counts_apart_and_only_other_failures_make_the_exit_code_1():
    counts = Counts.of([JobState.SUCCEEDED, JobState.CANCELLED, JobState.SKIPPED])
    assert (counts.cancelled, counts.failed, counts.killed, counts.ended) == (1, 0, 0, 3)
    assert counts.exit_code == 0
    assert counts.as_dict() == {"succeeded": 1, "cancelled": 1, "skipped": 1, "missing": 0}
    assert Counts.of([JobState.CANCELLED, JobState.FAILED]).exit_code == 1
    assert Counts.of([JobState.CANCELLED, JobState.QUEUED]).exit_code == 1  # work left undone
    assert Counts.of([JobState.CANCELLED], missing=1).exit_code == 1


async def test_a_resume_runs_the_cancelled_job_again(workspace, tmp_path):
    record = tmp_path / "runs.txt"
    ws = workspace(2, worker_args=["--seconds", "2", "--record", str(record)])
    first = RunHost(RunOptions(max_procs=1))
    heard: list[ev.Event] = []
    first.start(load_plan(ws.config))
    first.attach(heard.append)
    await eventually(lambda: any(
        isinstance(e, ev.JobStateChanged) and e.state is JobState.RUNNING for e in heard))
    assert first.kill(2)
    assert await first.wait() == 0
    first.close()
    assert record.read_text().split() == ["clip01.bin"]

    second = RunHost(RunOptions(max_procs=1))
    second.start(load_plan(ws.config))
    assert await second.wait() == 0
    second.close()
    assert record.read_text().split() == ["clip01.bin", "clip02.bin"]


def _change(job_id, state, *, time_=0.0, attempt=1, **fields):
    return ev.JobStateChanged(time=time_,
                              job_id=job_id,
                              name=f"clip{job_id:02d}.bin",
                              state=state,
                              previous=None,
                              attempt=attempt,
                              **fields)


def test_the_joblog_has_no_line_for_a_cancelled_job_even_after_a_memory_requeued_attempt(
        workspace, tmp_path):
    plan = workspace(2).plan()
    path = tmp_path / "joblog"
    writer = JoblogWriter(path, plan)
    writer(_change(1, JobState.RUNNING, pid=7))
    writer(_change(1, JobState.STOPPING, pid=7, stop=StopReason.MEMORY_REQUEUED))
    writer(_change(1, JobState.QUEUED, signal=15, stop=StopReason.MEMORY_REQUEUED))
    writer(_change(1, JobState.CANCELLED, stop=StopReason.CANCELLED))
    writer(_change(2, JobState.CANCELLED, attempt=0, stop=StopReason.CANCELLED))
    writer.close()
    assert path.read_text(encoding="utf-8").splitlines()[1:] == []


def test_the_headless_summary_and_progress_name_cancelled_and_stopping_jobs():
    out = io.StringIO()
    reporter = HeadlessReporter(out, progress_every=0, clock=lambda: 0.0)
    reporter(_change(1, JobState.RUNNING))
    reporter(_change(2, JobState.RUNNING))
    reporter(_change(2, JobState.STOPPING))
    reporter(_change(3, JobState.CANCELLED, attempt=0, stop=StopReason.CANCELLED))
    counts = {"succeeded": 2, "cancelled": 1, "missing": 0}
    reporter(ev.RunFinished(time=0, counts=counts, wall_seconds=5, exit_code=0, interrupted=False))
    lines = out.getvalue().splitlines()
    assert "running 1, stopping 1" in lines[0], lines
    assert lines[-1] == ("done: 2 succeeded, 0 failed, 0 killed, 0 skipped, 0 missing, "
                         "1 cancelled in 0:00:05 (exit 0)")


# --- stopping


async def test_a_killed_job_is_stopping_and_holds_its_slot_until_its_process_is_gone(workspace):
    ws = workspace(2)
    run = await start_fake_run(ws.plan(), Script(seconds=60, ignore_term=True), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.RUNNING)
    grace = run.orchestrator.plan.config.jobs.kill_grace
    run.orchestrator.kill(1)
    assert run.state(1) is JobState.STOPPING, "at once, when SIGTERM is sent"
    stopping = run.clock.now()
    await run.clock.advance(grace / 2)
    assert run.state(1) is JobState.STOPPING and run.orchestrator.active_count() == 1
    assert 2 not in run.runner.attempts, "a stopping job still counts against the limit"
    await run.wait_for(lambda: run.state(1) is JobState.KILLED)
    assert run.clock.now() - stopping >= grace
    assert run.recorder.states(1) == [JobState.RUNNING, JobState.STOPPING, JobState.KILLED]
    await run.wait_for(lambda: run.state(2) is JobState.RUNNING)
    run.orchestrator.shutdown()
    await run.result()


async def test_timeout_shutdown_and_a_paused_kill_all_go_through_stopping(workspace):
    ws = workspace(3)
    run = await start_fake_run(ws.plan(),
                               lambda spec, attempt: Script(seconds=60 if spec.job_id < 3 else 1),
                               max_procs=3)
    await run.wait_for(lambda: all(run.state(i) is JobState.RUNNING for i in (1, 2, 3)))
    run.orchestrator.pause(2)
    run.orchestrator.shutdown(kill=True)
    assert (run.state(1), run.state(2)) == (JobState.STOPPING, JobState.STOPPING)
    assert run.orchestrator.jobs[2].paused_by is None
    assert await run.result() == 1
    for job_id in (1, 2):
        assert run.recorder.states(job_id)[-2:] == [JobState.STOPPING, JobState.KILLED]

    timed = workspace(1, jobs={"timeout": 5})
    run = await start_fake_run(timed.plan(), Script(seconds=60), max_procs=1)
    assert await run.result() == 1
    changes = [e for e in run.recorder.of(ev.JobStateChanged) if e.job_id == 1]
    assert [(e.state, e.reason) for e in changes][1] == (JobState.STOPPING, "timeout")
    assert changes[-1].state is JobState.FAILED


async def test_a_real_job_ignoring_sigterm_stays_stopping_while_its_process_lives(
        workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(1,
                   worker_args=["--seconds", "30", "--ignore-term", "--pidfile",
                                str(pidfile)],
                   jobs={"kill_grace": 1.5})
    host = RunHost(RunOptions(max_procs=1))
    host.start(load_plan(ws.config))
    record: list[ev.Event] = []
    host.attach(record.append)
    await eventually(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
    pid = int(pidfile.read_text().split()[0])
    assert host.kill(1)
    states = [e.state for e in record if isinstance(e, ev.JobStateChanged)]
    assert states[-1] is JobState.STOPPING
    await asyncio.sleep(0.3)
    assert alive(pid), "SIGTERM is ignored: the process lives on through the grace period"
    assert [e.state for e in record if isinstance(e, ev.JobStateChanged)][-1] is JobState.STOPPING
    assert await asyncio.wait_for(host.wait(), 15) == 1
    host.close()
    assert not alive(pid)
    last = [e for e in record if isinstance(e, ev.JobStateChanged)][-1]
    assert (last.state, last.signal) == (JobState.KILLED, signal.SIGKILL)


def test_a_stopping_row_in_the_journal_is_interrupted_and_counts_as_active(workspace):
    assert "stopping" in INTERRUPTED_STATES and "cancelled" not in INTERRUPTED_STATES
    plan = workspace(2).plan()
    with Journal.open(plan.state_dir) as journal:
        journal.start_run(plan, ["orch-tui"])
        journal.listener(_change(1, JobState.RUNNING, pid=7))
        journal.listener(_change(1, JobState.STOPPING, pid=7, stop=StopReason.OPERATOR))
        journal.listener(_change(2, JobState.CANCELLED, attempt=0, stop=StopReason.CANCELLED))
        journal.flush()
        records = {Path(path).name: record for path, record in journal.previous_jobs().items()}
    stopping, cancelled = records["clip01.bin"], records["clip02.bin"]
    assert (stopping.state, stopping.interrupted) == ("stopping", True)
    assert stopping.started is not None and stopping.ended is None
    assert (cancelled.state, cancelled.interrupted) == ("cancelled", False)
    assert cancelled.ended is not None and cancelled.started is None
    counts = Counts.of([JobState.RUNNING, JobState.PAUSED, JobState.STOPPING])
    assert (counts.running, counts.paused, counts.stopping, counts.active) == (1, 1, 1, 3)


# --- requeue


def _fold(model_or_record, *events):
    for event in events:
        (model_or_record.apply if hasattr(model_or_record, "apply") else model_or_record)(event)


def _sample(pid, *, output_bytes, progress=None):
    return ev.JobSample(time=12.0,
                        job_id=1,
                        node="n",
                        pid=pid,
                        cpu_cores=1.0,
                        rss_bytes=10,
                        processes=1,
                        read_fraction=progress,
                        output_bytes=output_bytes,
                        elapsed=2.0,
                        progress=progress)


def test_a_requeued_row_forgets_its_old_pid_elapsed_time_and_progress(workspace):
    plan = workspace(1).plan()
    model = RunModel.from_plan(plan, clock=lambda: 50.0)
    record = RunRecord(plan)
    sample = _sample(4242, output_bytes=300, progress=0.5)
    events = (_change(1, JobState.RUNNING, time_=10.0, pid=4242, node="n"), sample,
              _change(1, JobState.STOPPING, time_=13.0, pid=4242, node="n"),
              _change(1, JobState.KILLED, time_=14.0, pid=4242, signal=15,
                      node="n"), _change(1,
                                         JobState.QUEUED,
                                         time_=20.0,
                                         node="n",
                                         reason="requeued"))
    _fold(model, *events[:-1])
    _fold(record, *events)
    row = model.rows[1]
    assert row.output_bytes == 0, "killed: its partial output is gone"
    _fold(model, events[-1])
    assert row.state is JobState.QUEUED
    assert (row.pid, row.elapsed(50.0), row.progress, row.output_bytes) == (None, None, None, 0)
    assert (row.exit_code, row.signal, row.cpu, row.rss, row.history) == (None, None, 0.0, 0, None)
    assert row.node == "", "a queued job is on no node (it listed under its old one)"
    view = record.snapshot().jobs[0]
    assert (view.pid, view.started, view.ended, view.signal) == (None, None, None, None)


async def test_requeue_clears_the_attempt_in_the_core_and_its_event(workspace):
    ws = workspace(1)
    run = await start_fake_run(ws.plan(), Script(seconds=5, exit_code=3), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.FAILED)
    assert run.orchestrator.requeue(1)
    queued = run.recorder.of(ev.JobStateChanged)[-1]
    assert (queued.state, queued.pid, queued.exit_code) == (JobState.QUEUED, None, None)
    run.orchestrator.shutdown(kill=True)
    await run.result()


async def test_once_the_run_is_over_the_host_refuses_a_requeue_instead_of_a_ghost_queued_job(
        workspace):
    ws = workspace(1, worker_args=["--exit", "1"])
    host = RunHost(RunOptions(max_procs=1))
    host.start(load_plan(ws.config))
    heard: list[ev.Event] = []
    host.attach(heard.append)
    assert await host.wait() == 1
    assert not host.requeue(1) and not host.kill(1)
    assert [e.state for e in heard if isinstance(e, ev.JobStateChanged)][-1] is JobState.FAILED
    host.close()


# --- the real size of a finished output


async def test_a_succeeded_job_carries_the_size_of_its_final_output(workspace):
    ws = workspace(1, size=627 * 1000)
    run = await start_fake_run(ws.plan(), Script(seconds=3, output_ratio=1.0), max_procs=1)
    assert await run.result() == 0
    spec = run.orchestrator.jobs[1].spec
    final = run.recorder.of(ev.JobStateChanged)[-1]
    assert final.state is JobState.SUCCEEDED
    assert final.output_bytes == os.path.getsize(spec.output_path) == 627 * 1000
    failed = [e for e in run.recorder.of(ev.JobStateChanged) if e.state is not JobState.SUCCEEDED]
    assert all(e.output_bytes is None for e in failed)


def test_a_snapshot_carries_the_progress_its_probe_measured_for_the_live_attempt_only(workspace):
    plan = workspace(1).plan()
    record = RunRecord(plan)

    def shown():
        return record.snapshot().jobs[0].progress

    def moved(state, previous, time_):
        return dataclasses.replace(_change(1, state, time_=time_, pid=7), previous=previous)

    _fold(record, moved(JobState.RUNNING, JobState.QUEUED, 10.0))
    assert shown() is None, "launched: nothing measured yet (not 0%)"
    _fold(record, _sample(7, output_bytes=0, progress=0.4))
    assert shown() == 0.4
    _fold(record, moved(JobState.PAUSED, JobState.RUNNING, 11.0))
    assert shown() == 0.4, "paused: the same attempt"
    attached = RunModel.from_snapshot(record.snapshot(), clock=lambda: 50.0)
    assert attached.rows[1].progress == 0.4, "an observer attaching sees it at once"
    _fold(record, _sample(7, output_bytes=0, progress=None))
    assert shown() is None, "its probe cannot tell any more"
    _fold(record, _sample(7, output_bytes=0, progress=0.6),
          moved(JobState.FAILED, JobState.PAUSED, 12.0))
    assert shown() is None, "ended"
    _fold(record, _sample(7, output_bytes=0, progress=0.7))
    assert shown() is None, "a sample that comes after the end"
    _fold(record, moved(JobState.QUEUED, JobState.FAILED, 13.0),
          moved(JobState.RUNNING, JobState.QUEUED, 14.0))
    assert shown() is None, "a new attempt starts with nothing measured"


def test_a_finished_row_shows_the_final_size_not_the_last_sample(workspace):
    plan = workspace(1).plan()
    model = RunModel.from_plan(plan, clock=lambda: 50.0)
    record = RunRecord(plan)
    sample = _sample(1, output_bytes=256 * 1024)
    events = (_change(1, JobState.RUNNING, time_=10.0, pid=1), sample,
              _change(1, JobState.SUCCEEDED, time_=14.0, pid=1, exit_code=0, output_bytes=627_000))
    _fold(model, *events)
    _fold(record, *events)
    assert model.rows[1].output_bytes == 627_000
    late = RunModel.from_snapshot(record.snapshot(), clock=lambda: 50.0)
    assert late.rows[1].output_bytes == 627_000, "an observer attached later sees it too"
    assert model.rows[1].progress == late.rows[1].progress == 1.0, "100%, attached or not"


async def test_a_screen_that_attaches_titles_its_header_with_the_run_s_config(workspace):
    """`orch-tui attach OUTPUT_DIR` knows no config file; the run's snapshot names it."""
    plan = workspace(2).plan()
    sent = wire.decode(wire.encode(wire.snapshot_message(RunRecord(plan).snapshot())), limit=None)
    model = RunModel.from_snapshot(wire.parse_snapshot(sent), clock=lambda: 50.0)
    assert model.config_path == plan.config.path
    controller = FakeController(job_views([JobState.RUNNING, JobState.QUEUED]))
    controller.config = plan.config.path
    app = OrchApp(controller)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        title = app.screen.query_one("#run-header").border_title
        assert title == f"orch-tui · {plan.config.path.name}"
