"""The cluster runner on a real Dask cluster (tests/cluster_fixture.py: a scheduler and two
`orch-tui node` workers, CPU=1 MEM=2e9 each): packing by resources, pause and resume at the OS
level, kill without retry, a cancelled job that never started, the samples' pace, a worker killed
mid-job and a node set aside after failures."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from orch_tui.cluster.runner import QUARANTINE_AFTER, DaskRunner
from orch_tui.core import events as ev
from orch_tui.core.errors import SpawnError
from orch_tui.core.events import NodeState
from orch_tui.core.plan import JobSpec, Plan
from orch_tui.core.runner import ExitStatus, Started
from orch_tui.core.statedir import StateDir
from tests.cluster_fixture import NODES, Cluster
from tests.helpers import (Recorder, eventually, process_runs, process_state, run_cli,
                           write_workspace)

#: A job that says when it ran, in its own output: "START END" in wall-clock seconds.
STAMP = ("import sys, time; start = time.time(); time.sleep(float(sys.argv[1])); "
         "open(sys.argv[3], 'w').write('%f %f' % (start, time.time()))")


@dataclass
class Trial:
    """A plan on the shared folder, a runner for it, and every exit it reported."""

    plan: Plan
    runner: DaskRunner
    recorder: Recorder
    exits: dict[int, ExitStatus] = field(default_factory=dict)

    def spec(self, job_id: int) -> JobSpec:
        """The plan's job `job_id`."""
        return self.plan.jobs[job_id - 1]

    async def start(self, job_id: int) -> Started:
        """Start one job; its exit lands in `exits`."""
        return await self.runner.start(self.spec(job_id), self.exits.__setitem__)

    async def ended(self, *job_ids: int, timeout: float = 30.0) -> None:
        """Wait until every one of `job_ids` reported its exit."""
        await eventually(lambda: all(j in self.exits for j in job_ids), f"jobs {job_ids} to end",
                         timeout)


@asynccontextmanager
async def trial(cluster: Cluster, name: str, count: int, **workspace) -> AsyncIterator[Trial]:
    """A workspace of `count` inputs on the shared folder and an open runner for it; the runner
    is closed (every job of the run killed on the nodes) however the test ends."""
    cluster.ensure_nodes()
    ws = write_workspace(cluster.shared / name, count, **workspace)
    plan = ws.plan()
    state = StateDir.open(plan.config.directories.output_dir)
    state.make_run_temp(plan.run_token)
    bus, recorder = ev.EventBus(), Recorder()
    bus.add_listener(recorder)
    runner = DaskRunner(cluster.address, plan.config.directories.output_dir, plan.run_token, bus)
    try:
        await runner.open()
        yield Trial(plan, runner, recorder)
    finally:
        runner.kill_all()
        await runner.aclose()
        state.close()


def stamps(trial_: Trial) -> list[tuple[float, float]]:
    """Each job's (start, end) from its own output."""
    spans = []
    for spec in trial_.plan.jobs:
        assert spec.temp_output_path is not None
        start, end = spec.temp_output_path.read_text(encoding="utf-8").split()
        spans.append((float(start), float(end)))
    return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans that overlap at one instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_jobs_are_packed_by_the_memory_they_need(dask_cluster):
    """Three jobs needing 1.5e9 of MEM on two nodes of 2e9: never more than two at once, and
    the third starts only when one of the first two has ended."""
    async with trial(dask_cluster,
                     "packing",
                     3,
                     flags=["-c", STAMP, "1.5", "{input_file}", "{output_file}"]) as run:
        run.runner.set_requests(0.1, 1_500_000_000)
        started = await asyncio.gather(*(run.start(job_id) for job_id in (1, 2, 3)))
        await run.ended(1, 2, 3)
        assert all(status.ok for status in run.exits.values()), run.exits
        spans = stamps(run)
        assert most_at_once(spans) == 2, spans
        third = max(spans)
        assert sum(end <= third[0] for _, end in spans) >= 1, spans
        assert {s.node for s in started} == set(NODES)


async def test_pause_and_resume_reach_the_process_on_its_node(dask_cluster):
    async with trial(dask_cluster, "pause", 1, worker_args=["--seconds", "30", "--burn"]) as run:
        started = await run.start(1)
        assert started.node in NODES and process_runs(started.pid)
        batches = run.runner.batch_times(started.node)
        await eventually(lambda: cpu(run, 1) > 0.2, "the job burning CPU in the samples")
        run.runner.pause(1)
        await eventually(lambda: process_state(started.pid) == "T", "state T after the pause")
        seen = len(batches)
        await eventually(lambda: len(batches) >= seen + 2, "two batches while paused")
        assert cpu(run, 1) < 0.05
        run.runner.resume(1)
        await eventually(lambda: process_runs(started.pid), "running again")
        await eventually(lambda: cpu(run, 1) > 0.2, "CPU again")
        run.runner.terminate(1, 1.0)
        await run.ended(1)


def cpu(run: Trial, job_id: int) -> float:
    """The job's CPU use in the latest sample (0 before the first)."""
    sample = run.runner.sample().get(job_id)
    return sample.cpu_cores if sample is not None else 0.0


async def test_a_killed_job_ends_and_is_not_run_again(dask_cluster, tmp_path):
    pidfile = tmp_path / "pids"
    async with trial(dask_cluster,
                     "kill",
                     1,
                     worker_args=["--seconds", "30", "--ignore-term", "--pidfile",
                                  str(pidfile)]) as run:
        started = await run.start(1)
        await eventually(pidfile.exists, "the job's pid file")
        run.runner.terminate(1, 0.5)  # it ignores SIGTERM: SIGKILL after the grace period
        await run.ended(1)
        assert run.exits[1].signal == signal.SIGKILL
        assert process_state(started.pid) is None
        # The task ended with the job's status: nothing for Dask to retry.
        future = run.runner.last_future(1)
        assert future is not None and future.status == "finished"
        assert len(pidfile.read_text(encoding="utf-8").splitlines()) == 1


async def test_a_job_waiting_for_room_is_cancelled_before_it_runs(dask_cluster, tmp_path):
    record = tmp_path / "ran"
    async with trial(dask_cluster,
                     "cancel",
                     3,
                     worker_args=["--seconds", "30", "--record",
                                  str(record)]) as run:
        run.runner.set_requests(1, 2_000_000_000)  # one job fills a node
        await asyncio.gather(run.start(1), run.start(2))
        await eventually(lambda: record.exists() and len(record.read_text().splitlines()) == 2,
                         "both jobs running")
        waiting = asyncio.ensure_future(run.start(3))
        await eventually(lambda: run.runner.last_future(3) is not None, "the third task")
        run.runner.terminate(3, 1.0)
        started = await asyncio.wait_for(waiting, 10)
        assert started.pid == 0  # it never ran
        await run.ended(3)
        assert not run.exits[3].ok
        assert len(record.read_text(encoding="utf-8").splitlines()) == 2
        for job_id in (1, 2):
            run.runner.terminate(job_id, 1.0)
        await run.ended(1, 2)


async def test_each_node_sends_its_samples_once_a_second(dask_cluster):
    async with trial(dask_cluster, "pace", 1, worker_args=["--seconds", "30"]) as run:
        started = await run.start(1)
        batches = run.runner.batch_times(started.node)
        seen = len(batches)
        await eventually(lambda: len(batches) >= seen + 4, "four more batches", 10)
        gaps = [b - a for a, b in zip(batches[seen:], batches[seen + 1:])]
        assert max(gaps) < 1.6 and sum(gaps) / len(gaps) <= 1.1, gaps
        sample = run.runner.sample()[1]
        assert sample.node == started.node and sample.pid == started.pid
        stats = run.runner.stats()
        assert set(stats) == set(NODES) and all(s.logical_cores >= 1 for s in stats.values())
        run.runner.terminate(1, 1.0)
        await run.ended(1)


async def test_a_job_whose_worker_is_killed_finishes_on_the_other_node(dask_cluster, tmp_path):
    pidfile = tmp_path / "pids"
    try:
        async with trial(dask_cluster,
                         "lost",
                         1,
                         size=256 * 1024,
                         worker_args=["--seconds", "3", "--pidfile",
                                      str(pidfile)]) as run:
            restarts: list[tuple[int, Started]] = []
            run.runner.on_restart = lambda job_id, again: restarts.append((job_id, again))
            started = await run.start(1)
            await eventually(pidfile.exists, "the job's pid file")
            dask_cluster.kill_node(started.node)
            # The node's guardian kills its job: no orphan.
            await eventually(lambda: process_state(started.pid) in (None, "Z"), "no orphan", 10)
            await run.ended(1, timeout=60)
            assert run.exits[1].ok, run.exits[1]
            pids = [line.split()[0] for line in pidfile.read_text(encoding="utf-8").splitlines()]
            assert len(pids) == 2 and all(process_state(int(pid)) is None for pid in pids)
            # The owner heard where it started over, and as which process.
            assert [(job_id, again.pid) for job_id, again in restarts] == [(1, int(pids[1]))]
            assert restarts[0][1].node != started.node
            lost = [e for e in run.recorder.of(ev.NodeStateChanged) if e.state is NodeState.LOST]
            assert [e.node for e in lost] == [started.node]
            spec = run.spec(1)
            assert spec.temp_output_path is not None
            assert spec.temp_output_path.read_bytes() == spec.input_path.read_bytes()
    finally:
        dask_cluster.ensure_nodes()


async def test_a_node_failing_job_after_job_gets_no_more(dask_cluster):
    """Every job fails (exit 3): each node is set aside after QUARANTINE_AFTER failures in a
    row, then a start is refused as the machine's (no more launches), not as the job's."""
    count = 2 * QUARANTINE_AFTER
    async with trial(dask_cluster, "quarantine", count + 1, worker_args=["--exit", "3"]) as run:
        for job_id in range(1, count + 1):
            await run.start(job_id)
            await run.ended(job_id)
        quarantined = [
            e for e in run.recorder.of(ev.NodeStateChanged) if e.state is NodeState.QUARANTINED
        ]
        assert {e.node for e in quarantined} == set(NODES)
        assert all(e.failures == QUARANTINE_AFTER for e in quarantined)
        assert run.runner.stats() == {}  # a node set aside offers no capacity
        with pytest.raises(SpawnError) as refused:
            await run.start(count + 1)
        assert refused.value.systemic and "quarantined" in str(refused.value)


async def test_a_node_whose_jobs_exit_0_without_output_gets_no_more(dask_cluster):
    """Exit 0 with nothing written is a failure the run decides after the exit ("no output"):
    it must count against the node as any failure does (it counted as a success, so such a
    node was never set aside)."""
    count = 2 * QUARANTINE_AFTER
    async with trial(dask_cluster, "nooutput", count, worker_args=["--no-output"]) as run:
        for job_id in range(1, count + 1):
            await run.start(job_id)
            await run.ended(job_id)
        assert all(status.ok for status in run.exits.values())  # the exits themselves
        quarantined = [
            e for e in run.recorder.of(ev.NodeStateChanged) if e.state is NodeState.QUARANTINED
        ]
        assert {e.node for e in quarantined} == set(NODES)


def test_the_node_command_refuses_a_bad_address_in_one_line():
    result = run_cli("node", "http://nowhere:8786")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("orch-tui node: error:")
    assert "Traceback" not in result.stderr
