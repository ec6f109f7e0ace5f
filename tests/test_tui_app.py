"""The TUI driven by Textual's pilot against real subprocess jobs.

Every key of the run screen is pressed for real and its effect checked where it matters: in the
process table (state T for a paused job, gone for a killed one) and in how many jobs run."""

# pylint: disable=missing-function-docstring
from __future__ import annotations

import asyncio

from textual import events

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.host import RunHost
from orch_tui.core.scaling import ProcessProfile, SystemCapacity, compute_limit
from orch_tui.core.session import RunOptions
from orch_tui.core.snapshot import CalibrationStatus
from orch_tui.tui.app import KEY_GRACE, OrchApp
from orch_tui.tui.screens.calibration import AUTO_CONTINUE, CalibrationScreen
from orch_tui.tui.screens.detail import DetailScreen
from orch_tui.tui.screens.finished import FinishedScreen
from orch_tui.tui.screens.help import HelpScreen
from orch_tui.tui.screens.modals import ConfirmKill, QuitModal
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.widgets.gauges import ProgressLine
from orch_tui.tui.widgets.job_table import JobTable
from tests.fake_controller import FakeController, job_views
from tests.helpers import alive, kill_quietly, process_runs, process_state, screen_text


async def until(pilot, predicate, timeout=15.0):
    """Let the app run until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def make_app(config, *, max_procs=None, options=None):
    """The app on a run host of its own, as the command line builds them."""
    host = RunHost(options or RunOptions(max_procs=max_procs), config=config)
    return OrchApp(host, config, yes=True)


def select(app, job_id):
    """Put the table's cursor on `job_id` and give the table focus."""
    table = app.screen.query_one(JobTable)
    table.focus()
    table.cursor_row = table.visible_ids.index(job_id)
    assert table.selected_job_id == job_id


def running_ids(app):
    return [i for i, row in app.model.rows.items() if row.state is JobState.RUNNING]


async def test_yes_calibrates_shows_the_result_then_runs_to_the_finished_screen(workspace):
    ws = workspace(3, worker_args=["--seconds", "1.2"])
    app = make_app(ws.config)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, CalibrationScreen))
        await until(pilot, lambda: app.model.calibrated is not None)
        await pilot.pause(0.3)
        result = screen_text(app)
        assert "cpu" in result and "memory" in result and "disk" in result
        assert "binds" in result or "caps it" in result
        assert f"limit {app.controller.limit}" in result
        await pilot.press("plus")
        assert app.controller.limit == app.model.decision.limit + 1
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, (RunScreen, FinishedScreen)))
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        await pilot.pause(0.2)
        summary = screen_text(app)
        assert "succeeded 3" in summary
        await pilot.press("q")
    assert app.return_code == 0


async def test_space_pauses_at_the_os_level_and_resumes(workspace):
    ws = workspace(2, worker_args=["--seconds", "4"])
    app = make_app(ws.config, max_procs=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 2)
        select(app, 2)
        pid = app.model.rows[2].pid
        await pilot.press("space")
        await until(pilot, lambda: process_state(pid) == "T")
        assert app.model.rows[2].state is JobState.PAUSED
        assert app.model.rows[1].state is JobState.RUNNING
        # The progress line's counts are bound to the screen's: a paused job is not running.
        line = app.screen.query_one(ProgressLine)
        await until(pilot, lambda: (line.counts.running, line.counts.paused) == (1, 1))
        await pilot.press("space")
        await until(pilot, lambda: process_runs(pid))
        app.controller.shutdown()
        await until(pilot, lambda: app.controller.done)


async def test_x_asks_then_kills_the_job_and_its_children(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(
        1, worker_args=["--seconds", "60", "--grandchildren", "1", "--pidfile",
                        str(pidfile)])
    app = make_app(ws.config, max_procs=1)
    pids = []
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
            pids = [int(p) for p in pidfile.read_text().split()]
            select(app, 1)
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmKill)
            await pilot.press("n")
            assert app.model.rows[1].state is JobState.RUNNING
            await pilot.press("ctrl+k")  # k9s's kill key does the same
            await pilot.press("y")
            await until(pilot, lambda: app.model.rows[1].state is JobState.KILLED)
            await until(pilot, lambda: not any(alive(p) for p in pids), timeout=3)
            await until(pilot, lambda: isinstance(app.screen, FinishedScreen))
            await pilot.press("q")
        assert app.return_code == 1
    finally:
        kill_quietly(pids)


async def test_r_requeues_a_killed_job_and_it_runs_again(workspace):
    ws = workspace(2, worker_args=["--seconds", "1.5"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model.rows[1].state is JobState.RUNNING)
        app.controller.kill(1)
        await until(pilot, lambda: app.model.rows[1].state is JobState.KILLED)
        select(app, 1)
        await pilot.press("r")
        assert app.model.rows[1].state is JobState.QUEUED
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        assert app.model.rows[1].state is JobState.SUCCEEDED
        assert app.model.rows[1].attempt == 2


async def test_plus_and_minus_change_how_many_run_at_once(workspace):
    ws = workspace(6, worker_args=["--seconds", "3"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.controller.active_count() == 1)
        app.screen.query_one(JobTable).focus()
        await pilot.press("plus", "plus")
        assert app.controller.limit == 3
        await until(pilot, lambda: app.controller.active_count() == 3, timeout=3)
        await pilot.press("minus", "minus")
        assert app.controller.limit == 1
        app.controller.shutdown()
        await until(pilot, lambda: app.controller.done)


async def test_capital_p_pauses_and_resumes_everything(workspace):
    ws = workspace(4, worker_args=["--seconds", "3"])
    app = make_app(ws.config, max_procs=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 2)
        app.screen.query_one(JobTable).focus()
        pids = [app.model.rows[i].pid for i in running_ids(app)]
        await pilot.press("P")
        await until(pilot, lambda: all(process_state(p) == "T" for p in pids))
        assert app.controller.paused_all
        notice = screen_text(app)
        assert "PAUSED" in notice
        await pilot.press("P")
        await until(pilot, lambda: all(process_runs(p) for p in pids))
        app.controller.shutdown()
        await until(pilot, lambda: app.controller.done)


async def test_enter_opens_the_detail_with_command_and_live_log(workspace):
    ws = workspace(["[red]x.mp4"], worker_args=["--seconds", "2"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model.rows[1].state is JobState.RUNNING)
        app.model.rows[1].log_path.write_text("hello [bold]log[/bold]\n", encoding="utf-8")
        select(app, 1)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.pause(0.6)
        info = screen_text(app)
        assert "[red]x.mp4" in info and "command:" in info
        log_lines = app.screen.query_one("#detail-log").lines
        assert any("[bold]log[/bold]" in line for line in log_lines)
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)
        app.controller.shutdown()
        await until(pilot, lambda: app.controller.done)


async def test_f_cycles_the_filter_and_question_mark_opens_help(workspace):
    ws = workspace(3, worker_args=["--seconds", "0.8", "--exit", "1"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        app.screen.query_one(JobTable).focus()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        table = app.screen.query_one(JobTable)
        await pilot.press("f")
        assert table.filter == "running" and table.border_title.startswith("jobs · running ")
        await pilot.press("f", "f", "f")
        assert table.filter == "failed"
        await pilot.press("F")
        assert table.filter == "queued"
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)


async def test_q_wait_lets_running_jobs_finish_and_launches_nothing_more(workspace):
    # Long enough that the keys below always land while the first two still run, even on a
    # loaded machine (at 1.5 s they once finished first).
    ws = workspace(4, worker_args=["--seconds", "6"])
    app = make_app(ws.config, max_procs=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 2)
        app.screen.query_one(JobTable).focus()
        await pilot.press("q")
        assert isinstance(app.screen, QuitModal)
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)
        await pilot.press("q", "w")
        await until(pilot, lambda: app.controller.done, timeout=30)
    states = [row.state for row in app.model.rows.values()]
    assert states.count(JobState.SUCCEEDED) == 2 and states.count(JobState.QUEUED) == 2
    assert app.return_code == 1


async def test_q_then_q_kills_running_jobs_and_quits(workspace):
    ws = workspace(2, worker_args=["--seconds", "60"])
    app = make_app(ws.config, max_procs=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 2)
        pids = [app.model.rows[i].pid for i in running_ids(app)]
        app.screen.query_one(JobTable).focus()
        await pilot.press("q", "q")
        await until(pilot, lambda: app.controller.done, timeout=15)
    assert all(not alive(p) for p in pids)
    assert [row.state for row in app.model.rows.values()] == [JobState.KILLED] * 2


async def test_finished_screen_names_the_journal_and_joblog(workspace, tmp_path):
    ws = workspace(1)
    joblog = tmp_path / "jobs.tsv"
    app = make_app(ws.config, options=RunOptions(max_procs=1, joblog=joblog))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "journal.sqlite3" in text and str(joblog) in text
        # The logs folder above the shard folders, and the journal beside it.
        state = ws.output_dir / ".orch-tui"
        assert f"logs: {state / 'logs'} " in text and str(state / "journal.sqlite3") in text
        await pilot.press("q")
    assert joblog.read_text(encoding="utf-8").startswith("Seq\tHost")
    assert (ws.output_dir / ".orch-tui" / "journal.sqlite3").exists()


async def test_a_second_app_on_the_same_folder_is_told_who_holds_it(workspace):
    ws = workspace(1, worker_args=["--seconds", "3"])
    first = make_app(ws.config, max_procs=1)
    async with first.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: first.controller.started)
        second = make_app(ws.config, max_procs=1)
        async with second.run_test(size=(80, 24)) as pilot2:
            await pilot2.pause(0.3)
            assert not second.controller.started
            messages = [n.message for n in second._notifications]  # pylint: disable=protected-access
            assert any("another orch-tui" in m for m in messages)
        first.controller.shutdown()
        await until(pilot, lambda: first.controller.done)


async def test_an_input_that_vanishes_mid_run_is_named_on_the_finished_screen(workspace):
    ws = workspace(2, worker_args=["--seconds", "1"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 1)
        ws.inputs[1].unlink()
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        line = "#2 clip02.bin  missing  input vanished before its job started"
        await until(pilot, lambda: line in screen_text(app))
        await pilot.press("q")
    assert app.return_code == 1


class MovingClock:
    """A clock the test moves by hand (the calibration countdown reads it)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def calibrated_controller(
    clock: MovingClock, capacity: SystemCapacity = SystemCapacity(4, 2**30 * 8, 2**30 * 100)
) -> FakeController:
    """A fake host whose calibration has just produced its result (job 1 measured)."""
    jobs = job_views([JobState.QUEUED] * 2, ".bin")
    profile = ProcessProfile(1.0, 2**20 * 64, 2**20)
    decision = compute_limit(profile, capacity)
    events = [
        ev.CalibrationStarted(time=0, job_id=1, window=5.0),
        ev.CalibrationFinished(time=5,
                               profile=profile,
                               decision=decision,
                               source=ev.LimitSource.WINDOW),
        ev.LimitChanged(time=5, limit=3, previous=0, source=ev.LimitSource.WINDOW),
    ]
    return FakeController(jobs, events, calibration=CalibrationStatus.MEASURING, clock=clock)


async def test_the_calibration_footer_offers_enter_and_plus_minus_once_there_is_a_result():
    """While the job is measured they do nothing, so the footer does not offer them."""
    clock = MovingClock()
    scripted = calibrated_controller(clock)
    started, *result = scripted.events
    controller = FakeController(scripted.jobs, [started],
                                calibration=CalibrationStatus.MEASURING,
                                clock=clock)
    app = OrchApp(controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot,
                    lambda: isinstance(app.screen, CalibrationScreen) and controller.delivered)
        screen = app.screen
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "Continue" not in footer and "process" not in footer and "Quit" in footer, footer
        await pilot.press("plus", "enter")
        assert controller.calls == [] and app.screen is screen
        for event in result:
            controller.listeners[0](event)
        await until(pilot, lambda: "Continue" in screen_text(app).splitlines()[-1])
        footer = screen_text(app).splitlines()[-1]
        assert "+1 process" in footer and "-1 process" in footer, footer
        await pilot.press("plus")
        assert controller.calls == [("set_limit", 5)]  # the fake's limit was 4
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))


async def test_enter_pressed_as_the_countdown_ends_never_acts_on_the_run_screen():
    """Enter meant for the calibration result, arriving as its countdown switches to the run
    screen (typed just before, or within KEY_GRACE after), must not open a job's detail;
    an Enter typed later does."""
    clock = MovingClock()
    app = OrchApp(calibrated_controller(clock))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, CalibrationScreen))
        await until(pilot, lambda: app.model.calibrated is not None)
        calibration = app.screen
        calibration.refresh_view()  # the result is on screen, its countdown started
        typed_before = events.Key("enter", "\r")
        clock.now += AUTO_CONTINUE
        calibration.refresh_view()  # the countdown runs out: the run screen replaces it
        typed_after = events.Key("enter", "\r")
        app.post_message(typed_before)
        app.post_message(typed_after)
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)  # not the detail screen
        seen = events.Key("enter", "\r")
        seen.time += KEY_GRACE  # as if typed once the run screen can have been seen
        app.post_message(seen)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))


async def test_a_job_bigger_than_the_machine_shows_its_raw_figure_on_the_calibration_screen():
    """Memory allows 0.6 jobs: the table says `0.6 -> 1` and the limit line why, never an
    `allows 0` beside `limit 1`."""
    app = OrchApp(calibrated_controller(MovingClock(), SystemCapacity(4, 2**20 * 48, 2**40)))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, CalibrationScreen))
        await until(pilot, lambda: "Calibration result" in screen_text(app))
        memory = next(line for line in screen_text(app).splitlines() if "memory" in line)
        assert memory.rstrip().endswith("0.6 -> 1"), memory
        words = " ".join(screen_text(app).split())  # the line may wrap at 80 columns
        assert "memory: 0.8 × 48.00 MiB / 64.00 MiB per job = 0.6 -> at least 1 job always runs" \
            in words, words
