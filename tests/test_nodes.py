"""A run on several nodes, as observers see it: the fake runner's nodes, the record's per-node
state and jobs (the snapshot an attached client and `orch-tui status` get), the wire, the
journal's node column, status's per-node lines and JSON, and the joblog's Host column.

The runs are the real orchestrator on the multi-node fake runner (tests/fake_runner.py) in fake
time: no Dask, and the same events a cluster runner feeds (a SystemSample per node per sweep,
the job's node in its state changes and samples, NodeStateChanged)."""
# pylint: disable=missing-function-docstring  # each test's name says what it checks

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.control.remote import RemoteRun
from orch_tui.core.events import JobState, NodeState
from orch_tui.core.host import RunHost
from orch_tui.core.joblog import JoblogWriter
from orch_tui.core.journal import Journal
from orch_tui.core.nodes import NodeTally, combined
from orch_tui.core.plan import load_plan
from orch_tui.core.runstatus import RunState, journal_status, with_snapshot
from orch_tui.core.session import RunOptions
from orch_tui.core.snapshot import RunRecord, RunSnapshot
from orch_tui.core.statedir import STATE_DIR_NAME
from orch_tui.core.tally import Counts
from orch_tui.subcommands.status import status_lines
from tests.fake_runner import FakeRun, Script, start_fake_run
from tests.helpers import write_workspace

NODES = ("node-a", "node-b", "node-c")


async def cluster_run(tmp_path: Path,
                      jobs: int = 9,
                      *,
                      seconds: float = 60.0,
                      max_procs: int = 6,
                      **kwargs) -> tuple[FakeRun, RunRecord]:
    """A fake run of `jobs` jobs on three nodes, with a record listening from the start."""
    plan = write_workspace(tmp_path / "ws", jobs).plan()
    record = RunRecord(plan, calibrate=False)
    run = await start_fake_run(plan,
                               Script(seconds=seconds),
                               nodes=NODES,
                               max_procs=max_procs,
                               **kwargs)
    run.orchestrator.bus.add_listener(record, first=True)
    return run, record


def held_by_node(run: FakeRun) -> dict[str, int]:
    """The jobs each node holds, as the scheduler knows them (the truth to compare with)."""
    held = dict.fromkeys(NODES, 0)
    for job in run.orchestrator.jobs.values():
        if job.state.active:
            held[job.node] += 1
    return held


async def test_the_fake_runner_spreads_jobs_round_robin_and_samples_each_node(tmp_path):
    run, _ = await cluster_run(tmp_path)
    await run.wait_for(lambda: len(run.runner.running) == 6)
    assert held_by_node(run) == {"node-a": 2, "node-b": 2, "node-c": 2}
    await run.clock.advance(2)
    sweeps = run.recorder.of(ev.SystemSample)
    assert {sample.node for sample in sweeps} == set(NODES)
    last = [sample for sample in sweeps if sample.time == sweeps[-1].time]
    assert sorted(sample.node for sample in last) == list(NODES), "one sample a node a sweep"
    # Two jobs of one core each on four cores: half of each node's CPU (2% at rest).
    assert all(sample.cpu_percent == pytest.approx(52.0) for sample in last)
    samples = run.recorder.of(ev.JobSample)
    assert {(s.job_id, s.node)
            for s in samples} == {(job.spec.job_id, job.node)
                                  for job in run.orchestrator.jobs.values() if job.state.active}
    run.orchestrator.shutdown(kill=True)
    await run.result()


async def test_a_scripts_node_places_its_job_there(tmp_path):
    plan = write_workspace(tmp_path / "ws", 4).plan()
    run = await start_fake_run(plan,
                               lambda spec, attempt: Script(seconds=5, node="node-b"),
                               nodes=NODES,
                               max_procs=4)
    assert await run.result() == 0
    started = [e for e in run.recorder.of(ev.JobStateChanged) if e.state is JobState.RUNNING]
    assert {e.node for e in started} == {"node-b"} and len(started) == 4


async def test_the_record_keeps_each_nodes_state_figures_and_jobs(tmp_path):
    run, record = await cluster_run(tmp_path)
    await run.wait_for(lambda: len(run.runner.running) == 6)
    await run.clock.advance(1)
    run.runner.set_node_state("node-c", NodeState.QUARANTINED, failures=3)
    run.runner.set_node_state("node-b", NodeState.LOST)
    await run.clock.advance(2)
    nodes = {node.name: node for node in record.snapshot().nodes}
    assert list(nodes) == list(NODES)
    assert {name: node.running for name, node in nodes.items()} == held_by_node(run)
    assert nodes["node-a"].state is NodeState.UP and nodes["node-a"].state_text == "up"
    assert nodes["node-c"].state_text == "set aside after 3 failures"
    assert nodes["node-c"].address == "tcp://127.0.0.1:40002"
    assert nodes["node-b"].state_text == "lost"
    sample = nodes["node-a"].sample
    assert sample is not None and sample.node == "node-a" and sample.logical_cores == 4
    # The lost node sends no more samples: its last one is older than the others'.
    lost_sample = nodes["node-b"].sample
    assert lost_sample is not None and lost_sample.time < sample.time
    run.orchestrator.shutdown(kill=True)
    await run.result()
    assert all(node.running == 0 for node in record.snapshot().nodes)


async def test_a_node_set_aside_gets_no_more_jobs(tmp_path):
    run, _ = await cluster_run(tmp_path, 12, seconds=5.0, max_procs=3)
    await run.wait_for(lambda: len(run.runner.running) == 3)
    run.runner.set_node_state("node-c", NodeState.QUARANTINED, failures=3)
    before = {e.job_id for e in run.recorder.of(ev.JobStateChanged) if e.node == "node-c"}
    assert await run.result() == 0
    after = {e.job_id for e in run.recorder.of(ev.JobStateChanged) if e.node == "node-c"}
    assert after == before, "the jobs it held finish; it starts no other"
    changed = run.recorder.of(ev.NodeStateChanged)
    assert [(e.node, e.state, e.failures)
            for e in changed] == [("node-c", NodeState.QUARANTINED, 3)]


async def test_a_node_that_fails_every_job_is_shown_as_such(tmp_path):
    run, record = await cluster_run(tmp_path, 6, seconds=2.0, max_procs=3)
    run.runner.failing.add("node-b")  # e.g. ffmpeg missing there
    await run.wait_for(
        lambda: any(e.state is JobState.FAILED for e in run.recorder.of(ev.JobStateChanged)))
    failed = [e for e in run.recorder.of(ev.JobStateChanged) if e.state is JobState.FAILED]
    assert {e.node for e in failed} == {"node-b"}
    run.runner.set_node_state("node-b", NodeState.QUARANTINED, failures=len(failed))
    await run.result()
    node_b = {node.name: node for node in record.snapshot().nodes}["node-b"]
    assert node_b.state is NodeState.QUARANTINED and node_b.failures == len(failed)


async def test_nodes_and_their_state_changes_pass_the_wire(tmp_path):
    run, record = await cluster_run(tmp_path)
    await run.wait_for(lambda: len(run.runner.running) == 6)
    run.runner.set_node_state("node-c", NodeState.QUARANTINED, failures=4)
    await run.clock.advance(2)
    snap = record.snapshot()
    back = wire.parse_snapshot(wire.decode(wire.encode(wire.snapshot_message(snap)), limit=None))
    assert back.nodes == snap.nodes and len(back.nodes) == 3
    event = run.recorder.of(ev.NodeStateChanged)[0]
    assert wire.parse_event(wire.decode(wire.encode(wire.event_message(event)))) == event
    run.orchestrator.shutdown(kill=True)
    await run.result()


def test_a_snapshot_without_nodes_still_reads():
    """A run of an orch-tui before nodes sends no `nodes`: read as none."""
    data = {"type": "RunSnapshot", "jobs": {"views": []}, "counts": wire.to_wire(Counts())}
    message = {"kind": "snapshot", "snapshot": data}
    assert wire.parse_snapshot(wire.decode(wire.encode(message))).nodes == ()


# pylint: disable-next=too-many-arguments,too-many-positional-arguments  # a sample's figures
def sample_of(node: str,
              cores: int,
              cpu: float,
              total: int,
              available: int,
              free: int,
              at: float = 5.0) -> ev.SystemSample:
    """A node's sample at time `at` (the run's reserves and projected use fixed)."""
    return ev.SystemSample(time=at,
                           node=node,
                           logical_cores=cores,
                           cpu_percent=cpu,
                           total_memory=total,
                           available_memory=available,
                           memory_reserve=10,
                           free_disk=free,
                           disk_total=1000,
                           disk_reserve=5,
                           projected_disk_use=7)


def test_several_samples_combine_as_the_scheduler_sums_its_nodes():
    one = sample_of("a", 4, 100.0, 100, 40, 500)
    two = sample_of("b", 12, 0.0, 300, 200, 400)
    both = combined([one, two])
    assert (both.logical_cores, both.cpu_percent) == (16, 25.0)
    assert (both.total_memory, both.available_memory, both.free_disk) == (400, 240, 400)
    assert (both.memory_reserve, both.projected_disk_use) == (10, 7), "the run's, not a node's"
    assert combined([one]) is one


def test_a_jobs_node_counts_once_and_moves_with_its_state():
    tally = NodeTally()
    tally.apply(sample_of("a", 4, 1.0, 1, 1, 1))
    job = {"time": 1.0, "job_id": 1, "name": "x", "previous": None, "attempt": 1}
    tally.apply(ev.JobStateChanged(state=JobState.RUNNING, node="a", **job))
    tally.apply(ev.JobStateChanged(state=JobState.PAUSED, node="a", **job))
    assert [node.running for node in tally.views()] == [1]
    tally.apply(ev.JobStateChanged(state=JobState.QUEUED, node="a", **job))
    tally.apply(ev.JobStateChanged(state=JobState.RUNNING, node="b", **job))
    assert [(node.name, node.running) for node in tally.views()] == [("a", 0)]
    tally.apply(sample_of("b", 4, 1.0, 1, 1, 1))
    assert [(node.name, node.running) for node in tally.views()] == [("a", 0), ("b", 1)]


async def test_status_shows_a_line_per_node_and_nodes_in_json(tmp_path):
    run, record = await cluster_run(tmp_path)
    await run.wait_for(lambda: len(run.runner.running) == 6)
    run.runner.set_node_state("node-c", NodeState.QUARANTINED, failures=3)
    run.runner.set_node_state("node-b", NodeState.LOST)
    await run.clock.advance(2)
    journal = journal_of(run)
    status = with_snapshot(journal, record.snapshot(), epoch=1.7e9, monotonic=run.clock.now())
    lines = status_lines(status, now=1.7e9)
    assert max(len(line) for line in lines) <= 80
    start = lines.index("nodes:    3 (1 set aside, 1 lost)")
    node_a, node_b, node_c = lines[start + 1:start + 4]
    assert node_a.split()[:2] == ["node-a", "up"] and node_a.endswith("2 jobs")
    assert " 4c " in node_a and " 52% " in node_a and "/8.00G" in node_a
    assert node_b.split()[:2] == ["node-b", "lost"]
    assert "set aside after 3 failures" in node_c
    assert lines[-1].startswith("exit:")
    doc = json.loads(json.dumps(status.as_json()))
    assert doc["schema"] == 1
    by_name = {node["name"]: node for node in doc["nodes"]}
    assert list(by_name) == list(NODES)
    assert by_name["node-a"] == {
        "name": "node-a",
        "state": "up",
        "failures": 0,
        "cores": 4,
        "cpu_percent": pytest.approx(52.0),
        "memory_total": 8 * 1024**3,
        "memory_available": by_name["node-a"]["memory_available"],
        "running": 2
    }
    assert by_name["node-a"]["memory_available"] < 7 * 1024**3  # less the jobs' memory
    assert (by_name["node-c"]["state"], by_name["node-c"]["failures"]) == ("quarantined", 3)
    assert by_name["node-b"]["state"] == "lost"
    run.orchestrator.shutdown(kill=True)
    await run.result()


def journal_of(run: FakeRun):
    """The journal's status of a run whose jobs were journaled as they happened (a run that
    died: no lock holder)."""
    output = run.orchestrator.plan.config.directories.output_dir
    with Journal.open(output / STATE_DIR_NAME) as journal:
        journal.start_run(run.orchestrator.plan, ["orch-tui"])
        for event in run.recorder.of(ev.JobStateChanged):
            journal.listener(event)
    status = journal_status(output)
    assert status is not None
    return status


async def test_status_from_the_journal_alone_names_each_nodes_jobs(tmp_path):
    run, _ = await cluster_run(tmp_path)
    await run.wait_for(lambda: len(run.runner.running) == 6)
    status = journal_of(run)
    assert status.state is RunState.DIED and status.source == "journal"
    assert [(node.name, node.running, node.state) for node in status.nodes] == [("node-a", 2, None),
                                                                                ("node-b", 2, None),
                                                                                ("node-c", 2, None)]
    lines = status_lines(status, now=1.7e9)
    start = lines.index("nodes:    3")
    assert lines[start + 1].split() == ["node-a", "-", "-", "-", "-", "2", "jobs"]
    assert status.as_json()["nodes"][0] == {
        "name": "node-a",
        "state": None,
        "failures": 0,
        "cores": None,
        "cpu_percent": None,
        "memory_total": None,
        "memory_available": None,
        "running": 2
    }
    run.orchestrator.shutdown(kill=True)
    await run.result()


async def test_the_joblog_host_column_names_each_jobs_node(tmp_path):
    run, _ = await cluster_run(tmp_path, 6, seconds=3.0)
    joblog = JoblogWriter(tmp_path / "joblog.txt", run.orchestrator.plan, hosts=True)
    run.orchestrator.bus.add_listener(joblog)
    assert await run.result() == 0
    joblog.close()
    rows = [line.split("\t") for line in (tmp_path / "joblog.txt").read_text().splitlines()[1:]]
    nodes = {
        e.job_id: e.node
        for e in run.recorder.of(ev.JobStateChanged) if e.state is JobState.SUCCEEDED
    }
    assert len(rows) == 6
    for row in rows:
        assert row[1] == nodes[int(row[0])]
    assert {row[1] for row in rows} == {"node-a", "node-b", "node-c"}


async def test_a_job_started_over_on_another_node_is_told_with_its_node_pid_and_start(tmp_path):
    """Its node lost, the cluster runs the job again elsewhere: the run, an attached screen,
    the journal and the joblog must name the new node and pid and count its time from there
    (they kept the dead node, and the joblog counted the time spent on it)."""
    run, record = await cluster_run(tmp_path, 3, seconds=10.0)
    plan = run.orchestrator.plan
    joblog = JoblogWriter(tmp_path / "joblog.txt", plan, hosts=True)
    run.orchestrator.bus.add_listener(joblog)
    await run.wait_for(lambda: len(run.runner.running) == 3)
    await run.clock.advance(4.0)
    lost = run.runner.running[1].node
    elsewhere = next(node for node in NODES if node != lost)
    old_pid = run.runner.running[1].pid
    run.runner.set_node_state(lost, NodeState.LOST)
    run.runner.restart(1, elsewhere)
    again = run.clock.now()
    job = run.orchestrator.jobs[1]
    assert (job.node, job.pid, job.state) == (elsewhere, run.runner.running[1].pid,
                                              JobState.RUNNING)
    assert job.pid != old_pid
    starts = [
        e for e in run.recorder.of(ev.JobStateChanged)
        if e.job_id == 1 and e.state is JobState.RUNNING
    ]
    assert [(e.node, e.time, e.attempt) for e in starts][1:] == [(elsewhere, again, 1)]
    assert starts[1].pid == job.pid and starts[1].started_wall > starts[0].started_wall
    view = next(v for v in record.snapshot().jobs if v.job_id == 1)
    assert (view.node, view.pid, view.started) == (elsewhere, job.pid, again)
    status = journal_of(run)
    third = next(node for node in NODES if node not in (lost, elsewhere))
    assert {n.name: n.running for n in status.nodes if n.running} == {elsewhere: 2, third: 1}
    # A paused job started over is a new process, running: a start, not a resume.
    assert run.orchestrator.pause(2)
    await run.clock.advance(1.0)
    run.runner.restart(2, lost if run.runner.running[2].node != lost else third)
    assert run.state(2) is JobState.RUNNING
    view = next(v for v in record.snapshot().jobs if v.job_id == 2)
    assert view.started == run.clock.now()
    assert await run.result() == 0
    joblog.close()
    rows = {
        int(row[0]): row
        for row in (line.split("\t")
                    for line in (tmp_path / "joblog.txt").read_text().splitlines()[1:])
    }
    assert rows[1][1] == elsewhere and float(rows[1][3]) == pytest.approx(10.0, abs=0.01)
    assert float(rows[1][2]) == pytest.approx(starts[1].started_wall, abs=0.001)


async def test_a_local_runs_one_node_reaches_an_attached_client_and_status(workspace):
    """A real local run: its one node (this machine, named as the local runner names it) is in
    the snapshot a client gets over the control socket, with the jobs it holds, and in status's
    JSON; status's human lines stay as they were (no node lines for one node)."""
    host = RunHost(RunOptions(max_procs=2))
    host.start(load_plan(workspace(3, worker_args=["--seconds", "3"]).config))
    assert host.control is not None and host.control.path is not None
    seen: list[RunSnapshot] = []

    async def node_seen() -> bool:
        remote = await RemoteRun.connect(host.control.path)
        seen.append(remote.attach(lambda _event: None))
        await remote.close()
        nodes = seen[-1].nodes
        return len(nodes) == 1 and nodes[0].running == 2 and nodes[0].sample is not None

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not await node_seen():
        assert loop.time() < deadline, "the local node with its two jobs in a snapshot"
        await asyncio.sleep(0.05)
    (node, ) = seen[-1].nodes
    assert node.name == socket.gethostname() and node.state is NodeState.UP
    output = host.state.output_dir if host.state is not None else None
    assert output is not None
    status = with_snapshot(journal_status(output),
                           seen[-1],
                           epoch=time.time(),
                           monotonic=time.monotonic())
    assert [(n["name"], n["state"], n["running"])
            for n in status.as_json()["nodes"]] == [(socket.gethostname(), "up", 2)]
    assert not any(line.startswith("nodes:") for line in status_lines(status))
    assert await host.wait() == 0
    host.close()
