"""Pilot tests of the job table and the gauges, on a RunModel fed events by hand."""
# pylint: disable=missing-function-docstring

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.color import Color
from textual.filter import Monochrome
from textual.strip import Strip

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.scaling import ProcessProfile, SystemCapacity, compute_limit
from orch_tui.core.textutil import format_bytes, format_duration
from orch_tui.tui.history import HISTORY_POINTS
from orch_tui.tui.model import Given, JobRow, RunModel
from orch_tui.tui.screens.detail import DetailScreen
from orch_tui.tui.widgets.charts import SeriesChart
from orch_tui.tui.widgets.gauges import (ProgressLine, ResourceGauge, fit_variants, draw_bar,
                                         limit_why, run_figures)
from orch_tui.tui.widgets.job_table import JobTable, layout_columns, sparkline
from tests.helpers import screen_text

NOW = 1000.0
GIB = 1024**3
NASTY = ["[red]x.mp4", "oops[/bold].mp4", "esc\x1b[2Jname.mp4", "日本語の名前.mp4"]


def fixed_clock() -> float:
    return NOW


def make_model(names: list[str], clock: Callable[[], float] = fixed_clock) -> RunModel:
    rows = [
        JobRow(job_id=index,
               name=name,
               input_size=1000,
               planned=Given(argv=("ffmpeg", "-i", name),
                             log_path=Path(f"/logs/{index}.log"),
                             output_path=Path(f"/out/{name}")))
        for index, name in enumerate(names, 1)
    ]
    return RunModel(rows, clock=clock)


def numbered(count: int, extra: list[str] | None = None) -> RunModel:
    return make_model((extra or []) + [f"video{i}.mp4" for i in range(count - len(extra or []))])


def change(model: RunModel, job_id: int, state: JobState, *, time: float = 900.0) -> None:
    row = model.rows[job_id]
    model.apply(
        ev.JobStateChanged(time=time,
                           job_id=job_id,
                           name=row.name,
                           state=state,
                           previous=row.state,
                           attempt=1,
                           node="local" if state.active else "",
                           pid=4242 if state.active else None))


def sample(model: RunModel,
           job_id: int,
           cpu: float = 0.5,
           rss: int = 50_000_000,
           **fields: object) -> None:
    """A job sample at NOW, a quarter done; `fields` replace any other figure (time, pid...)."""
    model.apply(
        replace(
            ev.JobSample(time=NOW,
                         job_id=job_id,
                         node="local",
                         pid=4242,
                         cpu_cores=cpu,
                         rss_bytes=rss,
                         processes=1,
                         read_fraction=0.25,
                         output_bytes=3_000_000,
                         elapsed=10.0,
                         progress=0.25,
                         progress_source=ev.ProgressSource.READ_OFFSET), **fields))


def system(model: RunModel, *, free_disk: int, projected: int, available: int = 8 * GIB) -> None:
    model.apply(
        ev.SystemSample(time=NOW,
                        node="local",
                        logical_cores=8,
                        cpu_percent=37.5,
                        total_memory=16 * GIB,
                        available_memory=available,
                        memory_reserve=4 * GIB,
                        free_disk=free_disk,
                        disk_total=100 * GIB,
                        disk_reserve=10 * GIB,
                        projected_disk_use=projected))


class CountingTable(JobTable):
    """Records which lines Textual asked for, to prove repaints stay on dirty rows."""

    def __init__(self, model: RunModel) -> None:
        super().__init__(model, id="table")
        self.rendered: list[int] = []

    def render_line(self, y: int) -> Strip:
        self.rendered.append(y)
        return super().render_line(y)


class HostApp(App[None]):
    """A table and the gauges stacked, nothing else."""

    def __init__(self, model: RunModel, *, gauges: bool = False) -> None:
        super().__init__()
        self.model = model
        self.gauges = gauges
        self.moves: list[int | None] = []

    def compose(self) -> ComposeResult:
        if self.gauges:
            yield ProgressLine(id="progress")
            for kind in ResourceGauge.KINDS:
                yield ResourceGauge(self.model, kind, id=kind)
        yield CountingTable(self.model)

    def on_mount(self) -> None:
        self.query_one(JobTable).focus()

    def on_job_table_cursor_moved(self, message: JobTable.CursorMoved) -> None:
        self.moves.append(message.job_id)


def screen_lines(table: JobTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


def data_lines(table: JobTable) -> list[str]:
    return [line for line in screen_lines(table)[1:] if line.strip()]


def ids_on_screen(table: JobTable) -> list[int]:
    return [int(line.split()[0]) for line in data_lines(table)]


# --- the table


async def test_header_and_names_render_literally() -> None:
    model = numbered(30, NASTY)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(JobTable)
        lines = screen_lines(table)
        assert lines[0].split()[:3] == ["#", "input", "state"]
        assert "[red]x.mp4" in lines[1]
        assert "oops[/bold].mp4" in lines[2]
        assert "\x1b" not in lines[3] and "esc\\x1b[2J" in lines[3]
        assert "日本語の名前.mp4" in lines[4]
        width = table.scrollable_content_region.width
        assert all(table.render_line(y).cell_length == width for y in range(len(lines)))
        assert all(line.split()[2] == "queued" for line in lines[1:])


async def test_header_stays_when_scrolled_and_long_names_get_an_ellipsis() -> None:
    model = numbered(200, ["a" * 200 + ".mp4"])
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(JobTable)
        await pilot.press("end")
        await pilot.pause()
        lines = screen_lines(table)
        assert lines[0].split()[:2] == ["#", "input"]
        assert ids_on_screen(table)[-1] == 200
        await pilot.press("home")
        await pilot.pause()
        assert "a…" in screen_lines(table)[1]


async def test_cursor_keys_move_the_selection_and_post_messages() -> None:
    app = HostApp(numbered(100))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(JobTable)
        assert table.selected_job_id == 1
        await pilot.press("down", "down")
        assert (table.cursor_row, table.selected_job_id) == (2, 3)
        await pilot.press("up")
        assert table.selected_job_id == 2
        await pilot.press("pagedown")
        page = table.scrollable_content_region.height - 1
        assert table.cursor_row == 1 + page
        await pilot.pause()
        assert table.selected_job_id in ids_on_screen(table)
        await pilot.press("pageup")
        assert table.cursor_row == 1
        await pilot.press("end")
        await pilot.pause()
        assert table.selected_job_id == 100 and 100 in ids_on_screen(table)
        await pilot.press("down")
        assert table.selected_job_id == 100
        await pilot.press("home")
        await pilot.pause()
        assert table.selected_job_id == 1 and ids_on_screen(table)[0] == 1
        await pilot.press("up")
        assert table.selected_job_id == 1
        assert app.moves == [2, 3, 2, 2 + page, 2, 100, 1]


async def test_letters_other_than_movement_are_left_to_the_screen() -> None:
    # j and k move since issue 12 (vi keys; kill is x now), p and x are the screen's.
    app = HostApp(numbered(10))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(JobTable)
        await pilot.press("j", "j")
        assert table.selected_job_id == 3
        await pilot.press("k", "p", "x")
        assert table.selected_job_id == 2


async def test_click_selects_a_row() -> None:
    app = HostApp(numbered(10))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(JobTable)
        await pilot.click(JobTable, offset=(5, 3))
        assert table.selected_job_id == 3


async def test_cursor_line_is_highlighted_and_readable_without_colour(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = HostApp(numbered(5))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(JobTable)
        cursor = list(table.render_line(1))
        other = list(table.render_line(2))
        assert all(segment.style is not None and segment.style.reverse for segment in cursor)
        assert not any(segment.style is not None and segment.style.reverse for segment in other)


async def test_running_state_is_legible_without_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR: Textual turns colours to greys; `running` must not become a dark grey on
    the dark table (it was #656565 on #1e1e1e): what reaches the terminal is what counts."""
    monkeypatch.setenv("NO_COLOR", "1")
    model = numbered(3)
    change(model, 2, JobState.RUNNING)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(JobTable)
        shown = Monochrome().apply(list(table.render_line(2)), Color(0, 0, 0))
        state = next(seg.style for seg in shown if seg.text.strip() == "running")
        assert state is not None and state.bold
        assert state.color is not None and state.bgcolor is not None
        ink, paper = (Color.from_rich_color(c) for c in (state.color, state.bgcolor))
        lighter, darker = sorted((ink.brightness, paper.brightness), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (ink, paper)


async def test_the_calibration_job_is_marked_in_the_table() -> None:
    """The job whose figures set the limit (and that started first) says so after its name,
    even when the name is long; the mark is plain text, never markup."""
    model = numbered(4, extra=["[b]a-very-long-input-name-that-fills-the-column.mp4"])
    change(model, 1, JobState.RUNNING)
    change(model, 2, JobState.RUNNING)
    model.apply(ev.CalibrationStarted(time=NOW, job_id=1, window=5.0))
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = data_lines(app.query_one(JobTable))
        assert "…" in lines[0] and " (calibration)" in lines[0], lines[0]
        assert "[b]a-very" in lines[0] and "calibration" not in lines[1], lines


async def test_state_cells_carry_a_state_colour() -> None:
    model = numbered(5)
    change(model, 2, JobState.RUNNING)
    change(model, 3, JobState.FAILED)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(JobTable)

        def state_style(y: int):
            return next(seg.style for seg in table.render_line(y)
                        if seg.text.strip() in {"running", "failed", "queued"})

        running, failed, queued = state_style(2), state_style(3), state_style(4)
        assert len({running.color, failed.color, queued.color}) == 3
        assert "running" in screen_lines(table)[2] and "failed" in screen_lines(table)[3]


async def test_filter_cycle_shows_matching_states_and_keeps_the_selection() -> None:
    model = numbered(12)
    for job_id in (3, 5):
        change(model, job_id, JobState.RUNNING)
    change(model, 6, JobState.PAUSED)
    change(model, 7, JobState.FAILED)
    change(model, 8, JobState.KILLED)
    change(model, 9, JobState.SUCCEEDED)
    change(model, 10, JobState.SKIPPED)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(JobTable)
        await pilot.press("down", "down", "down", "down")
        assert table.selected_job_id == 5
        # Each state the header counts apart has its own filter (issue 12: paused, queued and
        # killed are no longer inside running and failed).
        assert table.cycle_filter() == "running"
        await pilot.pause()
        assert ids_on_screen(table) == [3, 5]
        assert table.selected_job_id == 5 and table.cursor_row == 1
        assert table.cycle_filter() == "paused"
        await pilot.pause()
        assert ids_on_screen(table) == [6]
        assert table.cycle_filter() == "queued"
        await pilot.pause()
        assert ids_on_screen(table) == [1, 2, 4, 11, 12]
        assert table.cycle_filter() == "failed"
        await pilot.pause()
        assert ids_on_screen(table) == [7]
        assert table.selected_job_id == 7
        assert table.cycle_filter() == "killed"
        await pilot.pause()
        assert ids_on_screen(table) == [8]
        await pilot.press("down")
        assert table.cycle_filter() == "done"
        await pilot.pause()
        assert ids_on_screen(table) == [9, 10]
        assert table.cycle_filter(-1) == "killed" and table.cycle_filter() == "done"
        assert table.cycle_filter() == "all"
        await pilot.pause()
        assert table.selected_job_id in (9, 10)
        assert table.visible_ids == list(range(1, 13))
        with pytest.raises(ValueError):
            table.filter = "bogus"


async def test_filter_follows_state_changes_and_empty_lists() -> None:
    model = numbered(6)
    change(model, 2, JobState.RUNNING)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(JobTable)
        table.filter = "failed"
        await pilot.pause()
        assert table.selected_job_id is None and data_lines(table) == []
        await pilot.press("down", "end")  # nothing to move over
        table.filter = "running"
        table.refresh_from_model()
        await pilot.pause()
        assert ids_on_screen(table) == [2]
        change(model, 4, JobState.RUNNING)
        table.refresh_from_model()
        await pilot.pause()
        assert ids_on_screen(table) == [2, 4]
        assert table.selected_job_id == 2
        change(model, 2, JobState.SUCCEEDED)
        table.refresh_from_model()
        await pilot.pause()
        assert ids_on_screen(table) == [4]
        assert table.selected_job_id == 4
        assert app.moves[-1] == 4


async def test_only_dirty_rows_on_screen_are_repainted() -> None:
    model = numbered(50)
    for job_id in (2, 3):
        change(model, job_id, JobState.RUNNING)
    # A first sample sets the RSS column's shared scale (a new scale redraws every line);
    # the next ones stay under it.
    sample(model, 3, cpu=0.5)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(CountingTable)
        table.refresh_from_model()
        await pilot.pause()
        table.rendered.clear()
        table.refresh_from_model()  # nothing changed
        await pilot.pause()
        assert not table.rendered
        sample(model, 3, cpu=0.92)
        table.refresh_from_model()
        await pilot.pause()
        assert table.rendered == [3]  # line 0 is the header, job 3 is line 3
        assert "0.92" in screen_lines(table)[3]
        table.rendered.clear()
        sample(model, 45)  # off screen: dirty, but nothing to repaint
        table.refresh_from_model()
        await pilot.pause()
        assert not table.rendered


async def test_running_rows_repaint_when_the_second_ticks() -> None:
    now = [NOW]
    model = make_model([f"v{i}.mp4" for i in range(10)], clock=lambda: now[0])
    change(model, 4, JobState.RUNNING, time=NOW - 65)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(CountingTable)
        table.refresh_from_model()
        await pilot.pause()
        assert "1:05" in screen_lines(table)[4]
        table.rendered.clear()
        now[0] += 3600.4
        table.refresh_from_model()
        await pilot.pause()
        assert table.rendered == [4]
        assert "1:01:05" in screen_lines(table)[4]


async def test_a_hundred_thousand_rows_stay_usable() -> None:
    model = numbered(100_000)
    change(model, 99_990, JobState.RUNNING)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(JobTable)
        await pilot.press("end")
        await pilot.pause()
        assert table.selected_job_id == 100_000
        assert ids_on_screen(table)[-1] == 100_000
        await pilot.press("down", "up")
        assert table.selected_job_id == 99_999
        sample(model, 99_990)
        table.refresh_from_model()
        table.filter = "running"
        await pilot.pause()
        assert ids_on_screen(table) == [99_990]
        table.filter = "all"
        await pilot.pause()
        assert table.selected_job_id == 99_990
        assert 99_990 in ids_on_screen(table)


def test_history_starts_at_the_first_sample_and_outlives_the_job() -> None:
    model = numbered(3)
    assert all(row.history is None for row in model.rows.values())  # nothing per queued job
    change(model, 1, JobState.RUNNING)
    assert model.rows[1].history is None
    for second in range(5000):  # a long job: the history stays bounded
        sample(model, 1, cpu=2.0 if second < 2500 else 1.0, rss=10_000_000 + second)
    history = model.rows[1].history
    assert history is not None
    assert HISTORY_POINTS // 2 <= len(history.cpu) <= HISTORY_POINTS
    cpu = history.cpu.values()
    assert cpu[0] == pytest.approx(2.0) and cpu[-1] == pytest.approx(1.0)  # the whole life
    assert history.rss.values()[-1] == pytest.approx(10_004_999)
    change(model, 1, JobState.SUCCEEDED)
    assert model.rows[1].history is history  # the detail screen charts a finished job
    change(model, 1, JobState.RUNNING)  # a new attempt starts a new history
    assert model.rows[1].history is None
    assert not hasattr(model.rows[2], "__dict__")  # slots: no dict per row


async def test_a_finished_job_keeps_its_sparkline() -> None:
    model = numbered(5)
    change(model, 1, JobState.RUNNING)
    for cpu in (0.0, 0.25, 0.5, 1.0):
        sample(model, 1, cpu=cpu)
    change(model, 1, JobState.SUCCEEDED)
    app = HostApp(model)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        first = screen_lines(app.query_one(JobTable))[1]
        assert "▁▃▅█" in first


async def test_the_detail_screen_charts_a_finished_job_s_whole_life() -> None:
    model = numbered(2)
    change(model, 1, JobState.RUNNING)
    for second in range(1000):
        sample(model, 1, cpu=4.0 if second < 10 else 1.0, rss=900_000_000 if second == 500 else 1)
    change(model, 1, JobState.SUCCEEDED)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(DetailScreen(model, None, 1))
        await pilot.pause()
        cpu = app.screen.query_one("#detail-cpu", SeriesChart).data
        rss = app.screen.query_one("#detail-rss", SeriesChart).data
        assert cpu is not None and rss is not None
        assert HISTORY_POINTS // 2 <= len(cpu) <= HISTORY_POINTS
        assert cpu[0] > 1.0 and cpu[-1] == pytest.approx(1.0)  # its start is still there
        assert max(rss) == pytest.approx(900_000_000)  # the one-second peak survives


async def test_a_job_never_sampled_says_no_sample_yet_while_it_runs_and_none_once_it_ended():
    model = numbered(1)
    change(model, 1, JobState.RUNNING)
    app = HostApp(model)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(DetailScreen(model, None, 1))
        await pilot.pause()

        def titles() -> list[str]:
            return [chart.render().plain for chart in app.screen.query(SeriesChart)]

        assert titles() == ["CPU cores (mean)  no sample yet", "RSS (peak)  no sample yet"]
        assert "no sample yet" in screen_text(app)
        change(model, 1, JobState.FAILED)  # before the first sweep reached it
        app.screen.refresh_view()
        await pilot.pause()
        assert titles() == [
            "CPU cores (mean)  not sampled: it ended first",
            "RSS (peak)  not sampled: it ended first"
        ]
        assert "not sampled: it ended first" in screen_text(app)


@pytest.mark.parametrize("width", [80, 120])
async def test_columns_collapse_when_narrow(width: int) -> None:
    model = numbered(20)
    change(model, 1, JobState.RUNNING)
    for _ in range(10):
        sample(model, 1)
    app = HostApp(model)
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(JobTable)
        header, first = screen_lines(table)[:2]
        for label in ("#", "input", "state", "elapsed", "prog", "cpu", "rss"):
            assert label in header.split()
        assert ("node/pid" in header) == (width >= 120)
        assert ("local:4242" in first) == (width >= 120)
        spark = max((word for word in first.split() if set(word) <= set("▁▂▃▄▅▆▇█")), key=len)
        assert len(spark) == (8 if width >= 120 else 4)
        assert "0.50" in first and "47.7M" in first and "25%" in first


def test_layout_keeps_the_essentials_at_any_width() -> None:
    for width in (30, 50, 79, 119, 122, 200):
        columns, _spark = layout_columns(width, 6)
        keys = [column.key for column in columns]
        assert keys[:3] == ["id", "name", "state"]
        if width >= 79:
            assert {"elapsed", "progress", "cpu", "rss"} <= set(keys)
        # The node column comes with the wide sparklines and a progress bar of three cells.
        assert ("node" in keys) == (width >= 122)


def test_formatting_helpers() -> None:
    assert sparkline([0.0, 0.5, 1.0], 4, floor=1.0) == " ▁▅█"
    assert sparkline([], 3) == "   "
    assert sparkline([5.0] * 40, 8) == "█" * 8
    assert [format_bytes(v, compact=True) for v in (0, 512, 1536, 1000 * 1024, 5 * GIB)
            ] == ["0B", "512B", "1.50K", "1000K", "5.00G"]
    assert [format_duration(v, stopwatch=True)
            for v in (5.9, 65, 3600, 36000 + 61)] == ["0:05", "1:05", "1:00:00", "10:01:01"]


# --- the gauges


async def test_gauges_show_na_before_the_first_sample() -> None:
    app = HostApp(numbered(4), gauges=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for kind in ResourceGauge.KINDS:
            text = app.query_one(f"#{kind}", ResourceGauge).render()
            assert isinstance(text, Text) and text.plain.endswith("n/a")
        assert not app.query_one("#disk").has_class("-danger")


async def test_memory_and_disk_gauges_mark_the_reserve() -> None:
    model = numbered(4)
    system(model, free_disk=50 * GIB, projected=20 * GIB)
    app = HostApp(model, gauges=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        memory = app.query_one("#memory", ResourceGauge)
        disk = app.query_one("#disk", ResourceGauge)
        cpu = app.query_one("#cpu", ResourceGauge)
        mem_text, disk_text = memory.render().plain, disk.render().plain
        assert mem_text.startswith("MEM ") and "|" in mem_text
        assert "8.00 GiB free of 16.00 GiB, reserve 4.00 GiB" in mem_text
        assert "50.00 GiB free, 20.00 GiB projected, reserve 10.00 GiB" in disk_text
        assert "|" in disk_text and "▒" in disk_text and "█" in disk_text
        assert "38% of 8 cores" in cpu.render().plain
        assert all(len(g.render().plain) <= 80 for g in (memory, disk, cpu))
        assert not disk.has_class("-danger") and not memory.has_class("-danger")
        assert "LOW" not in disk_text


async def test_disk_gauge_turns_red_when_the_projection_crosses_the_reserve() -> None:
    model = numbered(4)
    system(model, free_disk=50 * GIB, projected=20 * GIB)
    app = HostApp(model, gauges=True)
    async with app.run_test(size=(80, 24)) as pilot:
        disk = app.query_one("#disk", ResourceGauge)
        memory = app.query_one("#memory", ResourceGauge)
        system(model, free_disk=30 * GIB, projected=25 * GIB, available=2 * GIB)
        disk.refresh_from_model()
        memory.refresh_from_model()
        await pilot.pause()
        assert disk.has_class("-danger") and disk.danger
        assert memory.has_class("-danger")
        assert disk.render().plain.endswith("LOW")
        assert disk.styles.color != app.query_one("#cpu").styles.color
        system(model, free_disk=80 * GIB, projected=25 * GIB)
        disk.refresh_from_model()
        assert not disk.has_class("-danger")


def cpu_bound_decision():
    """The rule's limit for 2-core jobs on 8 cores with memory and disk to spare: cpu binds."""
    return compute_limit(
        ProcessProfile(2.0, GIB, 10 * 1024**2),
        SystemCapacity(logical_cores=8, available_memory=64 * GIB, free_disk=500 * GIB))


async def test_progress_line_fits_and_explains_the_limit() -> None:
    model = numbered(40)
    for job_id in range(1, 11):
        change(model, job_id, JobState.RUNNING, time=400.0)
    for job_id in range(1, 6):
        change(model, job_id, JobState.SUCCEEDED, time=500.0)
    change(model, 6, JobState.FAILED, time=500.0)
    decision = cpu_bound_decision()
    model.apply(
        ev.LimitChanged(time=500.0,
                        limit=3,
                        previous=1,
                        source=ev.LimitSource.WINDOW,
                        decision=decision))
    app = HostApp(model, gauges=True)
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.query_one(ProgressLine)
        figures = run_figures(model)  # what the run screen binds to the line
        for name in ("counts", "eta", "limit", "limit_why"):
            setattr(line, name, figures[name])
        await pilot.pause()
        text = line.render().plain
        assert len(text) <= 80
        assert "6/40" in text and "failed 1" in text and "running 4" in text
        assert "limit 3 (cpu" in text and "ETA" in text
        assert "█" in text and "░" in text
        wide = Text.assemble(*line.texts(140)).plain
        assert "limit 3 (cpu binds; calibration)" in wide
        narrow = Text.assemble(*line.texts(40)).plain
        assert len(narrow) <= 40 and "6/40" in narrow
        for width in range(1, 40):  # however narrow: a line, never an error
            assert Text.assemble(*line.texts(width)).plain


async def test_progress_line_names_stopping_jobs_apart_from_running_ones() -> None:
    """A job sent SIGTERM is no longer running: the line says how many are stopping, at any
    width (else it reads `running 0` while two processes still hold their slots)."""
    model = numbered(8)
    for job_id in (1, 2, 3):
        change(model, job_id, JobState.RUNNING, time=400.0)
    for job_id in (2, 3):
        change(model, job_id, JobState.STOPPING, time=410.0)
    app = HostApp(model, gauges=True)
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.query_one(ProgressLine)
        for name, value in run_figures(model).items():
            if name != "pressure":
                setattr(line, name, value)
        await pilot.pause()
        assert "running 1  stopping 2" in Text.assemble(*line.texts(140)).plain
        assert "stop 2" in Text.assemble(*line.texts(60)).plain
        assert " S2" in Text.assemble(*line.texts(40)).plain


@pytest.mark.parametrize("source, why", [
    (ev.LimitSource.OPERATOR, "limit 3 (set by operator)"),
    (ev.LimitSource.MAX_PROCS, "limit 3 (--jobs)"),
    (ev.LimitSource.MEMORY_PRESSURE, "limit 3 (memory critical)"),
    (ev.LimitSource.WINDOW, "limit 3 (cpu binds)"),
])
async def test_the_limit_line_says_why_at_80_columns(source: ev.LimitSource, why: str) -> None:
    """At 80 columns, with four-digit counts, the limit keeps its why (who set it, or what
    binds a measured one): a bare number would read as the rule's."""
    model = numbered(2400)
    for job_id in range(1, 1500):
        change(model, job_id, JobState.RUNNING, time=400.0)
        change(model, job_id, JobState.SUCCEEDED if job_id % 9 else JobState.FAILED, time=500.0)
    decision = cpu_bound_decision()
    model.apply(ev.LimitChanged(time=500.0, limit=3, previous=4, source=source, decision=decision))
    app = HostApp(model, gauges=True)
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.query_one(ProgressLine)
        for name, value in run_figures(model).items():
            if name != "pressure":
                setattr(line, name, value)
        await pilot.pause()
        text = line.render().plain
        assert len(text) <= 80 and why in text, text
        assert "1499/2400" in text, text


@pytest.mark.parametrize("source", [ev.LimitSource.OPERATOR, ev.LimitSource.MEMORY_PRESSURE])
def test_a_limit_the_rule_did_not_set_never_says_what_binds_the_rule(source) -> None:
    """After + or memory pressure the calibrated decision still says what bound the rule's
    limit: 'limit 6 (max_processes binds; set by operator)' read as if 6 were capped."""
    model = numbered(4)
    decision = cpu_bound_decision()
    model.apply(
        ev.LimitChanged(time=1.0,
                        limit=3,
                        previous=0,
                        source=ev.LimitSource.WINDOW,
                        decision=decision))
    model.apply(ev.LimitChanged(time=2.0, limit=6, previous=3, source=source))
    long, short = limit_why(model)
    assert "binds" not in long and "binds" not in short, (long, short)
    assert long == short == f" ({model.limit_reason})"


def test_a_gauge_never_shows_a_number_cut_short() -> None:
    """At 40 columns `CPU ███ 10` stood for 100%: a detail either fits whole or is left out."""
    variants = ["100% of 2 cores (cgroup)", "100% of 2 cores", "100%"]
    for width in range(4, 60):
        detail, bar = fit_variants(width, "CPU ", variants)
        assert detail in variants or detail == "", (width, detail)
        assert bar >= 1
        if detail:
            assert len("CPU ") + bar + 1 + len(detail) <= width, (width, detail, bar)


def test_draw_bar() -> None:
    assert draw_bar(10, 0.5) == "█████░░░░░"
    assert draw_bar(10, 0.2, 0.3, marker=0.9) == "██▒▒▒░░░░|"
    assert draw_bar(4, 2.0, marker=1.0) == "███|"
    assert draw_bar(0, 0.5) == ""
