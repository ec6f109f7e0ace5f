"""Memory and disk pressure, through the scheduler: a fake node whose figures the test sets.

No machine can be made to run out of memory or disk on demand, so these run on the fake runner
and clock (tests/fake_runner.py): the node's available memory and free disk are plain numbers,
and the guard's actions (hold launches, pause the newest, resume, give up) are checked at the
runner interface. That a pause really is SIGSTOP (state `T`) is test_orchestrator's job."""

from __future__ import annotations

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from tests.fake_runner import GB, MB, FakeRun, Script, start_fake_run


def active_ids(run: FakeRun) -> list[int]:
    """Jobs that hold a process, as the scheduler knows them."""
    return [job_id for job_id, job in run.orchestrator.jobs.items() if job.state.active]


async def test_critically_low_memory_stops_the_newest_job_until_headroom_returns(workspace):
    ws = workspace(3, resources={"sample_interval": 1.0})
    run = await start_fake_run(ws.plan(), Script(seconds=25), max_procs=3)
    await run.wait_for(lambda: run.orchestrator.active_count() == 3)
    newest = max(active_ids(run))
    # The reserve is 20 % of 10 GiB = 2 GiB; half of it is critical.
    run.runner.node(available_memory=int(0.5 * GB))
    await run.wait_for(lambda: run.state(newest) is JobState.PAUSED, timeout=3)
    assert run.orchestrator.jobs[newest].paused_by.value == "memory critically low"
    assert run.runner.paused == {newest}
    older = [j for j in active_ids(run) if j != newest]
    assert all(run.state(j) is JobState.RUNNING for j in older)
    run.runner.node(available_memory=9 * GB)
    await run.wait_for(lambda: run.state(newest) is JobState.RUNNING, timeout=3)
    assert await run.result() == 0
    levels = [(e.resource.value, e.level.value) for e in run.recorder.of(ev.ResourcePressure)]
    assert ("memory", "critical") in levels and levels[-1] == ("memory", "ok")


async def test_low_memory_or_disk_holds_launches_back(workspace):
    ws = workspace(4, resources={"sample_interval": 0.1})
    run = await start_fake_run(ws.plan(), Script(seconds=5), max_procs=1)
    await run.wait_for(lambda: run.orchestrator.active_count() == 1)
    run.runner.node(free_disk=0)  # the reserve is 20 % of the free space at start
    await run.wait_for(lambda: run.recorder.of(ev.ResourcePressure), timeout=3)
    await run.wait_for(lambda: run.orchestrator.active_count() == 0, timeout=30)
    await run.clock.advance(5)  # fake seconds: launches would have happened by now
    queued = sum(1 for j in run.orchestrator.jobs.values() if j.state is JobState.QUEUED)
    assert queued >= 2, "no launches while free disk is below its reserve"
    run.runner.node(free_disk=100 * GB)
    assert await run.result() == 0
    pressure = run.recorder.of(ev.ResourcePressure)
    assert pressure[0].resource is ev.Resource.DISK and pressure[0].level is ev.PressureLevel.LOW
    assert pressure[-1].level is ev.PressureLevel.OK


def growing(seconds: float = 20.0) -> Script:
    """Calibrates under 100 MiB, then grows 50 MiB a second to 600 MiB."""
    return Script(seconds=seconds, rss_bytes=80 * MB, rss_growth=50 * MB, rss_max=600 * MB)


async def test_growing_jobs_in_a_cgroup_are_requeued_never_oom_killed(workspace):
    """The issue's case on the fake node: 4 jobs growing to 600 MiB under 1.5 GiB."""
    ws = workspace(4, resources={"sample_interval": 1.0})
    run = await start_fake_run(ws.plan(), growing(), max_procs=4)
    run.runner.memory_limit = 1536 * MB
    assert await run.result() == 0
    assert run.runner.oom_kills == 0
    assert all(job.state is JobState.SUCCEEDED for job in run.orchestrator.jobs.values())
    requeued = [
        e for e in run.recorder.of(ev.JobStateChanged)
        if e.stop is ev.StopReason.MEMORY_REQUEUED and e.state is JobState.QUEUED
    ]
    assert requeued, "memory critical must requeue the youngest job"
    lowered = [
        e for e in run.recorder.of(ev.LimitChanged) if e.source is ev.LimitSource.MEMORY_PRESSURE
    ]
    assert lowered and lowered[-1].limit <= 2
    notices = [e.message for e in run.recorder.of(ev.Notice)]
    assert any(
        m.startswith(f"memory critical: job #{requeued[0].job_id} requeued, limit ")
        for m in notices)
    # A requeue is neither a failure nor a retry: no FAILED event, and no retry was allowed.
    assert not [e for e in run.recorder.of(ev.JobStateChanged) if e.state is JobState.FAILED]
    assert not any(e.stop is ev.StopReason.MEMORY_REQUEUED and e.state is not JobState.QUEUED
                   for e in run.recorder.of(ev.JobStateChanged))


async def test_requeued_job_partial_output_is_deleted(workspace):
    ws = workspace(2, resources={"sample_interval": 1.0})
    run = await start_fake_run(ws.plan(), growing(), max_procs=2)
    run.runner.memory_limit = 800 * MB
    await run.wait_for(lambda: any(e.stop is ev.StopReason.MEMORY_REQUEUED
                                   for e in run.recorder.of(ev.JobStateChanged)))
    job = next(e for e in run.recorder.of(ev.JobStateChanged)
               if e.stop is ev.StopReason.MEMORY_REQUEUED)
    spec = run.orchestrator.jobs[job.job_id].spec
    if spec.temp_output_path is not None:
        assert not spec.temp_output_path.exists()
    assert await run.result() == 0
    assert run.runner.oom_kills == 0


async def test_a_job_too_big_alone_fails_out_of_memory_without_a_requeue_loop(workspace):
    ws = workspace(2, resources={"sample_interval": 1.0})
    run = await start_fake_run(ws.plan(), growing(), max_procs=2)
    run.runner.memory_limit = 500 * MB  # 600 MiB never fits, even alone
    assert await run.result() != 0
    assert run.runner.oom_kills == 0
    failed = [e for e in run.recorder.of(ev.JobStateChanged) if e.state is JobState.FAILED]
    assert {e.job_id for e in failed} == {1, 2}
    assert all(e.stop is ev.StopReason.MEMORY and "out of memory" in e.reason for e in failed)
    requeues = [
        e for e in run.recorder.of(ev.JobStateChanged) if e.stop is ev.StopReason.MEMORY_REQUEUED
    ]
    assert len(requeues) <= 1


async def test_memory_near_its_reserve_samples_faster(workspace):
    ws = workspace(1, resources={"sample_interval": 2.0})
    run = await start_fake_run(ws.plan(), Script(seconds=30), max_procs=1)
    await run.wait_for(lambda: run.orchestrator.active_count() == 1)
    before = len(run.recorder.of(ev.SystemSample))
    await run.clock.advance(4.0)
    slow = len(run.recorder.of(ev.SystemSample)) - before
    run.runner.node(available_memory=3 * GB)  # above the 2 GiB reserve, under twice it
    await run.clock.advance(2.0)
    before = len(run.recorder.of(ev.SystemSample))
    await run.clock.advance(4.0)
    fast = len(run.recorder.of(ev.SystemSample)) - before
    assert slow <= 2 and fast >= 4 * slow
