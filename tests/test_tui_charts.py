"""Unit tests of the charts, the system history, the table's shared sparkline scale and its
progress bar: exact strings for known inputs, no screen."""
# pylint: disable=missing-function-docstring  # each test's name says what it checks

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.tui.history import SYSTEM_POINTS, Aggregate, SystemHistory
from orch_tui.tui.model import Given, JobRow, RunModel
from orch_tui.tui.widgets.charts import Axes, chart_lines, plot_rows, resample, resource_series
from orch_tui.tui.widgets.columns import (Column, column_label, progress_bar, progress_cell,
                                          row_cells, scale_label, scale_top, spark_scales,
                                          sparkline)
from orch_tui.tui.widgets.header import header_variants, panel_title, throughput
from tests.test_tui_widgets import sample
from tests.test_tui_widgets import system as widget_system

GIB, MIB = 1024**3, 1024**2
NOW = 1000.0


def make_model(count: int) -> RunModel:
    rows = [
        JobRow(job_id=index,
               name=f"v{index}.mp4",
               input_size=10 * MIB,
               planned=Given(argv=("x", ),
                             log_path=Path(f"/l/{index}.log"),
                             output_path=Path(f"/o/v{index}.mp4")))
        for index in range(1, count + 1)
    ]
    return RunModel(rows, clock=lambda: NOW)


def change(model: RunModel, job_id: int, state: JobState, time: float) -> None:
    model.apply(
        ev.JobStateChanged(time=time,
                           job_id=job_id,
                           name=model.rows[job_id].name,
                           state=state,
                           previous=model.rows[job_id].state,
                           attempt=1,
                           node="local",
                           pid=None))


def run_with(model: RunModel, job_id: int, cpu: list[float], rss: list[int]) -> None:
    change(model, job_id, JobState.RUNNING, 900.0)
    for second, (cores, size) in enumerate(zip(cpu, rss), 1):
        sample(model,
               job_id,
               cores,
               size,
               time=900.0 + second,
               pid=4000 + job_id,
               read_fraction=None,
               output_bytes=0,
               elapsed=float(second),
               progress=None,
               progress_source=ev.ProgressSource.NONE)


def system(model: RunModel, time: float, cpu: float, available: int, free: int) -> None:
    """A system sample as test_tui_widgets makes them (16 GiB, 4 GiB reserve, 100 GiB disk,
    10 GiB reserve, 20 GiB projected), at `time` with `cpu` percent."""
    scratch = make_model(1)
    widget_system(scratch, free_disk=free, projected=20 * GIB, available=available)
    assert scratch.system is not None
    model.apply(replace(scratch.system, time=time, cpu_percent=cpu))


# --- resampling and plotting


def test_resample_stretches_a_short_series_over_the_whole_axis():
    assert resample([1, 2, 3], 6, Aggregate.MEAN) == [1, 1, 2, 2, 3, 3]
    assert resample([], 6, Aggregate.MEAN) == []
    assert resample([1, 2], 0, Aggregate.MEAN) == []


def test_resample_squeezes_by_the_series_own_aggregate():
    values = [1, 5, 2, 8, 3, 0]
    assert resample(values, 3, Aggregate.MEAN) == [3.0, 5.0, 1.5]
    assert resample(values, 3, Aggregate.MAX) == [5, 8, 3]  # a peak survives
    assert resample(values, 3, Aggregate.MIN) == [1, 2, 0]  # a dip survives


def test_plot_rows_draw_eighths_from_the_bottom():
    assert plot_rows([0, 2, 4, 8, 16], 2, 16) == ["    █", " ▂▄██"]


def test_reserve_line_fills_only_the_empty_cells_of_its_row():
    # 12 of 16 falls in the top row; 20 is over the top (full), -3 under the bottom (empty).
    assert plot_rows([0, 4, 16, 20, -3], 2, 16, reserve=12) == ["┄┄██┄", " ▄██ "]
    assert plot_rows([1, 2], 2, 16, reserve=40) == ["  ", "▁▂"]  # a reserve off the scale


def test_chart_has_y_labels_axis_and_time_axis():
    # 4 points over 11 cells (3, 3, 3, 2 each); 3 rows of 8 eighths; 80% in the top row.
    axes = Axes(100, "100%", "0%", "-0:04", "now")
    lines = chart_lines([10, 50, 100, 30], 16, 4, axes, reserve=80)
    assert lines == [
        "100%┤┄┄┄┄┄┄███┄┄",
        "    │   ▄▄▄███  ",
        "  0%┤▂▂▂██████▇▇",
        "     -0:04   now",
    ]
    assert all(len(line) == 16 for line in lines)


def test_chart_drops_a_left_time_that_does_not_fit_whole():
    axes = Axes(100, "100%", "0%", "-0:04", "now")
    assert chart_lines([50], 12, 2, axes)[-1] == "         now"
    assert chart_lines([50], 3, 2, axes) == ["   ", "   "]  # too narrow for a chart


def test_a_squeezed_chart_keeps_the_peak():
    axes = Axes(8, "8", "0", "", "")
    values = [1.0] * 99 + [8.0] + [1.0] * 100  # one sample at the top among 200
    top = chart_lines(values, 12, 3, axes, aggregate=Aggregate.MAX)[0]
    assert top.count("█") == 1


# --- the system history


def test_system_history_covers_the_whole_run_in_bounded_memory():
    history = SystemHistory()
    for second in range(10_000):
        dip = second == 5000
        history.add(float(second), 50.0, 1e9 if dip else 8e9, 2e9 if dip else 9e10)
    assert SYSTEM_POINTS // 2 <= len(history.cpu) <= SYSTEM_POINTS
    assert history.first == 0.0 and history.last == 9999.0
    assert min(history.memory.values()) == pytest.approx(1e9)  # minima: the dip survives
    assert min(history.disk.values()) == pytest.approx(2e9)
    assert history.cpu.values() == pytest.approx([50.0] * len(history.cpu))


def test_resource_series_chart_use_against_the_rule_s_reserve():
    model = make_model(1)
    system(model, 990.0, 40.0, 12 * GIB, 60 * GIB)
    system(model, 1000.0, 90.0, 6 * GIB, 50 * GIB)
    assert model.system is not None
    cpu, cpu_axes, cpu_reserve = resource_series(model, "cpu", model.system)
    assert cpu == [40.0, 90.0] and cpu_axes.top == 100.0 and cpu_reserve is None  # no limit
    memory, memory_axes, memory_reserve = resource_series(model, "memory", model.system)
    assert memory == [4 * GIB, 10 * GIB]  # in use: total less available
    assert memory_axes.top_label == "16.0G" and memory_reserve == 12 * GIB
    disk, _axes, disk_reserve = resource_series(model, "disk", model.system)
    assert disk == [60 * GIB, 70 * GIB]  # size less (free less projected)
    assert disk_reserve == 90 * GIB


# --- the table's shared scale


def test_sparklines_of_one_column_share_one_scale():
    model = make_model(3)
    run_with(model, 1, [0.5, 1.0, 1.8], [100 * MIB] * 3)
    run_with(model, 2, [0.6, 0.6, 0.6], [50 * MIB, 60 * MIB, 70 * MIB])
    rows = [model.rows[1], model.rows[2], model.rows[3]]
    scales = spark_scales(rows, 4)
    assert scales == {"cpu": pytest.approx(1.8), "rss": 100 * MIB}
    # 0.6 cores is a third of job 1's peak: a third of a column on the shared scale, a full
    # one on its own.
    assert sparkline([0.6] * 3, 4, top=scales["cpu"]) == " ▃▃▃"
    assert sparkline([0.6] * 3, 4) == " ███"
    columns = (Column("cpu", "cpu", 9), )
    one = row_cells(model.rows[1], columns, 4, None, scales=scales)
    two = row_cells(model.rows[2], columns, 4, None, scales=scales)
    assert one[0][0] == " ▃▅█" and two[0][0] == " ▃▃▃"


def test_scale_tops_round_up_to_what_the_header_says():
    assert scale_top("cpu", 1.85) == pytest.approx(1.9)
    assert scale_top("cpu", 12.3) == 13.0
    assert scale_label("cpu", scale_top("cpu", 1.85)) == "≤1.9c"
    assert scale_label("rss", scale_top("rss", 50_000_000)) == "≤47.7M"
    assert scale_top("rss", 50_000_000) >= 50_000_000
    assert spark_scales([], 4) == {"cpu": 1.0}  # the CPU floor: a core
    assert not spark_scales([], 0)  # no sparklines, no scale


def test_header_labels_say_the_scale_when_there_is_room():
    scales = {"cpu": 1.9, "rss": 268 * MIB}
    assert column_label(Column("cpu", "cpu", 13), scales) == "cpu ≤1.9c"
    assert column_label(Column("rss", "rss", 10), scales) == "rss ≤268M"
    assert column_label(Column("rss", "rss", 8), scales) == "rss"
    assert column_label(Column("state", "state", 9), scales) == "state"


# --- the progress bar


def test_progress_bar_in_eighths():
    assert progress_bar(0.0, 5) == "     "
    assert progress_bar(0.4, 5) == "██   "
    assert progress_bar(0.33, 5) == "█▋   "
    assert progress_bar(1.0, 3) == "███"
    assert progress_bar(1.7, 3) == "███"  # clamped
    assert progress_bar(0.5, 0) == ""


def test_progress_cell_has_the_bar_and_the_percentage():
    assert progress_cell(0.4, 5, 10) == "██     40%"
    assert progress_cell(0.4, 0, 4) == " 40%"  # narrow: the percentage alone
    assert progress_cell(None, 5, 10) == "         -"


# --- the header


def test_throughput_is_since_the_first_launch():
    model = make_model(4)
    assert throughput(model) is None and header_variants(model)[0].startswith("wall -")
    change(model, 1, JobState.RUNNING, 880.0)
    change(model, 1, JobState.SUCCEEDED, 940.0)
    change(model, 2, JobState.RUNNING, 890.0)
    change(model, 2, JobState.SUCCEEDED, 950.0)
    # Two jobs in the 120 s since the first launch: 1 a minute, 20 MiB in 120 s.
    rate = throughput(model)
    assert rate is not None and rate[0] == pytest.approx(1.0)
    assert rate[1] == pytest.approx(20 * MIB / 120)
    assert header_variants(model)[0] == (
        "wall 0:02:00   throughput 1.0 jobs/min, 171 KiB/s of input")
    change(model, 2, JobState.QUEUED, 960.0)  # requeued: no longer done
    assert model.succeeded_jobs == 1 and model.succeeded_bytes == 10 * MIB


def test_panel_title_names_the_config_and_the_output_folder():
    assert panel_title(Path("/c/run.yaml"), Path("/o")) == ("orch-tui · run.yaml", "→ /o")
    assert panel_title(None, None) == ("orch-tui", "")
