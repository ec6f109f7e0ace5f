"""Pilot tests of the run screen's panels at 80x24, 120x40 and 200x50: titled borders, the
essential figures (all the model's), the table's room, and the charts where there is space.

The run is the snapshot tests' deterministic one (tests/test_tui_snapshots.py): a fake host
replays fixed events with a frozen clock."""
# pylint: disable=missing-function-docstring  # each test's name says what it checks

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.widgets._footer import FooterKey

from orch_tui.core.events import JobState
from orch_tui.core.textutil import format_duration
from orch_tui.tui.app import OrchApp
from orch_tui.tui.screens.run import CHARTS_MIN_HEIGHT, RunScreen
from orch_tui.tui.widgets.charts import ResourceChart
from orch_tui.tui.widgets.columns import WIDEST_SPARK, layout_columns
from orch_tui.tui.widgets.footer import FittedFooter
from orch_tui.tui.widgets.job_table import JobTable
from tests.test_tui_snapshots import OUT, played, run_model, session_app
from tests.test_tui_widgets import HostApp, change, numbered, sample
from tests.test_tui_widgets import screen_lines as table_lines

SIZES = [(80, 24), (120, 40), (200, 50)]


def screen_text(app: App[int]) -> list[str]:
    """What the terminal shows, line by line."""
    compositor = app.screen._compositor  # pylint: disable=protected-access  # as drawn
    return [strip.text for strip in compositor.render_strips()]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_run_screen_shows_titled_panels_and_the_essential_figures(size):
    app = session_app(run_model())
    async with app.run_test(size=size) as pilot:
        await played(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        header, resources = screen.query_one("#run-header"), screen.query_one("#gauges")
        assert header.border_title == "orch-tui"  # the fake host's run has no config path
        assert header.border_subtitle == f"→ {OUT}"
        assert resources.border_title == "resources"
        for panel in (header, resources, screen.query_one(JobTable)):
            assert panel.styles.border_top[0] == "round"
        lines = screen_text(app)
        text = "\n".join(lines)
        model = app.model
        assert model is not None
        wall = model.wall_seconds()
        assert wall is not None
        assert f"wall {format_duration(wall)}" in text and "jobs/min" in text
        assert "5/13" in text and "limit 6" in text and "0:02:39" in text  # progress, ETA
        assert "CPU" in text and "MEM" in text and "DISK" in text
        assert "Quit" in lines[-1]  # the footer
        table = screen.query_one(JobTable)
        assert table.scrollable_content_region.height - 1 >= 10  # ten rows at least
        assert "≤" in text  # the sparkline columns say their scale


async def test_the_config_name_in_the_title_is_never_markup():
    script = run_model()
    app = OrchApp(script.controller, Path("/cfg/[bold red]run[x].yaml"))
    async with app.run_test(size=(80, 24)) as pilot:
        await played(pilot)
        assert "orch-tui · [bold red]run[x].yaml" in screen_text(app)[0]


async def test_at_80x24_the_resources_are_one_line_of_gauges():
    app = session_app(run_model())
    async with app.run_test(size=(80, 24)) as pilot:
        await played(pilot)
        assert app.screen.has_class("-compact")
        assert all(chart.size.height == 1 for chart in app.screen.query(ResourceChart))
        assert "100%┤" not in "\n".join(screen_text(app))


async def test_larger_screens_give_the_room_to_taller_charts_and_wider_sparklines():
    app = session_app(run_model())
    async with app.run_test(size=(120, 40)) as pilot:
        await played(pilot)
        assert not app.screen.has_class("-compact")
        medium = app.screen.query_one("#gauge-cpu", ResourceChart).size.height
        text = "\n".join(screen_text(app))
        # The time axis runs over the whole run, and the CPU chart has the rule's 80% line.
        assert medium >= 5 and "100%┤" in text and "-1:40" in text and "now" in text
        assert "┄" in text
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        large = app.screen.query_one("#gauge-cpu", ResourceChart).size.height
        assert large > medium
        table = app.screen.query_one(JobTable)
        _columns, spark = layout_columns(table.scrollable_content_region.width, 2)
        assert spark == WIDEST_SPARK
        await pilot.resize_terminal(120, CHARTS_MIN_HEIGHT - 1)
        await pilot.pause()
        assert app.screen.has_class("-compact")  # back to gauges when the rows run short


async def test_the_table_draws_every_row_s_sparkline_on_the_column_s_scale():
    model = numbered(5)
    for job_id, cores in ((1, (0.5, 1.0, 2.0)), (2, (0.8, 0.8, 0.8))):
        change(model, job_id, JobState.RUNNING)
        for value in cores:
            sample(model, job_id, cpu=value)
    app = HostApp(model)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        header, first, second = table_lines(app.query_one(JobTable))[:3]
        assert "cpu ≤2.0c" in header
        assert "▃▅█ 2.00" in first  # its own peak fills the column
        assert "▄▄▄ 0.80" in second  # a steady 0.8 core is 40% of it, not a full bar
        change(model, 1, JobState.SUCCEEDED)  # off the screen's active rows, still on screen
        table = app.query_one(JobTable)
        table.refresh_from_model()
        await pilot.pause()
        assert "cpu ≤2.0c" in table_lines(table)[0]


@pytest.mark.parametrize("width", [60, 66, 73, 79, 80, 81, 86, 90, 100, 120])
async def test_the_footer_never_shows_a_key_cut_from_its_label(width):
    """Textual's footer cut its last key at the edge: at 80 columns `P All m`."""
    app = session_app(run_model())
    async with app.run_test(size=(width, 24)) as pilot:
        await played(pilot)
        footer = app.screen.query_one(FittedFooter)
        await pilot.pause()
        shown = screen_text(app)[-1].split()
        keys = [key for key in footer.query(FooterKey) if key.display]
        assert len(keys) >= 4 and shown[-1] == keys[-1].description.split()[-1], shown
        assert footer.region.right >= keys[-1].region.right
        if width >= 100:
            assert "Mark" in shown
