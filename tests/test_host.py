"""The run host: it owns the run; listeners attach (a snapshot, then events) and detach."""

# pylint: disable=missing-function-docstring
from __future__ import annotations

import asyncio

from orch_tui.core import events as ev
from orch_tui.core.errors import ConfigError
from orch_tui.core.events import JobState, LimitSource
from orch_tui.core.host import RunHost
from orch_tui.core.plan import load_plan
from orch_tui.core.session import RunOptions
from orch_tui.core.snapshot import CalibrationStatus


async def test_a_late_listener_gets_the_state_then_events_and_a_detached_one_nothing(workspace):
    ws = workspace(2, worker_args=["--seconds", "1"])
    host = RunHost(RunOptions(max_procs=1))
    first: list[ev.Event] = []
    running = asyncio.Event()

    def listen(event: ev.Event) -> None:
        first.append(event)
        if isinstance(event, ev.JobStateChanged) and event.state is JobState.RUNNING:
            running.set()

    host.start(load_plan(ws.config))
    snapshot = host.attach(listen)
    assert snapshot.calibration is CalibrationStatus.SKIPPED
    assert [job.state for job in snapshot.jobs] == [JobState.QUEUED] * 2
    await asyncio.wait_for(running.wait(), 15)
    host.detach(listen)
    heard = len(first)

    late: list[ev.Event] = []
    snapshot = host.attach(late.append)
    job = snapshot.jobs[0]
    assert job.state is JobState.RUNNING and job.pid is not None and job.started is not None
    assert snapshot.counts.running == 1 and snapshot.counts.queued == 1
    assert snapshot.limit == 1 and snapshot.limit_source is LimitSource.MAX_PROCS
    assert snapshot.first_launch == job.started

    assert await host.wait() == 0
    assert len(first) == heard, "a detached listener hears nothing more"
    finished = [e for e in late if isinstance(e, ev.RunFinished)]
    assert finished and finished[0].counts == {"succeeded": 2, "missing": 0}
    assert host.attach(late.append).finished == finished[0]
    host.close()


async def test_without_a_run_the_exit_code_is_the_command_line_config_s_error(tmp_path):
    config = tmp_path / "config.yaml"
    host = RunHost(RunOptions(), config=config)
    assert not host.started and host.done
    host.config_checked(tmp_path / "other.yaml", ConfigError("bad"))
    assert await host.wait() == 0  # another file than the command line's
    host.config_checked(config, ConfigError("bad"))
    assert await host.wait() == 2
    host.config_checked(config, None)  # fixed and validated again
    assert await host.wait() == 0
