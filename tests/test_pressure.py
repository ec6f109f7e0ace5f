"""Memory and disk pressure, through the scheduler: a fake node whose figures the test sets.

No machine can be made to run out of memory or disk on demand, so these run on the fake runner
and clock (tests/fake_runner.py): the node's available memory and free disk are plain numbers,
and the guard's actions (hold launches, pause the newest, resume, give up) are checked at the
runner interface. That a pause really is SIGSTOP (state `T`) is test_orchestrator's job."""

from __future__ import annotations

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from tests.fake_runner import GB, FakeRun, Script, start_fake_run


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
