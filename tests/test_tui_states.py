"""The TUI's states that say what happened, driven by Textual's pilot against real processes:
cancel a queued job, `stopping` while SIGTERM is ignored, ctrl+c twice as the quit dialog says,
the detail screen offering only the keys of the job's state; and ctrl+c twice in a real tmux
terminal, where it is a key, not SIGINT."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import os

from orch_tui.core.events import JobState
from orch_tui.tui.app import OrchApp
from orch_tui.tui.screens.detail import DetailScreen
from orch_tui.tui.screens.finished import FinishedScreen
from orch_tui.tui.screens.modals import ConfirmKill, QuitModal
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.widgets.job_table import JobTable
from tests.fake_controller import FakeController, job_views
from tests.helpers import alive, kill_quietly, screen_text, write_workspace
from tests.test_tui_app import make_app, running_ids, select, until
from tests.test_tui_notify import END
# The tmux terminal's fixtures, used by name (pytest finds them in this module's namespace).
# pylint: disable-next=unused-import
from tests.test_tui_terminal import cleanup_fixture, start_run, terminal_fixture  # noqa: F401
from tests.tmux import read_int, wait_until


def offered(screen) -> set[str]:
    """The actions the screen's footer offers now (check_action hides the others)."""
    return {active.binding.action for active in screen.active_bindings.values() if active.enabled}


JOB_KEYS = {"pause", "resume", "kill", "cancel", "requeue"}


async def end_the_run(pilot, app, controller) -> None:
    """Tell an app on its run screen that the run ended (END: exit 1); wait for the finished
    screen."""
    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    controller.listeners[0](END)
    await until(pilot, lambda: isinstance(app.screen, FinishedScreen))


async def test_the_finished_screen_offers_detail_only_with_a_failure_to_open():
    for first, failures in ((JobState.SUCCEEDED, False), (JobState.FAILED, True)):
        controller = FakeController(job_views([first, JobState.RUNNING]))
        app = OrchApp(controller)
        async with app.run_test(size=(80, 24)) as pilot:
            await end_the_run(pilot, app, controller)
            await pilot.pause()
            footer = screen_text(app).splitlines()[-1]
            assert ("detail" in offered(app.screen)) == ("Detail" in footer) == failures, footer
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, DetailScreen) == failures


async def test_once_the_run_is_over_d_offers_no_detach_and_leaves_nothing_running():
    """A finished run in another process: `d` would say "the run goes on" and exit 0 for a
    run that is over and failed. No screen offers it; q exits with the run's code."""
    controller = FakeController(job_views([JobState.FAILED, JobState.RUNNING]), detachable=True)
    app = OrchApp(controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert "Detach" in screen_text(app).splitlines()[-1], "offered while the run goes on"
        await end_the_run(pilot, app, controller)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        for screen in app.screen_stack[1:]:
            assert "detach_run" not in offered(screen), screen
        await pilot.pause()
        assert "Detach" not in screen_text(app).splitlines()[-1]
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen) and not app.detached
        await pilot.press("escape", "q")
    assert app.return_code == END.exit_code == 1


async def test_a_hangup_once_the_run_is_over_ends_the_app_with_the_run_s_code():
    for detachable in (True, False):
        controller = FakeController(job_views([JobState.FAILED]), detachable=detachable)
        app = OrchApp(controller)
        async with app.run_test(size=(80, 24)) as pilot:
            await end_the_run(pilot, app, controller)
            app.hang_up()  # what SIGHUP, SIGTERM and SIGINT do
            await pilot.pause()
        assert app.return_code == 1 and not app.detached


async def test_the_palette_s_quit_once_the_run_is_over_asks_nothing_and_exits_with_its_code():
    """The quit dialog offers detach, wait and stop: none means anything for a run that ended."""
    controller = FakeController(job_views([JobState.FAILED, JobState.RUNNING]), detachable=True)
    app = OrchApp(controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await end_the_run(pilot, app, controller)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        app.ask_quit()  # the palette's Quit
        await pilot.pause()
        assert not isinstance(app.screen, QuitModal)
    assert app.return_code == 1 and not app.detached
    assert not [call for call, _ in controller.calls if call == "shutdown"], "nothing to stop"


async def test_a_cancel_answered_after_the_job_started_leaves_it_running(workspace):
    """The question was about a queued job; by the answer it runs: it must not be killed."""
    ws = workspace(2, worker_args=["--seconds", "2"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 1)
        select(app, 2)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmKill) and "Cancel job #2" in screen_text(app)
        await until(pilot, lambda: app.model.rows[2].state is JobState.RUNNING, timeout=30)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        assert app.model.rows[2].state is JobState.SUCCEEDED
        await pilot.press("q")
    assert app.return_code == 0


async def test_x_on_a_queued_job_cancels_it_and_the_run_still_exits_0(workspace):
    # The worker writes 20 chunks as it runs and the 19 bytes left over at its very end, after
    # its last sample: only the final size after the rename says 627,019 bytes.
    ws = workspace(2, worker_args=["--seconds", "5"], size=627_019)
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 1)
        select(app, 2)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmKill)
        text = screen_text(app)
        assert "Cancel job #2" in text and "removed from the" in text
        assert "SIGTERM" not in text and "process group" not in text
        await pilot.press("y")
        await until(pilot, lambda: app.model.rows[2].state is JobState.CANCELLED)
        assert app.model.visible("failed") == [], "cancelled is not a failure"
        assert app.model.counts().cancelled == 1
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        await until(pilot, lambda: "exit code" in screen_text(app))
        summary = screen_text(app)
        assert "exit code 0" in summary and "cancelled 1" in summary
        row = app.model.rows[1]
        assert row.output_bytes == os.path.getsize(row.output_path) == 627_019
        await pilot.press("q")
    assert app.return_code == 0


def stubborn_jobs(workspace, pidfile, count: int, *, seconds: int, grace: int):
    """`count` jobs of `seconds` that ignore SIGTERM (so they live through `grace`) and write
    their pids to `pidfile`."""
    return workspace(
        count,
        worker_args=["--seconds",
                     str(seconds), "--ignore-term", "--pidfile",
                     str(pidfile)],
        jobs={"kill_grace": grace})


async def their_pids(pilot, pidfile, count: int) -> list[int]:
    """The pids of the `count` stubborn jobs, once each has written its whole line."""
    await until(
        pilot, lambda: pidfile.exists() and len(pidfile.read_text().split()) == count and pidfile.
        read_text().endswith("\n"))
    return [int(p) for p in pidfile.read_text().split()]


async def test_quit_with_kill_shows_stopping_n_jobs_until_they_are_gone(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = stubborn_jobs(workspace, pidfile, 2, seconds=60, grace=2)
    app = make_app(ws.config, max_procs=2)
    pids: list[int] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            pids = await their_pids(pilot, pidfile, 2)
            app.screen.query_one(JobTable).focus()
            await pilot.press("q", "k")
            assert [row.state for row in app.model.rows.values()] == [JobState.STOPPING] * 2
            await until(pilot, lambda: "stopping 2 jobs..." in screen_text(app))
            assert all(alive(p) for p in pids), "SIGTERM ignored: they live through the grace"
            assert "stopping 2 jobs..." in screen_text(app)
            await until(pilot, lambda: app.controller.done, timeout=15)
        assert all(not alive(p) for p in pids)
        assert [row.state for row in app.model.rows.values()] == [JobState.KILLED] * 2
    finally:
        kill_quietly(pids)


async def test_x_on_a_stopping_job_asks_then_sigkills_it_without_its_grace(workspace, tmp_path):
    """A job that ignores SIGTERM waits out `kill_grace` (60 s) once killed; x again offers
    to kill it now, and it is gone long before."""
    pidfile = tmp_path / "pids"
    ws = stubborn_jobs(workspace, pidfile, 1, seconds=120, grace=60)
    app = make_app(ws.config, max_procs=1)
    pids: list[int] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            pids = await their_pids(pilot, pidfile, 1)
            select(app, 1)
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmKill)
            await pilot.press("y")
            await until(pilot, lambda: app.model.rows[1].state is JobState.STOPPING)
            assert all(alive(p) for p in pids), "SIGTERM ignored: it lives through its grace"
            await pilot.press("x")
            await until(pilot, lambda: "Kill job #1 clip01.bin now?" in screen_text(app))
            await pilot.press("y")
            await until(pilot, lambda: app.controller.done, timeout=20)
        assert all(not alive(p) for p in pids)
        assert app.model.rows[1].state is JobState.KILLED
    finally:
        kill_quietly(pids)


async def test_ctrl_c_while_jobs_stop_sigkills_them_without_waiting_for_the_grace(
        workspace, tmp_path):
    """Jobs that ignore SIGTERM under a long grace: one more ctrl+c ends them now, as the notice
    says and as a second SIGINT does headless (a 60 s grace would outlast the wait below)."""
    pidfile = tmp_path / "pids"
    ws = stubborn_jobs(workspace, pidfile, 2, seconds=120, grace=60)
    app = make_app(ws.config, max_procs=2)
    pids: list[int] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            pids = await their_pids(pilot, pidfile, 2)
            app.screen.query_one(JobTable).focus()
            await pilot.press("q", "k")
            await until(pilot, lambda: "ctrl+c: SIGKILL now" in screen_text(app))
            assert all(alive(p) for p in pids)
            await pilot.press("ctrl+c")
            await until(pilot, lambda: app.controller.done, timeout=20)
        assert not any(alive(p) for p in pids)
        assert [row.state for row in app.model.rows.values()] == [JobState.KILLED] * 2
    finally:
        kill_quietly(pids)


async def test_quit_with_wait_says_what_it_waits_for_and_that_pause_all_holds_it(workspace):
    ws = workspace(2, worker_args=["--seconds", "3"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 1)
        app.screen.query_one(JobTable).focus()
        await pilot.press("P")
        await pilot.press("q", "w")
        await until(pilot, lambda: "waiting for 1 job to finish" in screen_text(app))
        assert "everything is paused: P resumes" in screen_text(app)
        await pilot.press("P")
        await until(pilot, lambda: app.controller.done, timeout=30)
    states = [row.state for row in app.model.rows.values()]
    assert states == [JobState.SUCCEEDED, JobState.QUEUED]
    assert app.return_code == 1


async def test_ctrl_c_twice_kills_and_quits_as_the_dialog_says_from_any_run_screen(workspace):
    ws = workspace(2, worker_args=["--seconds", "60"])
    app = make_app(ws.config, max_procs=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 2)
        pids = [app.model.rows[i].pid for i in running_ids(app)]
        select(app, 1)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, QuitModal)
        assert "Kill running jobs and quit (k, q, ctrl+c)" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, DetailScreen), "escape cancels, as the dialog says"
        assert all(alive(p) for p in pids)
        await pilot.press("ctrl+c", "ctrl+c")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) or app.controller.done)
        await until(pilot, lambda: app.controller.done, timeout=15)
    assert all(not alive(p) for p in pids)
    assert [row.state for row in app.model.rows.values()] == [JobState.KILLED] * 2
    assert app.return_code == 1


async def test_the_detail_screen_offers_only_the_keys_of_the_job_s_state(workspace):
    ws = workspace(3, worker_args=["--seconds", "3", "--exit", "1"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model.rows[1].state is JobState.RUNNING)
        select(app, 1)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        assert offered(app.screen) & JOB_KEYS == {"pause", "kill"}
        await pilot.press("space")
        await until(pilot, lambda: app.model.rows[1].state is JobState.PAUSED)
        assert offered(app.screen) & JOB_KEYS == {"resume", "kill"}
        await pilot.press("space")
        await until(pilot, lambda: app.model.rows[1].state is JobState.RUNNING)
        assert offered(app.screen) & JOB_KEYS == {"pause", "kill"}
        await pilot.press("q")  # as on the run screen and the footer says: the quit dialog
        await until(pilot, lambda: isinstance(app.screen, QuitModal))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("escape")

        select(app, 3)
        await pilot.press("enter")
        assert offered(app.screen) & JOB_KEYS == {"cancel"}
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmKill) and "Cancel job #3" in screen_text(app)
        await pilot.press("n")
        assert app.model.rows[3].state is JobState.QUEUED
        await pilot.press("escape")

        await until(pilot, lambda: app.model.rows[1].state is JobState.FAILED, timeout=30)
        if app.model.finished is None:  # the run goes on: a failed job can be requeued
            select(app, 1)
            await pilot.press("enter")
            assert offered(app.screen) & JOB_KEYS == {"requeue"}
            await pilot.press("escape")

        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=60)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        job_id = app.screen.job_id
        assert app.model.rows[job_id].state is JobState.FAILED
        assert offered(app.screen) & JOB_KEYS == set(), "the run is over: nothing would run it"
        assert "Requeue" not in screen_text(app)
        await pilot.press("r")
        await pilot.pause(0.2)
        assert app.model.rows[job_id].state is JobState.FAILED, "no ghost queued job"


# --- the real program in a real terminal (ctrl+c is a key there, not SIGINT)


def test_ctrl_c_twice_in_a_terminal_shows_stopping_until_the_jobs_are_gone(
        tmp_path, terminal, cleanup):
    pidfile = tmp_path / "workers.pid"
    ws = write_workspace(
        tmp_path / "ws",
        3,
        worker_args=["--seconds", "60", "--ignore-term", "--pidfile",
                     str(pidfile)],
        jobs={"kill_grace": 3})
    rc_file = start_run(terminal, ws, {"TERM": "xterm-256color"})
    wait_until(lambda: pidfile.exists() and len(pidfile.read_text().splitlines()) == 2, 15,
               "two workers started")
    pids = [int(line.split()[0]) for line in pidfile.read_text().splitlines()]
    cleanup.extend(pids)
    terminal.send("C-c")
    terminal.wait_for("Stop the run: kill running jobs (k)")
    terminal.send("C-c")
    screen = terminal.wait_for("stopping 2 jobs...", what="the quit's wait said")
    assert screen.count(" stopping ") >= 2, screen
    assert all(alive(pid) for pid in pids), "SIGTERM ignored: alive through the grace period"
    assert read_int(rc_file) is None, "the program waits until they are gone"
    wait_until(lambda: read_int(rc_file) is not None, 15, "the program to exit")
    assert read_int(rc_file) == 143, "the run was stopped, as orch-tui stop does"
    assert not any(alive(pid) for pid in pids)
    assert len(pidfile.read_text().splitlines()) == 2, "job 3 never started"
