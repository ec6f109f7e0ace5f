"""The scheduler: against real subprocesses where the OS is the point (signals, process trees,
pause state `T`, threads, atomic outputs, measuring), on the fake runner and clock for the
scheduling itself (limits, calibration choices, retries, timeouts, halts, commands)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import threading
import time

import pytest

from orch_tui.core import events as ev
from orch_tui.core.errors import SpawnError
from orch_tui.core.events import JobState, StopReason
from orch_tui.core.orchestrator import Orchestrator
from orch_tui.core.plan import JobSpec
from orch_tui.core.procfs import read_stat
from orch_tui.core.runner import ExitCallback, Started
from tests.fake_runner import FakeClock, FakeRunner, Script, start_fake_run
from tests.helpers import (alive, kill_quietly, process_runs, process_state, signal_in_mask,
                           start_run)

MB = 1024 * 1024


async def test_every_job_runs_once_and_outputs_are_renamed(workspace):
    ws = workspace(["a.mp4", "b c.mp4", "-rf.mp4"], worker_args=["--seconds", "0.2"])
    run = await start_run(ws.plan(), max_procs=2)
    assert await run.result() == 0
    names = {p.name for p in ws.output_dir.iterdir()}
    assert names == {".orch-tui", "-rf_out.mp4", "a_out.mp4", "b c_out.mp4"}
    for src in ws.inputs:
        out = ws.output_dir / f"{src.stem}_out{src.suffix}"
        assert out.read_bytes() == src.read_bytes()
    for job_id in (1, 2, 3):
        assert run.recorder.states(job_id) == [JobState.RUNNING, JobState.SUCCEEDED]
    logs = list((ws.output_dir / ".orch-tui" / "logs").rglob("*.log"))
    assert len(logs) == 3
    final = run.recorder.final()
    assert final.counts["succeeded"] == 3 and final.exit_code == 0


async def test_concurrency_never_exceeds_the_limit_and_no_thread_per_child(workspace):
    ws = workspace(8, worker_args=["--seconds", "0.3"])
    threads_before = threading.active_count()
    run = await start_run(ws.plan(), max_procs=3)
    peak = threads = 0
    while not run.task.done():
        peak = max(peak, run.orchestrator.active_count())
        threads = max(threads, threading.active_count())
        await asyncio.sleep(0.01)
    assert await run.result() == 0
    assert peak == 3
    # Children are watched through pidfds on the loop, not a watcher thread each.
    assert threads == threads_before


async def test_calibration_measures_a_job_holding_200mb_and_burning_a_core(workspace):
    ws = workspace(3,
                   worker_args=["--seconds", "4", "--burn", "--hold-mb", "200"],
                   size=4 * MB,
                   resources={"stabilization_seconds": 2.0})
    run = await start_run(ws.plan())
    # What the job really got over the window, read from /proc when the window opens and closes:
    # on a loaded machine a burning job gets less than a core, and calibration must say so.
    marks: list[tuple[float, float]] = []

    def mark(event: ev.Event) -> None:
        if isinstance(event, (ev.CalibrationStarted, ev.CalibrationFinished)):
            pid = run.runner.pid_of(run.recorder.of(ev.CalibrationStarted)[0].job_id)
            proc = read_stat(pid) if pid is not None else None
            assert proc is not None
            marks.append((time.monotonic(), proc.ticks / os.sysconf("SC_CLK_TCK")))

    run.orchestrator.bus.add_listener(mark)
    await run.wait_for(lambda: run.recorder.of(ev.CalibrationFinished), timeout=15)
    finished = run.recorder.of(ev.CalibrationFinished)[0]
    profile = finished.profile
    assert finished.source is ev.LimitSource.WINDOW
    (began, cpu_began), (ended, cpu_ended) = marks
    got = (cpu_ended - cpu_began) / (ended - began)
    assert got > 0.3, f"the job got {got:.2f} cores: the machine is too busy to tell"
    # The window's samples start up to one interval after it opens: a small misalignment.
    assert abs(profile.cpu_cores - got) <= 0.1 + 0.15 * got, (profile, got)
    assert profile.cpu_cores <= 1.3, profile
    assert 190 * MB <= profile.rss_bytes <= 320 * MB, profile
    # ratio 1.0 worker: written/read extrapolates to about the input size (4 MiB).
    assert 2 * MB <= profile.output_bytes <= 6 * MB, profile
    decision = finished.decision
    assert decision.limit >= 1
    assert {c.name for c in decision.constraints} == {"cpu", "memory", "disk"}
    progress = run.recorder.of(ev.CalibrationProgress)
    assert len(progress) >= 5, "sampled at least every 250 ms over 2 s"
    # The calibration job keeps running while the others start; it is never run twice.
    cal_id = run.recorder.of(ev.CalibrationStarted)[0].job_id
    assert run.state(cal_id) is JobState.RUNNING
    assert await run.result(timeout=30) == 0
    assert run.recorder.states(cal_id).count(JobState.RUNNING) == 1


async def test_pause_is_sigstop_at_the_os_level_and_resume_continues(workspace):
    ws = workspace(1, worker_args=["--seconds", "3", "--grandchildren", "1"])
    run = await start_run(ws.plan(), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.RUNNING)
    pid = run.runner.pid_of(1)
    assert run.orchestrator.pause(1)
    assert run.state(1) is JobState.PAUSED
    await run.wait_for(lambda: process_state(pid) == "T", timeout=2)
    assert run.orchestrator.resume(1)
    await run.wait_for(lambda: process_runs(pid), timeout=2)
    assert run.state(1) is JobState.RUNNING
    assert await run.result() == 0


async def test_kill_takes_down_grandchildren_and_removes_the_temp_output(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(
        1, worker_args=["--seconds", "30", "--grandchildren", "2", "--pidfile",
                        str(pidfile)])
    run = await start_run(ws.plan(), max_procs=1)
    pids: list[int] = []
    try:
        await run.wait_for(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
        pids = [int(p) for p in pidfile.read_text().split()]
        assert len(pids) == 3 and all(alive(p) for p in pids)
        spec = run.orchestrator.jobs[1].spec
        await run.wait_for(lambda: spec.temp_output_path.exists())
        assert run.orchestrator.kill(1)
        assert await run.result() == 1
        assert run.state(1) is JobState.KILLED
        await run.wait_for(lambda: not any(alive(p) for p in pids), timeout=2)
        assert not spec.temp_output_path.exists() and not spec.output_path.exists()
    finally:
        kill_quietly(pids)


async def test_kill_reaches_a_grandchild_that_left_the_session(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(1,
                   worker_args=[
                       "--seconds", "30", "--grandchildren", "1", "--setsid-grandchild",
                       "--pidfile",
                       str(pidfile)
                   ])
    run = await start_run(ws.plan(), max_procs=1)
    pids: list[int] = []
    try:
        await run.wait_for(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
        pids = [int(p) for p in pidfile.read_text().split()]
        assert len(pids) == 2, "the worker and its grandchild"
        grandchild = pids[1]

        def left_the_session() -> bool:
            stat = read_stat(grandchild)
            assert stat is not None, "the grandchild died before it called setsid()"
            return stat.session == grandchild

        await run.wait_for(left_the_session)  # fails loudly if it never leaves: nothing tested
        run.orchestrator.kill(1)
        assert await run.result() == 1
        await run.wait_for(lambda: not any(alive(p) for p in pids), timeout=2)
    finally:
        kill_quietly(pids)


async def test_a_job_ignoring_sigterm_is_sigkilled_after_the_grace_period(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(1,
                   worker_args=["--seconds", "30", "--ignore-term", "--pidfile",
                                str(pidfile)],
                   jobs={"kill_grace": 0.5})
    run = await start_run(ws.plan(), max_procs=1)
    await run.wait_for(pidfile.exists)  # SIGTERM is ignored from here on
    pid = run.runner.pid_of(1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    run.orchestrator.kill(1)
    assert await run.result(timeout=10) == 1
    assert loop.time() - started >= 0.45
    assert not alive(pid)
    last = run.recorder.of(ev.JobStateChanged)[-1]
    assert last.state is JobState.KILLED and last.signal == 9


async def test_a_paused_job_that_is_killed_dies(workspace):
    ws = workspace(1, worker_args=["--seconds", "30"])
    run = await start_run(ws.plan(), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.RUNNING)
    pid = run.runner.pid_of(1)
    run.orchestrator.pause(1)
    await run.wait_for(lambda: process_state(pid) == "T")
    run.orchestrator.kill(1)
    assert await run.result(timeout=10) == 1
    assert run.state(1) is JobState.KILLED and not alive(pid)


async def test_output_appears_only_on_success_under_its_final_name(workspace):
    ws = workspace(1, worker_args=["--seconds", "1.5"])
    run = await start_run(ws.plan(), max_procs=1)
    spec = run.orchestrator.jobs[1].spec
    await run.wait_for(lambda: spec.temp_output_path.exists())
    assert spec.temp_output_path.suffix == spec.output_path.suffix
    assert not spec.output_path.exists()
    assert await run.result() == 0
    assert spec.output_path.exists() and not spec.temp_output_path.exists()


async def test_pause_all_stops_everything_and_resume_all_continues(workspace):
    ws = workspace(4, worker_args=["--seconds", "1.5"])
    run = await start_run(ws.plan(), max_procs=2)
    await run.wait_for(lambda: run.orchestrator.active_count() == 2)
    run.orchestrator.pause_all()
    pids = [run.runner.pid_of(i) for i, job in run.orchestrator.jobs.items() if job.state.active]
    await run.wait_for(lambda: all(process_state(p) == "T" for p in pids), timeout=2)
    assert run.orchestrator.active_count() == 2
    assert sum(1 for j in run.orchestrator.jobs.values() if j.state is JobState.QUEUED) == 2
    run.orchestrator.resume_all()
    assert await run.result() == 0


async def test_a_command_that_cannot_be_executed_fails_cleanly(workspace, tmp_path):
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o755)
    ws = workspace(2, binary=str(script), flags=["{input_file}", "{output_file}"])
    plan = ws.plan()
    script.chmod(stat.S_IRUSR)  # not executable any more (after validation); root too
    assert not os.access(script, os.X_OK)
    run = await start_run(plan, max_procs=1)
    assert await run.result() == 1
    job = run.orchestrator.jobs[1]
    assert job.state is JobState.FAILED and "cannot execute" in job.reason


async def test_thousands_of_starts_failing_at_once_neither_recurse_nor_stall(workspace, tmp_path):
    """A start that fails without waiting ends its job inside the launch loop, which asks for
    the next launch: the loop takes it, not a nested call per job (with 300 slots, 300 nested
    launches would pass the recursion limit)."""
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o755)
    ws = workspace(1500,
                   binary=str(script),
                   flags=["{input_file}"],
                   size=0,
                   jobs={"halt_after_failures": 0})
    plan = ws.plan()
    script.chmod(stat.S_IRUSR)
    run = await start_run(plan, max_procs=300)
    assert await run.result() == 1
    states = {job.state for job in run.orchestrator.jobs.values()}
    assert states == {JobState.FAILED}
    assert all(job.exit_code == 127 for job in run.orchestrator.jobs.values())


async def test_a_start_that_raises_at_once_ends_the_run_with_it_and_launches_no_more(workspace):
    """A runner's bug is no job's failure: the run raises it, as when starts were tasks, and the
    launch loop stops at the first one instead of popping the whole queue."""

    class BuggyRunner(FakeRunner):

        async def start(self, spec: JobSpec, on_exit: ExitCallback) -> Started:
            self.attempts[spec.job_id] = 1
            raise RuntimeError("a bug in the runner")

    plan = workspace(50).plan()
    clock = FakeClock()
    runner = BuggyRunner(clock)
    bus = ev.EventBus()
    runner.bus = bus
    orchestrator = Orchestrator(plan, runner, bus, clock=clock, max_procs=4)
    with pytest.raises(RuntimeError, match="a bug in the runner"):
        await orchestrator.run()
    assert list(runner.attempts) == [1]


async def test_samples_carry_node_pid_cpu_rss_read_and_output_progress(workspace):
    ws = workspace(1, worker_args=["--seconds", "2", "--hold-mb", "50"], size=2 * MB)
    run = await start_run(ws.plan(), max_procs=1)
    assert await run.result() == 0
    samples = run.recorder.of(ev.JobSample)
    assert len(samples) >= 5
    assert {s.node for s in samples} == {run.runner.node}
    assert max(s.rss_bytes for s in samples) >= 50 * MB
    fractions = [s.read_fraction for s in samples if s.read_fraction is not None]
    assert fractions and fractions == sorted(fractions) and 0 < fractions[-1] <= 1
    outputs = [s.output_bytes for s in samples]
    assert outputs == sorted(outputs) and outputs[-1] > 0
    system = run.recorder.of(ev.SystemSample)
    assert system and system[-1].available_memory > 0 and system[-1].free_disk > 0


# --- scheduling on the fake runner and clock: no processes, no waiting (tests/fake_runner.py)


async def test_fake_concurrency_never_exceeds_the_limit_even_while_starts_are_in_flight(workspace):
    ws = workspace(8)
    run = await start_fake_run(ws.plan(), Script(seconds=3, start_seconds=0.5), max_procs=3)
    peak = 0

    def watch() -> bool:
        nonlocal peak
        peak = max(peak, run.orchestrator.active_count(), len(run.runner.running))
        return run.task.done()

    await run.wait_for(watch)
    assert await run.result() == 0
    assert peak == 3 and run.runner.peak == 3


async def test_calibration_of_a_job_ending_inside_the_window_uses_whole_life(workspace):
    ws = workspace(2, resources={"stabilization_seconds": 3})
    run = await start_fake_run(ws.plan(), Script(seconds=0.2))
    assert await run.result() == 0
    finished = run.recorder.of(ev.CalibrationFinished)[0]
    assert finished.source is ev.LimitSource.WHOLE_LIFE
    assert finished.profile.source == "whole-life"


async def test_calibration_window_measures_the_scripted_figures(workspace):
    ws = workspace(3, size=4 * MB, resources={"stabilization_seconds": 2.0, "sample_interval": 1})
    run = await start_fake_run(ws.plan(), Script(seconds=4, cpu_cores=1.0, rss_bytes=200 * MB))
    assert await run.result() == 0
    finished = run.recorder.of(ev.CalibrationFinished)[0]
    assert finished.source is ev.LimitSource.WINDOW
    assert finished.profile.cpu_cores == 1.0 and finished.profile.rss_bytes == 200 * MB
    # Every 250 ms once calibrating; the sampler's first sleep (1 s, the normal interval) was
    # already under way when the window opened.
    progress = [round(e.elapsed, 2) for e in run.recorder.of(ev.CalibrationProgress)]
    assert progress == [1.0, 1.25, 1.5, 1.75]


async def test_a_limit_the_operator_set_while_calibrating_wins_over_the_result(workspace):
    """`orch-tui limit DIR 1` during the measurement: the result is told, the limit stays 1
    (it used to become the calibrated limit, silently)."""
    ws = workspace(6, resources={"stabilization_seconds": 2.0, "sample_interval": 1})
    run = await start_fake_run(ws.plan(), Script(seconds=4, cpu_cores=0.1, rss_bytes=MB))
    await run.wait_for(lambda: run.recorder.of(ev.CalibrationStarted))
    run.orchestrator.set_limit(1)
    await run.wait_for(lambda: run.recorder.of(ev.CalibrationFinished))
    assert run.recorder.of(ev.CalibrationFinished)[0].decision.limit > 1
    assert run.orchestrator.limit == 1
    assert run.recorder.of(ev.LimitChanged)[-1].source is ev.LimitSource.OPERATOR
    await run.wait_for(lambda: run.recorder.states(2))
    assert run.orchestrator.active_count() == 1
    assert await run.result() == 0
    assert all(e.limit == 1 for e in run.recorder.of(ev.LimitChanged))


async def test_failed_calibration_job_moves_on_to_the_next(workspace):
    ws = workspace(["bad.bin", "good.bin"])
    run = await start_fake_run(
        ws.plan(), lambda spec, attempt: Script(seconds=0.1, exit_code=int("bad" in spec.name)))
    assert await run.result() == 1
    assert run.recorder.states(1)[-1] is JobState.FAILED
    assert run.recorder.of(ev.CalibrationStarted)[-1].job_id == 2


async def test_failed_job_leaves_no_output_and_exit_code_is_1(workspace):
    ws = workspace(2)
    run = await start_fake_run(ws.plan(), Script(exit_code=3), max_procs=2)
    assert await run.result() == 1
    for job in run.orchestrator.jobs.values():
        assert job.state is JobState.FAILED and job.exit_code == 3
        assert job.reason == "exit 3"
        assert not job.spec.output_path.exists() and not job.spec.temp_output_path.exists()


async def test_exit_zero_without_output_is_a_failure(workspace):
    ws = workspace(1)
    run = await start_fake_run(ws.plan(), Script(writes_output=False), max_procs=1)
    assert await run.result() == 1
    assert run.orchestrator.jobs[1].reason.startswith("no output")


async def test_existing_outputs_are_skipped_unless_overwrite(workspace):
    ws = workspace(2)
    ws.output_dir.mkdir()
    (ws.output_dir / "clip01_out.bin").write_bytes(b"old")
    run = await start_fake_run(ws.plan(), max_procs=2)
    assert await run.result() == 0
    assert run.recorder.states(1) == [JobState.SKIPPED]
    assert (ws.output_dir / "clip01_out.bin").read_bytes() == b"old"
    run = await start_fake_run(ws.plan(), max_procs=2, overwrite=True)
    assert await run.result() == 0
    assert (ws.output_dir / "clip01_out.bin").read_bytes() == ws.inputs[0].read_bytes()


async def test_missing_inputs_are_reported_and_the_rest_runs(workspace):
    ws = workspace(2)
    with open(ws.root / "inputs.txt", "a", encoding="utf-8") as handle:
        handle.write("in/nope.bin\nin\n")
    run = await start_fake_run(ws.plan(), max_procs=2)
    assert await run.result() == 1
    final = run.recorder.final()
    assert final.counts["succeeded"] == 2 and final.counts["missing"] == 2
    notices = " ".join(n.message for n in run.recorder.of(ev.Notice))
    assert "nope.bin" in notices and "directory" in notices


async def test_retries_run_a_failing_job_again(workspace):
    ws = workspace(1, jobs={"retries": 2})
    run = await start_fake_run(ws.plan(), Script(exit_code=1), max_procs=1)
    assert await run.result() == 1
    states = run.recorder.states(1)
    assert states.count(JobState.RUNNING) == 3
    assert run.orchestrator.jobs[1].attempt == 3


async def test_timeout_fails_the_job(workspace):
    ws = workspace(1, jobs={"timeout": 0.5})
    run = await start_fake_run(ws.plan(), Script(seconds=30), max_procs=1)
    assert await run.result(timeout=10) == 1
    assert run.orchestrator.jobs[1].reason.startswith("timeout after 0.5s")
    assert run.clock.now() - run.orchestrator.jobs[1].started == 0.5


async def test_a_paused_job_does_not_time_out_until_it_has_run_its_time(workspace):
    ws = workspace(1, jobs={"timeout": 10})
    run = await start_fake_run(ws.plan(), Script(seconds=30), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.RUNNING)
    await run.clock.advance(4)
    run.orchestrator.pause(1)
    await run.clock.advance(100)
    assert run.state(1) is JobState.PAUSED
    run.orchestrator.resume(1)
    assert await run.result() == 1
    assert run.clock.now() - run.orchestrator.jobs[1].started == 4 + 100 + 6


async def test_halt_after_consecutive_failures_stops_launching(workspace):
    ws = workspace(10, jobs={"halt_after_failures": 3})
    run = await start_fake_run(ws.plan(), Script(exit_code=1), max_procs=1)
    assert await run.result() == 1
    final = run.recorder.final()
    assert final.counts["failed"] == 3 and final.counts["queued"] == 7
    assert any("in a row" in n.message for n in run.recorder.of(ev.Notice))


async def test_no_requeue_once_the_run_halted_or_stops_launching(workspace):
    """A requeued job would wait in a queue nothing takes from: refused, not 'requeued'."""
    ws = workspace(6, jobs={"halt_after_failures": 2})
    scripts = lambda spec, _attempt: Script(seconds=50 if spec.job_id == 1 else 1,
                                            exit_code=0 if spec.job_id == 1 else 1)
    run = await start_fake_run(ws.plan(), scripts, max_procs=2)
    await run.wait_for(lambda: run.orchestrator.halted)
    failed = next(i for i in (2, 3) if run.state(i) is JobState.FAILED)
    assert not run.orchestrator.requeue(failed)
    assert run.state(failed) is JobState.FAILED
    assert await run.result() == 1
    assert run.recorder.final().counts["queued"] == 3


async def test_a_kill_of_a_job_already_stopping_sigkills_it_at_once(workspace):
    """The first kill waits `kill_grace` (60 s here) for a job that ignores SIGTERM; asked
    again, the operator means now: a real process, gone long before its grace."""
    ws = workspace(1, worker_args=["--seconds", "120", "--ignore-term"], jobs={"kill_grace": 60})
    run = await start_run(ws.plan(), max_procs=1)
    await run.wait_for(lambda: run.orchestrator.jobs[1].state is JobState.RUNNING)
    pid = run.orchestrator.jobs[1].pid
    await run.wait_for(lambda: signal_in_mask(pid, "SigIgn", signal.SIGTERM))  # its SIG_IGN
    assert run.orchestrator.kill(1)
    await run.wait_for(lambda: run.orchestrator.jobs[1].state is JobState.STOPPING)
    assert process_runs(pid), "SIGTERM ignored: it runs on through its grace"
    assert run.orchestrator.kill(1)
    assert await run.result(timeout=20) == 1
    assert run.orchestrator.jobs[1].state is JobState.KILLED and not alive(pid)
    assert run.recorder.of(ev.JobStateChanged)[-1].signal == signal.SIGKILL


async def test_stop_keeps_the_reason_of_a_kill_already_under_way(workspace):
    ws = workspace(2, jobs={"kill_grace": 5})
    run = await start_fake_run(ws.plan(), Script(seconds=50, ignore_term=True), max_procs=2)
    await run.wait_for(lambda: run.orchestrator.active_count() == 2)
    run.orchestrator.kill(1)
    run.orchestrator.shutdown(signal=signal.SIGTERM)  # as `orch-tui stop`
    assert await run.result() == 143
    ended = {e.job_id: e for e in run.recorder.of(ev.JobStateChanged) if e.state.finished}
    assert ended[1].stop is StopReason.OPERATOR
    assert ended[2].stop is StopReason.INTERRUPTED


async def test_requeue_runs_a_killed_job_again(workspace):
    ws = workspace(2)
    run = await start_fake_run(ws.plan(), Script(seconds=1), max_procs=1)
    await run.wait_for(lambda: run.state(1) is JobState.RUNNING)
    run.orchestrator.kill(1)
    await run.wait_for(lambda: run.state(1) is JobState.KILLED)
    assert run.orchestrator.requeue(1)
    assert not run.orchestrator.requeue(2)  # queued or running: nothing to requeue
    assert await run.result() == 0
    assert run.recorder.states(1) == [
        JobState.RUNNING, JobState.STOPPING, JobState.KILLED, JobState.QUEUED, JobState.RUNNING,
        JobState.SUCCEEDED
    ]


async def test_raising_the_limit_starts_more_jobs_at_once(workspace):
    ws = workspace(6)
    run = await start_fake_run(ws.plan(), Script(seconds=2), max_procs=1)
    await run.wait_for(lambda: run.orchestrator.active_count() == 1)
    run.orchestrator.set_limit(3)
    await run.clock.settle()  # no time passes: the starts happen at once
    assert run.orchestrator.active_count() == 3
    run.orchestrator.set_limit(1)
    assert await run.result() == 0
    assert [e.limit for e in run.recorder.of(ev.LimitChanged)] == [1, 3, 1]


async def test_pause_all_launches_nothing_until_resume_all(workspace):
    ws = workspace(4)
    run = await start_fake_run(ws.plan(), Script(seconds=1.5), max_procs=2)
    await run.wait_for(lambda: run.orchestrator.active_count() == 2)
    run.orchestrator.pause_all()
    assert len(run.runner.paused) == 2
    await run.clock.advance(60)
    assert run.orchestrator.active_count() == 2
    assert sum(1 for j in run.orchestrator.jobs.values() if j.state is JobState.QUEUED) == 2
    run.orchestrator.resume_all()
    assert await run.result() == 0


async def test_a_start_that_fails_fails_the_job_and_a_systemic_one_stops_launching(workspace):
    ws = workspace(4)

    def scripts(spec, attempt):
        if spec.job_id == 1:
            return Script(start_error=SpawnError("cannot execute tool: Permission denied"))
        if spec.job_id == 3:
            return Script(start_error=SpawnError("cannot create its log", systemic=True))
        return Script()

    run = await start_fake_run(ws.plan(), scripts, max_procs=1)
    assert await run.result() == 1
    job = run.orchestrator.jobs[1]
    assert job.state is JobState.FAILED and "cannot execute" in job.reason and job.exit_code == 127
    assert run.state(2) is JobState.SUCCEEDED
    # Not the job's fault: back at the head of the queue, not charged with an attempt.
    assert run.state(3) is JobState.QUEUED and run.orchestrator.jobs[3].attempt == 0
    assert run.state(4) is JobState.QUEUED and run.orchestrator.halted
    assert any("no more launches" in n.message for n in run.recorder.of(ev.Notice))


async def test_a_job_killed_while_it_is_starting_ends_killed(workspace):
    ws = workspace(1)
    run = await start_fake_run(ws.plan(), Script(seconds=30, start_seconds=5), max_procs=1)
    await run.wait_for(lambda: run.runner.attempts.get(1) == 1)
    assert run.orchestrator.active_count() == 0 and run.state(
        1) is JobState.QUEUED, "its start is still in flight"
    assert run.orchestrator.kill(1)
    assert await run.result() == 1
    assert run.recorder.states(1) == [JobState.RUNNING, JobState.STOPPING, JobState.KILLED]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_shutdown_asked_by_a_signal_ends_with_128_plus_it_in_the_summary(workspace, signum):
    ws = workspace(3)
    run = await start_fake_run(ws.plan(), Script(seconds=60), max_procs=2)
    await run.wait_for(lambda: run.orchestrator.active_count() == 2)
    run.orchestrator.shutdown(kill=True, signal=signum)
    run.orchestrator.shutdown(kill=True)  # the TUI's own quit after it: the signal stays
    assert await run.result() == 128 + signum
    final = run.recorder.final()
    assert final.exit_code == 128 + signum and final.interrupted
    assert final.counts["killed"] == 2
