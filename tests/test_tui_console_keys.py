"""The run screen as an operator's console (issue 12), driven by Textual's pilot: movement,
search, sort, filters, marks and the actions on many jobs, on a snapshot (FakeController
records the commands) and, where the OS is the point, on real processes."""

# Each test's name says what it checks, with the keys as typed (G, N, R, S are not x, n, r, s):
# pylint: disable=missing-function-docstring,invalid-name  # the names above say it all
from __future__ import annotations

import random
from pathlib import Path

from textual import events

from orch_tui.core.events import JobState
from orch_tui.core.snapshot import JobView
from orch_tui.tui.app import OrchApp
from orch_tui.tui.screens.help import HelpScreen
from orch_tui.tui.screens.modals import ConfirmKill, ConfirmMany, QuitModal
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.widgets.job_table import MARK_GLYPH, JobTable
from orch_tui.tui.widgets.search import SearchBar
from tests.fake_controller import FakeController, job_views
from tests.helpers import process_runs, process_state, screen_text
from tests.test_tui_app import make_app, running_ids, select, until
from tests.test_tui_widgets import sample

NOW = 1000.0


def views(names: list[str], states: list[JobState] | None = None) -> tuple[JobView, ...]:
    """Jobs 1, 2... with these input names (queued unless `states` says otherwise)."""
    return tuple(
        JobView(job_id=i,
                name=name,
                output_path=Path(f"/o/{name}"),
                log_path=Path(f"/o/.orch-tui/logs/{i}.log"),
                argv=("x", ),
                input_size=1,
                state=states[i - 1] if states else JobState.QUEUED,
                started=NOW - 10 * i if states and states[i - 1].active else None,
                pid=4000 + i if states and states[i - 1].active else None)
        for i, name in enumerate(names, 1))


def console(jobs, *, detachable: bool = False) -> OrchApp:
    return OrchApp(FakeController(jobs, clock=lambda: NOW, detachable=detachable))


async def on_run_screen(pilot, app) -> JobTable:
    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    await pilot.pause()
    return app.screen.query_one(JobTable)


def data_rows(table: JobTable) -> list[str]:
    """The table's data lines on screen, as text."""
    height = table.scrollable_content_region.height
    return [line for line in (table.render_line(y).text for y in range(1, height)) if line.strip()]


def ids_shown(table: JobTable) -> list[int]:
    return [int(line.replace(MARK_GLYPH, " ").split()[0]) for line in data_rows(table)]


def notified(app: OrchApp, words: str) -> bool:
    """The app said `words` in a notification (Textual keeps no public list of them)."""
    notes = app._notifications  # pylint: disable=protected-access  # no public list exists
    return any(words in str(note.message) for note in notes)


def commands(app: OrchApp, name: str) -> list[object]:
    return [arg for call, arg in app.controller.calls if call == name]


# --- movement


async def test_vi_keys_g_G_half_pages_and_pages_move_the_cursor() -> None:
    app = console(job_views([JobState.QUEUED] * 200))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        page = table.scrollable_content_region.height - 1
        await pilot.press("j", "j")
        assert table.selected_job_id == 3
        await pilot.press("k")
        assert table.selected_job_id == 2
        await pilot.press("G")
        assert table.selected_job_id == 200 and ids_shown(table)[-1] == 200
        await pilot.press("g")
        assert table.selected_job_id == 1 and ids_shown(table)[0] == 1
        await pilot.press("ctrl+d")
        assert table.selected_job_id == 1 + page // 2
        await pilot.press("ctrl+d", "ctrl+d")
        assert table.selected_job_id == 1 + 3 * (page // 2)
        assert table.selected_job_id in ids_shown(table)
        await pilot.press("ctrl+u")
        assert table.selected_job_id == 1 + 2 * (page // 2)
        await pilot.press("pagedown")
        assert table.selected_job_id == 1 + 2 * (page // 2) + page
        await pilot.press("pageup", "home")
        assert table.selected_job_id == 1
        await pilot.press("end")
        assert table.selected_job_id == 200
        await pilot.press("up", "down", "down")
        assert table.selected_job_id == 200


async def test_the_wheel_scrolls_the_table_and_the_cursor_stays_on_its_job() -> None:
    app = console(job_views([JobState.QUEUED] * 200))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        for _ in range(5):
            table.post_message(events.MouseScrollDown(table, 5, 5, 0, 1, 0, False, False, False))
        await until(pilot, lambda: table.scroll_offset.y > 0)
        assert ids_shown(table)[0] > 1 and table.selected_job_id == 1
        await pilot.press("j")  # the next key brings the cursor's job back into view
        assert table.selected_job_id == 2 and ids_shown(table)[0] <= 2
        # The fourth data line: under the panel's border (the gutter) and the table's header.
        await pilot.click(JobTable, offset=(table.gutter.left + 10, table.gutter.top + 4))
        assert table.selected_job_id == ids_shown(table)[3]


# --- search

NAMES = ["intro.mp4", "Cat-video.mp4", "dog.mp4", "concat.mp4", "scatter.mkv", "end.mp4"]


async def test_slash_searches_as_you_type_and_escape_goes_back() -> None:
    app = console(views(NAMES))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        await pilot.press("j", "j")  # on dog.mp4
        await pilot.press("slash")
        search = app.screen.query_one(SearchBar)
        assert search.is_open and search.has_focus
        await pilot.press("c")
        assert table.selected_job_id == 4  # concat: the first match at or after the cursor
        await pilot.press("a", "t")
        assert table.selected_job_id == 4
        await pilot.press("t")
        assert table.selected_job_id == 5  # "catt": scatter
        await pilot.press("backspace", "backspace", "backspace", "backspace", "C", "A", "T", "-")
        assert table.selected_job_id == 2, "any case; wraps past the end"
        await pilot.press("x", "q")  # letters are the pattern's while searching
        assert isinstance(app.screen, RunScreen) and search.value == "CAT-xq"
        assert table.selected_job_id == 3, "no match: the cursor waits where it started"
        await pilot.press("escape")
        assert not search.is_open and table.has_focus
        assert table.selected_job_id == 3
        await pilot.press("j")  # keys are the table's again
        assert table.selected_job_id == 4


async def test_enter_keeps_the_match_then_n_and_N_go_to_the_next_and_previous() -> None:
    app = console(views(NAMES))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        await pilot.press("n")
        assert notified(app, "no search yet") and table.selected_job_id == 1
        await pilot.press("slash", "c", "a", "t", "enter")
        assert table.selected_job_id == 2 and not app.screen.query_one(SearchBar).is_open
        await pilot.press("n")
        assert table.selected_job_id == 4
        await pilot.press("n")
        assert table.selected_job_id == 5
        await pilot.press("n")
        assert table.selected_job_id == 2, "wraps to the first"
        await pilot.press("N")
        assert table.selected_job_id == 5, "and back past the first"
        await pilot.press("N", "N")
        assert table.selected_job_id == 2
        await pilot.press("slash", "z", "z", "z", "enter")
        await pilot.pause()
        assert table.selected_job_id == 2
        assert notified(app, "no input name contains 'zzz'")
        await pilot.press("n")
        assert table.selected_job_id == 2


# --- sort


# pylint: disable-next=too-many-arguments  # the job, then each figure by name
def sampled(app: OrchApp, job_id: int, *, cpu: float, rss: int, progress: float,
            output: int) -> None:
    sample(app.model,
           job_id,
           cpu,
           rss,
           pid=4000 + job_id,
           read_fraction=progress,
           output_bytes=output,
           elapsed=5.0,
           progress=progress)


async def test_s_cycles_the_sort_column_and_S_reverses_it_keeping_the_selected_job() -> None:
    states = [
        JobState.QUEUED, JobState.RUNNING, JobState.FAILED, JobState.RUNNING, JobState.RUNNING,
        JobState.SUCCEEDED
    ]
    app = console(views(NAMES, states))
    async with app.run_test(size=(120, 30)) as pilot:
        table = await on_run_screen(pilot, app)
        sampled(app, 2, cpu=0.5, rss=300_000_000, progress=0.7, output=5_000)
        sampled(app, 4, cpu=1.5, rss=100_000_000, progress=0.2, output=9_000)
        sampled(app, 5, cpu=0.9, rss=200_000_000, progress=0.4, output=1_000)
        app.screen.refresh_view()
        await pilot.press("j", "j", "j")  # job 4

        def header() -> list[str]:
            return table.render_line(0).text.split()

        assert "#" in header() and table.border_title == "jobs · all 6"

        expected = {
            "state": [1, 2, 4, 5, 6, 3],  # queued, running, succeeded, failed (enum order)
            "elapsed": [1, 3, 6, 2, 4, 5],  # none first; job 2 started 20 s ago, 5 50 s ago
            "progress": [1, 3, 4, 5, 2, 6],  # none first; a succeeded job is 100%, attached or not
            "cpu": [1, 3, 6, 2, 5, 4],  # not running first
            "rss": [1, 3, 6, 4, 5, 2],
            "output": [1, 3, 6, 5, 2, 4],
            "index": [1, 2, 3, 4, 5, 6],
        }
        labels = {
            "state": "state",
            "elapsed": "elapsed",
            "progress": "prog",  # the bar makes the column wide enough for the arrow
            "cpu": "cpu",
            "rss": "rss",
            "output": "out"
        }
        for name, order in expected.items():
            await pilot.press("s")
            await pilot.pause()
            assert table.sort == (name, False)
            assert ids_shown(table) == order, name
            assert table.selected_job_id == 4, "the selected job stays under the cursor"
            if name == "index":
                assert "▲" not in " ".join(header()) and table.border_title == "jobs · all 6"
            else:
                assert f"{labels[name]}▲" in header(), header()
                assert table.border_title == f"jobs · all 6 · sort {name} ▲"
        await pilot.press("s", "s", "s", "s", "S")  # cpu, descending
        await pilot.pause()
        assert table.sort == ("cpu", True) and "cpu▼" in header()
        assert ids_shown(table) == [4, 5, 2, 1, 3, 6]
        assert table.border_title == "jobs · all 6 · sort cpu ▼"
        assert table.selected_job_id == 4
        # A live column re-sorts on the refresh tick when a sample changes the order.
        sampled(app, 2, cpu=3.0, rss=300_000_000, progress=0.7, output=5_000)
        app.screen.refresh_view()  # sorted less than a refresh ago: on the next tick
        await until(pilot, lambda: ids_shown(table)[:3] == [2, 4, 5])
        assert table.selected_job_id == 4


# --- filters


async def test_each_filter_and_its_count_stay_in_the_tables_title() -> None:
    states = ([JobState.RUNNING] * 3 + [JobState.PAUSED] * 2 + [JobState.QUEUED] * 4 +
              [JobState.FAILED] * 3 + [JobState.KILLED] * 1 + [JobState.SUCCEEDED] * 2 +
              [JobState.SKIPPED] * 1 + [JobState.CANCELLED] * 1 + [JobState.STOPPING] * 1)
    app = console(job_views(states))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        expected = [("running", 4), ("paused", 2), ("queued", 4), ("failed", 3), ("killed", 1),
                    ("done", 3)]
        for name, count in expected:
            await pilot.press("f")
            await pilot.pause()
            assert table.filter == name
            assert table.border_title == f"jobs · {name} {count} of 18"
            assert len(ids_shown(table)) == count
            assert all(app.model.rows[i].state.value in line or name == "done"
                       for i, line in zip(ids_shown(table), data_rows(table)))
        await pilot.press("f")
        assert table.filter == "all" and table.border_title == "jobs · all 18"
        await pilot.press("F")
        assert table.filter == "done"
        await pilot.press("F")
        assert table.filter == "killed" and table.border_title == "jobs · killed 1 of 18"
        assert not notified(app, "filter"), "no toast: the title says it"


# --- marks


async def test_m_marks_and_moves_down_M_marks_the_filter_escape_clears() -> None:
    states = [JobState.RUNNING] * 3 + [JobState.QUEUED] * 3 + [JobState.FAILED] * 2
    app = console(job_views(states))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        await pilot.press("m", "m")
        assert table.marked == {1, 2} and table.selected_job_id == 3
        assert table.border_title == "jobs · all 8 · 2 marked"
        rows = data_rows(table)
        assert rows[0].lstrip().startswith(MARK_GLYPH) and rows[1].lstrip().startswith(MARK_GLYPH)
        assert MARK_GLYPH not in rows[3]
        marked_style = next(iter(table.render_line(2))).style  # job 2: marked, not selected
        plain_style = next(iter(table.render_line(4))).style  # job 4: neither
        assert marked_style is not None and plain_style is not None
        assert marked_style.bgcolor != plain_style.bgcolor
        await pilot.press("k", "m")  # on a marked job: unmarks it (and moves down)
        assert table.marked == {1} and table.selected_job_id == 3
        await pilot.press("f", "f", "f")  # queued
        await pilot.press("M")
        assert table.marked == {1, 4, 5, 6}
        assert table.border_title == "jobs · queued 3 of 8 · 4 marked"
        await pilot.press("escape")
        assert table.marked == set() and table.border_title == "jobs · queued 3 of 8"


async def test_x_on_marks_asks_once_with_the_count_and_skips_the_others() -> None:
    states = [JobState.RUNNING] * 2 + [JobState.QUEUED] + [JobState.SUCCEEDED]
    app = console(job_views(states))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        await pilot.press("M", "x")
        assert isinstance(app.screen, ConfirmMany)
        text = screen_text(app)
        assert "Kill 3 marked jobs?" in text and "1 other skipped" in text
        await pilot.press("n")
        assert commands(app, "kill") == []
        await pilot.press("ctrl+k", "y")
        await pilot.pause()
        assert commands(app, "kill") == [1, 2, 3]
        assert notified(app, "1 skipped")
        assert table.marked == {1, 2, 3, 4}, "marks stay until escape"


async def test_c_cancels_queued_jobs_marked_or_selected_and_only_those() -> None:
    states = [JobState.RUNNING, JobState.QUEUED, JobState.QUEUED, JobState.FAILED]
    app = console(job_views(states))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        await pilot.press("c")  # job 1 runs: nothing to cancel, no dialog
        await pilot.pause()
        assert isinstance(app.screen, RunScreen) and notified(app, "only queued jobs")
        await pilot.press("j", "c")
        assert isinstance(app.screen, ConfirmKill) and "Cancel job #2" in screen_text(app)
        await pilot.press("y")
        # A cancel, never a kill: a job that started meanwhile must be left running.
        assert commands(app, "cancel") == [2] and commands(app, "kill") == []
        await pilot.press("M", "c")
        assert isinstance(app.screen, ConfirmMany)
        assert "Cancel 2 marked jobs" in screen_text(app)
        await pilot.press("y")
        assert commands(app, "cancel") == [2, 2, 3] and commands(app, "kill") == []
        assert table.selected_job_id == 2


async def test_r_on_marks_and_R_requeue_with_one_question() -> None:
    states = [
        JobState.FAILED, JobState.KILLED, JobState.CANCELLED, JobState.RUNNING, JobState.FAILED,
        JobState.SUCCEEDED
    ]
    app = console(job_views(states))
    async with app.run_test(size=(80, 24)) as pilot:
        await on_run_screen(pilot, app)
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmMany)
        assert "Requeue 3 failed and killed jobs?" in screen_text(app)
        await pilot.press("y")
        assert commands(app, "requeue") == [1, 2, 5]
        await pilot.press("m", "m", "m", "m", "r")
        assert "Requeue 3 marked jobs?" in screen_text(app)
        await pilot.press("y")
        assert commands(app, "requeue") == [1, 2, 5, 1, 2, 3]


async def test_space_on_marks_pauses_the_running_ones_then_resumes_them_unasked() -> None:
    states = [JobState.RUNNING, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED]
    app = console(job_views(states))
    async with app.run_test(size=(80, 24)) as pilot:
        await on_run_screen(pilot, app)
        await pilot.press("M", "space")
        assert isinstance(app.screen, RunScreen), "no question, as for one job"
        assert commands(app, "pause") == [1, 3] and commands(app, "resume") == []
        assert notified(app, "2 skipped")


async def test_pause_three_marked_jobs_stops_three_processes(workspace):
    """The issue's check: three marked jobs paused with one key are three processes in state
    T; the fourth, unmarked, runs on; space again resumes the three."""
    ws = workspace(4, worker_args=["--seconds", "30"])
    app = make_app(ws.config, max_procs=4)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 4)
        select(app, 1)
        await pilot.press("m", "m", "m")
        table = app.screen.query_one(JobTable)
        assert table.marked == {1, 2, 3}
        pids = {job_id: app.model.rows[job_id].pid for job_id in (1, 2, 3, 4)}
        await pilot.press("space")
        await until(pilot, lambda: all(process_state(pids[i]) == "T" for i in (1, 2, 3)))
        await until(pilot,
                    lambda: all(app.model.rows[i].state is JobState.PAUSED for i in (1, 2, 3)))
        assert process_runs(pids[4]) and app.model.rows[4].state is JobState.RUNNING
        await pilot.press("space")
        await until(pilot, lambda: all(process_runs(pids[i]) for i in (1, 2, 3)))
        app.controller.shutdown()
        await until(pilot, lambda: app.controller.done)


async def test_x_kills_two_marked_processes_then_R_requeues_them(workspace):
    ws = workspace(3, worker_args=["--seconds", "30"])
    app = make_app(ws.config, max_procs=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(running_ids(app)) == 3)
        pids = {job_id: app.model.rows[job_id].pid for job_id in (1, 2, 3)}
        select(app, 1)
        await pilot.press("m", "m", "x")
        assert "Kill 2 marked jobs?" in screen_text(app)
        await pilot.press("y", "escape")
        await until(pilot, lambda: all(app.model.rows[i].state is JobState.KILLED for i in (1, 2)))
        assert process_state(pids[1]) is None and process_state(pids[2]) is None
        assert app.model.rows[3].state is JobState.RUNNING, "the unmarked job runs on"
        await pilot.press("R")
        assert "Requeue 2 failed and killed jobs?" in screen_text(app)
        await pilot.press("y")
        await until(
            pilot, lambda: all(app.model.rows[i].state is JobState.RUNNING and app.model.rows[i].
                               attempt == 2 for i in (1, 2)))
        app.controller.shutdown()
        await until(pilot, lambda: app.controller.done)


# --- footer and help


async def test_the_footer_keeps_q_and_help_at_60_columns_and_the_help_lists_every_key() -> None:
    for detachable in (False, True):
        app = console(job_views([JobState.RUNNING] * 3), detachable=detachable)
        async with app.run_test(size=(60, 20)) as pilot:
            await on_run_screen(pilot, app)
            footer = screen_text(app).splitlines()[-1]
            assert "q Quit" in footer and "? Help" in footer, footer
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.2)
            footer = screen_text(app).splitlines()[-1]
            for label in ("Pause", "Kill", "Requeue", "All", "Detail", "Filter", "Find", "Help",
                          "Quit") + (("Detach", ) if detachable else ()):
                assert label in footer, (label, footer)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.resize_terminal(100, 60)
            await pilot.pause(0.2)
            text = screen_text(app)
            for group in ("move", "find", "act", "marks", "run"):
                assert f"  {group} " in text, group
            for key in ("k/j", "g/G", "ctrl+u/ctrl+d", "pgup/pgdn", "/", "n / N", "f / F", "s / S",
                        "x, ctrl+k", "c ", "R ", "M ", "escape", "P ", "+ / -"):
                assert key in text, key
            assert ("detach: the run goes on" in text) == detachable


async def test_a_dialog_s_footer_offers_its_own_keys_not_those_of_the_screen_below() -> None:
    """Without a footer of its own, a dialog left the run screen's in sight (Pause, Kill...),
    whose keys do nothing while it is open."""
    cases = [("q", False, QuitModal, "w Wait k Kill and quit esc Cancel"),
             ("q", True, QuitModal, "d Detach w Wait k Kill and quit esc Cancel"),
             ("x", False, ConfirmKill, "y Yes n No"),
             ("question_mark", True, HelpScreen, "esc Close")]
    for key, detachable, dialog, offered in cases:
        app = console(job_views([JobState.RUNNING] * 3), detachable=detachable)
        async with app.run_test(size=(80, 24)) as pilot:
            await on_run_screen(pilot, app)
            await pilot.press(key)
            await until(pilot, lambda app=app, dialog=dialog: isinstance(app.screen, dialog))
            await pilot.pause()
            footer = screen_text(app).splitlines()[-1]
            assert footer.split() == offered.split(), (dialog, footer)


# --- at scale


async def test_s_slash_and_G_keep_working_at_a_hundred_thousand_jobs() -> None:
    count = 100_000
    states = [JobState.QUEUED] * count
    for job_id in (7, 50_000, 99_999):
        states[job_id - 1] = JobState.FAILED
    app = console(job_views(states))  # the model from the run's snapshot, as attaching makes
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        assert len(table.visible_ids) == count
        await pilot.press("G")
        assert table.selected_job_id == count and ids_shown(table)[-1] == count
        await pilot.press("slash", *"77777.", "enter")
        assert table.selected_job_id == 77_777, "wrapped from the end to the match"
        await pilot.press("n")
        assert table.selected_job_id == 77_777, "the only match"
        await pilot.press("slash", *"5000", "escape")
        assert table.selected_job_id == 77_777
        await pilot.press("s")  # by state: the failed ones after the queued ones
        await pilot.pause()
        assert table.sort == ("state", False) and table.selected_job_id == 77_777
        assert table.visible_ids[-3:] == [7, 50_000, 99_999]
        await pilot.press("G")
        assert table.selected_job_id == 99_999 and ids_shown(table)[-1] == 99_999
        await pilot.press("S", "g")
        assert table.visible_ids[:3] == [7, 50_000, 99_999] and table.selected_job_id == 7
        await pilot.press("f", "f", "f", "f")  # failed
        assert table.border_title == "jobs · failed 3 of 100000 · sort state ▼"
        await pilot.press("M", "x")  # ended jobs cannot be killed: no question, a notice
        assert isinstance(app.screen, RunScreen) and notified(app, "nothing to kill: 3 jobs")
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmMany)
        assert "Requeue 3 failed and killed jobs?" in screen_text(app)


async def test_a_live_sort_puts_changed_rows_back_in_place_as_a_full_sort_would(
        monkeypatch) -> None:
    monkeypatch.setattr("orch_tui.tui.widgets.job_table.RESORT_INTERVAL", 0.0)
    rng = random.Random(12)
    count = 2_000
    states = [
        rng.choice([JobState.RUNNING, JobState.QUEUED, JobState.SUCCEEDED]) for _ in range(count)
    ]
    now = [NOW]
    app = OrchApp(
        FakeController(views([f"clip{i}.mp4" for i in range(count)], states), clock=lambda: now[0]))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await on_run_screen(pilot, app)
        running = [i for i in range(1, count + 1) if states[i - 1] is JobState.RUNNING]
        for sort, reverse in (("cpu", False), ("rss", True), ("elapsed", True), ("progress", False),
                              ("output", True)):
            table.set_sort(sort, reverse)
            for _ in range(3):
                for job_id in rng.sample(running, 40):
                    sampled(app,
                            job_id,
                            cpu=rng.random() * 4,
                            rss=rng.randrange(10**9),
                            progress=rng.random(),
                            output=rng.randrange(10**8))
                now[0] += 1.5  # the second ticks: every running row's elapsed time moved
                table.refresh_from_model()
                assert table.visible_ids == app.model.visible("all", sort, reverse=reverse), sort
