"""Memory and disk pressure: real jobs, with the machine's figures injected.

This machine cannot be made to run out of memory or disk on demand, so a LocalRunner subclass
reports chosen available-memory and free-disk figures; everything else (the processes, their
stopping and continuing) is real."""

from __future__ import annotations

import asyncio
import dataclasses

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.orchestrator import Orchestrator
from orch_tui.core.runner import LocalRunner, NodeStats
from tests.helpers import Recorder, Running, process_state

GB = 1024**3


class SqueezedRunner(LocalRunner):
    """A LocalRunner whose memory and disk figures the test sets."""

    available: int | None = None
    free_disk: int | None = None

    def stats(self) -> NodeStats:
        real = super().stats()
        return dataclasses.replace(
            real,
            total_memory=10 * GB,
            available_memory=self.available if self.available is not None else 9 * GB,
            free_disk=self.free_disk if self.free_disk is not None else real.free_disk)


async def _start(plan, runner: LocalRunner, **kwargs) -> Running:
    bus = ev.EventBus()
    recorder = Recorder()
    bus.add_listener(recorder)
    orchestrator = Orchestrator(plan, runner, bus, **kwargs)
    return Running(orchestrator, recorder, asyncio.create_task(orchestrator.run()))


def active_ids(run: Running) -> list[int]:
    """Jobs that hold a process, as the scheduler knows them."""
    return [job_id for job_id, job in run.orchestrator.jobs.items() if job.state.active]


async def test_critically_low_memory_stops_the_newest_job_until_headroom_returns(workspace):
    ws = workspace(3, worker_args=["--seconds", "2.5"])
    plan = ws.plan()
    runner = SqueezedRunner(plan.config.directories.output_dir)
    run = await _start(plan, runner, max_procs=3)
    await run.wait_for(lambda: run.orchestrator.active_count() == 3)
    newest = max(active_ids(run))
    runner.available = int(0.5 * GB)  # reserve is 20 % of 10 GiB = 2 GiB; half of it is critical
    await run.wait_for(lambda: run.state(newest) is JobState.PAUSED, timeout=3)
    assert run.orchestrator.jobs[newest].paused_by.value == "memory critically low"
    pid = run.runner.pid_of(newest)
    await run.wait_for(lambda: process_state(pid) == "T", timeout=2)
    older = [j for j in active_ids(run) if j != newest]
    assert all(run.state(j) is JobState.RUNNING for j in older)
    runner.available = 9 * GB
    await run.wait_for(lambda: run.state(newest) is JobState.RUNNING, timeout=3)
    assert await run.result() == 0
    levels = [(e.resource.value, e.level.value) for e in run.recorder.of(ev.ResourcePressure)]
    assert ("memory", "critical") in levels and levels[-1] == ("memory", "ok")


async def test_low_memory_or_disk_holds_launches_back(workspace):
    ws = workspace(4, worker_args=["--seconds", "0.5"])
    plan = ws.plan()
    runner = SqueezedRunner(plan.config.directories.output_dir)
    run = await _start(plan, runner, max_procs=1)
    await run.wait_for(lambda: run.orchestrator.active_count() == 1)
    runner.free_disk = 0  # the reserve is 20 % of the free space at start
    await run.wait_for(lambda: run.recorder.of(ev.ResourcePressure), timeout=3)
    await run.wait_for(lambda: run.orchestrator.active_count() == 0, timeout=3)
    await asyncio.sleep(0.5)
    queued = sum(1 for j in run.orchestrator.jobs.values() if j.state is JobState.QUEUED)
    assert queued >= 2, "no launches while free disk is below its reserve"
    runner.free_disk = None
    assert await run.result() == 0
    pressure = run.recorder.of(ev.ResourcePressure)
    assert pressure[0].resource is ev.Resource.DISK and pressure[0].level is ev.PressureLevel.LOW
    assert pressure[-1].level is ev.PressureLevel.OK
