"""The TUI on a real cluster run (tests/cluster_fixture.py: two `orch-tui node` workers): the job
table's node column names the node each job runs on, the nodes panel lists both nodes, and the
node filter narrows the table to one of them; nothing on the screens knows the runner is Dask."""

# The test name says what it checks.
# pylint: disable=missing-function-docstring
from __future__ import annotations

from orch_tui.cluster.runner import runner_factory
from orch_tui.core.events import JobState
from orch_tui.core.host import RunHost
from orch_tui.core.session import RunOptions
from orch_tui.tui.app import OrchApp
from orch_tui.tui.widgets.job_table import JobTable
from tests.cluster_fixture import NODES
from tests.helpers import screen_text, write_workspace
from tests.test_tui_app import until


async def test_the_tui_shows_each_jobs_node_and_filters_by_node(dask_cluster):
    dask_cluster.ensure_nodes()
    ws = write_workspace(dask_cluster.shared / "tui", 4, worker_args=["--seconds", "30"])
    host = RunHost(RunOptions(max_procs=2, runner=runner_factory(dask_cluster.address)),
                   config=ws.config)
    app = OrchApp(host, ws.config, yes=True)
    async with app.run_test(size=(160, 40)) as pilot:

        def running_nodes() -> set[str]:
            return {row.node for row in app.model.rows.values() if row.state is JobState.RUNNING}

        # Each node has one CPU and each job asks for it: one job on each.
        await until(pilot, lambda: running_nodes() == set(NODES), timeout=60)

        def job_lines_name_both() -> bool:
            """A running job's row on each node shows `node:pid` (the table redraws on its
            refresh tick, after the model has the change)."""
            lines = [line for line in screen_text(app).splitlines() if " running " in line]
            return all(any(f"{name}:" in line for line in lines) for name in NODES)

        await until(pilot, job_lines_name_both)
        panel = [line for line in screen_text(app).splitlines() if " up " in line]
        assert {name for name in NODES if any(name in line for line in panel)} == set(NODES)
        table = app.screen.query_one(JobTable)
        for _ in range(len(NODES) + 1):  # all nodes, then each by name
            await pilot.press("o")
            await pilot.pause(0.1)
            if "on node-b" in str(table.border_title):
                break
        assert "on node-b" in str(table.border_title)
        shown = {app.model.rows[job_id].node for job_id in table.visible_ids}
        assert shown <= {"node-b", ""}, shown  # node-b's jobs (and queued ones, on no node)
        app.controller.shutdown()
        await until(pilot, lambda: host.done, timeout=60)
