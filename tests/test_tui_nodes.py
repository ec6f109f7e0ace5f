"""Pilot tests of a run on several nodes: the nodes panel (a line per node, its state in words,
compact at 80x24, redrawn when a node changes), the node filter (o / O) composed with the state
filter and said in the table's title, the help, and the charts (one point a sweep of the nodes).

The events are the real orchestrator's on the multi-node fake runner (tests/fake_runner.py),
played into the app by the fake host (tests/fake_controller.py) with the run's frozen clock."""
# pylint: disable=missing-function-docstring  # each test's name says what it checks

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.events import JobState, NodeState
from orch_tui.core.snapshot import RunRecord, RunSnapshot, job_view
from orch_tui.tui.app import OrchApp
from orch_tui.tui.model import RunModel
from orch_tui.tui.screens.help import HelpScreen
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.widgets.job_table import JobTable
from orch_tui.tui.widgets.nodes import NodesPanel
from tests.fake_controller import FakeController
from tests.fake_runner import Script, start_fake_run
from tests.helpers import write_workspace
from tests.test_nodes import sample_of
from tests.test_tui_panels import screen_text
from tests.test_tui_snapshots import played, run_model, session_app

NODES = ("node-a", "node-b", "node-c")


@dataclass
class Cluster:
    """A fake run on three nodes, stopped after its first jobs ran a few seconds: node-c set
    aside after 3 failures, node-b lost; its events (played by `controller`), and its snapshot
    and clock then."""

    controller: FakeController
    snapshot: RunSnapshot
    now: float


async def cluster(tmp_path: Path, *, trouble: bool = True) -> Cluster:
    plan = write_workspace(tmp_path / "ws", 12).plan()
    record = RunRecord(plan, calibrate=False)
    run = await start_fake_run(plan, Script(seconds=60), nodes=NODES, max_procs=6)
    run.orchestrator.bus.add_listener(record, first=True)
    await run.wait_for(lambda: len(run.runner.running) == 6)
    await run.clock.advance(2)
    if trouble:
        run.runner.set_node_state("node-c", NodeState.QUARANTINED, failures=3)
        run.runner.set_node_state("node-b", NodeState.LOST)
        await run.clock.advance(1)
    events = list(run.recorder.events)
    now, snapshot = run.clock.now(), record.snapshot()
    run.orchestrator.shutdown(kill=True)
    await run.result()
    views = tuple(job_view(spec) for spec in plan.jobs)
    controller = FakeController(views, events, limit=6, clock=lambda: now)
    return Cluster(controller, snapshot, now)


def panel_lines(app: OrchApp) -> list[str]:
    """The nodes panel's lines as drawn (inside its border)."""
    panel = app.screen.query_one(NodesPanel)
    region = panel.content_region
    lines = screen_text(app)
    return [line[region.x:region.right].rstrip() for line in lines[region.y:region.bottom]]


async def test_the_panel_has_a_line_per_node_with_its_state_and_jobs(tmp_path):
    run = await cluster(tmp_path)
    app = OrchApp(run.controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await played(pilot)
        panel = app.screen.query_one(NodesPanel)
        assert panel.display and panel.border_title == "nodes · 3 · 1 set aside · 1 lost"
        node_a, node_b, node_c = panel_lines(app)
        assert node_a.split()[:2] == ["node-a", "up"] and node_a.endswith("2 jobs")
        assert "cpu █████░░░░░  52%" in node_a and "4c" in node_a and "/8.00G" in node_a
        assert node_b.split()[:2] == ["node-b", "lost"] and node_b.endswith("2 jobs")
        assert node_c.startswith("node-c set aside after 3 failures")
        # Coloured by the theme's state colours (not the line's).
        styles = {
            state: panel.get_component_rich_style(f"nodes-panel--{state.value}").color
            for state in NodeState
        }
        assert len(set(styles.values())) == 3
        # The table shows each job's node at 120 columns.
        text = "\n".join(screen_text(app))
        assert "node/pid" in text and "node-a:4000" in text and "node-c:4002" in text


async def test_the_panel_is_one_line_at_80x24_and_the_table_keeps_ten_rows(tmp_path):
    run = await cluster(tmp_path)
    app = OrchApp(run.controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await played(pilot)
        (line, ) = panel_lines(app)
        assert line == "nodes node-a 2j 52% · node-b lost · node-c set aside"
        table = app.screen.query_one(JobTable)
        assert table.scrollable_content_region.height - 1 >= 10


async def test_a_local_run_shows_no_nodes_panel_and_no_node_keys_in_help():
    app = session_app(run_model())
    async with app.run_test(size=(120, 40)) as pilot:
        await played(pilot)
        assert not app.screen.query_one(NodesPanel).display
        await pilot.press("o")
        await pilot.pause()
        assert app.screen.query_one(JobTable).node is None
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "o / O" not in "\n".join(screen_text(app))


async def test_o_cycles_the_node_filter_composed_with_the_state_filter(tmp_path):
    run = await cluster(tmp_path, trouble=False)
    app = OrchApp(run.controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await played(pilot)
        table = app.screen.query_one(JobTable)
        seen = []
        for _ in range(4):
            await pilot.press("o")
            await pilot.pause()
            seen.append((table.node, table.border_title))
        assert seen == [("node-a", "jobs · all on node-a 2 of 12"),
                        ("node-b", "jobs · all on node-b 2 of 12"),
                        ("node-c", "jobs · all on node-c 2 of 12"), (None, "jobs · all 12")]
        rows = app.model.rows  # type: ignore[union-attr]
        await pilot.press("O")  # back: the last node
        await pilot.pause()
        assert table.node == "node-c"
        assert {rows[job_id].node for job_id in table.visible_ids} == {"node-c"}
        for _ in range(3):  # the state filter: running, then queued
            await pilot.press("f")
        await pilot.pause()
        assert table.filter == "queued" and table.visible_ids == []
        assert table.border_title == "jobs · queued on node-c 0 of 12"
        await pilot.press("F", "F")
        await pilot.pause()
        assert table.filter == "running" and len(table.visible_ids) == 2
        assert table.border_title == "jobs · running on node-c 2 of 12"
        await pilot.press("question_mark")
        await pilot.pause()
        assert "o / O" in "\n".join(screen_text(app))


async def test_the_panel_and_filter_follow_the_events_as_they_come(tmp_path):
    run = await cluster(tmp_path, trouble=False)
    app = OrchApp(run.controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await played(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        assert [line.split()[1] for line in panel_lines(app)] == ["up", "up", "up"]
        table = screen.query_one(JobTable)
        await pilot.press("o", "o")  # node-b
        await pilot.pause()
        listener = run.controller.listeners[0]
        model = app.model
        assert model is not None
        moved = next(job_id for job_id in table.visible_ids)
        row = model.rows[moved]
        listener(ev.NodeStateChanged(time=run.now, node="node-b", state=NodeState.LOST,
                                     address="x"))
        # Its job runs again on node-a: it leaves node-b's list and node-b's count.
        for state, node in ((JobState.QUEUED, ""), (JobState.RUNNING, "node-a")):
            listener(
                ev.JobStateChanged(time=run.now,
                                   job_id=moved,
                                   name=row.name,
                                   state=state,
                                   previous=row.state,
                                   attempt=2,
                                   node=node,
                                   pid=4999))
        screen.refresh_view()
        await pilot.pause()
        node_a, node_b, _ = panel_lines(app)
        assert node_a.endswith("3 jobs") and node_b.split()[1] == "lost"
        assert node_b.endswith("1 job")
        assert moved not in table.visible_ids and table.border_title.endswith("1 of 12")


async def test_an_attached_screen_starts_from_the_snapshots_nodes(tmp_path):
    run = await cluster(tmp_path)
    snap = wire.parse_snapshot(
        wire.decode(wire.encode(wire.snapshot_message(run.snapshot)), limit=None))
    model = RunModel.from_snapshot(snap, clock=lambda: run.now)
    assert [(node.name, node.state, node.running)
            for node in model.nodes.views()] == [("node-a", NodeState.UP, 2),
                                                 ("node-b", NodeState.LOST, 2),
                                                 ("node-c", NodeState.QUARANTINED, 2)]
    assert model.system is not None and model.system.node == "node-a+node-c"
    # Its jobs leave their nodes as they end, though it never saw them start.
    job = next(view for view in snap.jobs if view.node == "node-a" and view.state.active)
    model.apply(
        ev.JobStateChanged(time=run.now,
                           job_id=job.job_id,
                           name=job.name,
                           state=JobState.SUCCEEDED,
                           previous=JobState.RUNNING,
                           attempt=1,
                           node="node-a"))
    assert model.nodes.views()[0].running == 1


def test_the_charts_get_one_point_a_sweep_of_the_nodes():
    model = RunModel([], clock=lambda: 0.0)
    for second in range(5):
        for node, cpu in (("a", 10.0), ("b", 30.0), ("c", 50.0)):
            model.apply(sample_of(node, 4, cpu, 100, 50, 500, at=float(second)))
    history = model.system_history
    assert history.cpu.values() == [30.0] * 5, "the nodes' sum, one point a sweep"
    assert history.memory.values() == [150.0] * 5
    assert model.system is not None and model.system.total_memory == 300


async def test_the_panel_follows_the_terminal_between_compact_and_full(tmp_path):
    run = await cluster(tmp_path)
    app = OrchApp(run.controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await played(pilot)
        assert len(panel_lines(app)) == 3
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert panel_lines(app) == ["nodes node-a 2j 52% · node-b lost · node-c set aside"]
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        lines = panel_lines(app)
        assert [line.split()[0] for line in lines] == list(NODES)
        assert all(len(line) <= 96 for line in lines)


async def test_many_nodes_are_cut_with_how_many_more(tmp_path):
    plan = write_workspace(tmp_path / "ws", 2).plan()
    names = [f"render-{i:02d}" for i in range(1, 11)]
    events = [
        sample_of(name, 16, 10.0 * i, 64 << 30, 32 << 30, 1 << 40) for i, name in enumerate(names)
    ]
    controller = FakeController(tuple(job_view(spec) for spec in plan.jobs), events, limit=2)
    app = OrchApp(controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await played(pilot)
        lines = panel_lines(app)
        assert [line.split()[0] for line in lines[:7]] == names[:7]
        assert lines[7] == "… and 3 more nodes (o: their jobs)"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        (line, ) = panel_lines(app)
        assert line.startswith("nodes render-01 0j 0% · render-02 0j 10%")
        shown = line.count("render-")
        assert line.endswith(f" +{10 - shown}") and len(line) <= 78
