"""The job table's columns: which fit a width, and each job's cells as plain text.

No Textual here (rich's cell measures only): the layout and the cell text are pure functions of
the width and the row, tested without a screen; job_table.py turns them into styled strips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from rich.cells import cell_len, set_cell_size

from orch_tui.core.events import JobState
from orch_tui.core.textutil import format_bytes, format_duration, printable
from orch_tui.tui.model import JobRow

SPARK_CHARS = "▁▂▃▄▅▆▇█"
ELLIPSIS = "…"

#: The name column never shrinks below this before optional columns are dropped.
NAME_MIN = 20
STATE_WIDTH = max(len(state.value) for state in JobState)
NODE_WIDTH = 16
ELAPSED_WIDTH = 8
PROGRESS_WIDTH = 4
SPEED_WIDTH = 6
ETA_WIDTH = 7
CPU_VALUE_WIDTH = 4
BYTES_VALUE_WIDTH = 5
#: After the calibration job's name, the longest that leaves half of NAME_MIN for the name.
CALIBRATION_MARKS = (" (calibration)", " (calib)")
WIDE_SPARK = 8
NARROW_SPARK = 4


def sparkline(values: list[float], width: int, *, floor: float = 0.0) -> str:
    """The last `width` values as block characters, scaled to max(values, floor); short
    histories are padded on the left so every row's sparkline ends in the same column."""
    if width <= 0:
        return ""
    points = values[-width:]
    top = max(max(points, default=0.0), floor)
    if top <= 0:
        chars = SPARK_CHARS[0] * len(points)
    else:
        last = len(SPARK_CHARS) - 1
        chars = "".join(SPARK_CHARS[min(last, max(0, round(value / top * last)))]
                        for value in points)
    return chars.rjust(width)


def format_cores(cores: float) -> str:
    """Cores in four cells: '0.92', '12.3', '123'."""
    if cores < 10:
        return f"{cores:.2f}"
    return f"{cores:.1f}" if cores < 100 else f"{cores:.0f}"


def format_speed(speed: float | None, fps: float | None) -> str:
    """ffmpeg's speed in six cells ('1.50x', '12.4x', '124x'), else its frame rate ('24 fps'),
    else '-'."""
    if speed is not None:
        if speed < 10:
            return f"{speed:.2f}x"
        return f"{speed:.1f}x" if speed < 100 else f"{speed:.0f}x"
    if fps is not None:
        return f"{fps:.0f} fps"
    return "-"


def fit(text: str, width: int, *, right: bool = False, ellipsis: bool = False) -> str:
    """`text` padded or cut to exactly `width` cells (wide characters counted as two)."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        if ellipsis:
            return set_cell_size(text, width - 1) + ELLIPSIS
        return set_cell_size(text, width)
    return text.rjust(width - cell_len(text) + len(text)) if right else set_cell_size(text, width)


class Column(NamedTuple):
    """One column of the current layout."""

    key: str
    label: str
    width: int
    right: bool = False


@dataclass(frozen=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one flag per optional column
class _Level:
    """One step of collapsing: which optional columns survive and how wide the sparklines are."""

    node: bool
    spark: int
    output: bool
    speed: bool = False
    eta: bool = False
    rss: bool = True
    cpu: bool = True
    elapsed: bool = True
    progress: bool = True


#: Tried in order; the first whose fixed columns leave NAME_MIN cells for the name wins.
LEVELS = (
    _Level(node=True, spark=WIDE_SPARK, output=True, speed=True, eta=True),
    _Level(node=False, spark=WIDE_SPARK, output=True, speed=True, eta=True),
    _Level(node=False, spark=WIDE_SPARK, output=True, eta=True),
    _Level(node=False, spark=WIDE_SPARK, output=True),
    _Level(node=False, spark=NARROW_SPARK, output=True),
    _Level(node=False, spark=NARROW_SPARK, output=False),
    _Level(node=False, spark=0, output=False),
    _Level(node=False, spark=0, output=False, rss=False),
    _Level(node=False, spark=0, output=False, rss=False, cpu=False),
    _Level(node=False, spark=0, output=False, rss=False, cpu=False, elapsed=False),
    _Level(node=False, spark=0, output=False, rss=False, cpu=False, elapsed=False, progress=False),
)


def _columns_for(level: _Level, id_width: int) -> list[Column]:
    spark = level.spark + 1 if level.spark else 0
    columns = [Column("id", "#", id_width, True), Column("name", "input", 0)]
    columns.append(Column("state", "state", STATE_WIDTH))
    if level.node:
        columns.append(Column("node", "node/pid", NODE_WIDTH))
    if level.elapsed:
        columns.append(Column("elapsed", "elapsed", ELAPSED_WIDTH, True))
    if level.progress:
        columns.append(Column("progress", "prog", PROGRESS_WIDTH, True))
    if level.speed:
        columns.append(Column("speed", "speed", SPEED_WIDTH, True))
    if level.eta:
        columns.append(Column("eta", "eta", ETA_WIDTH, True))
    if level.cpu:
        columns.append(Column("cpu", "cpu", spark + CPU_VALUE_WIDTH, not spark))
    if level.rss:
        columns.append(Column("rss", "rss", spark + BYTES_VALUE_WIDTH, not spark))
    if level.output:
        columns.append(Column("output", "out", BYTES_VALUE_WIDTH, True))
    return columns


def layout_columns(width: int, id_width: int) -> tuple[tuple[Column, ...], int]:
    """The columns that fit in `width` cells (the name takes what is left) and the sparkline
    width; optional columns go first, then sparklines shrink, then values drop."""
    for level in LEVELS:
        columns = _columns_for(level, id_width)
        fixed = sum(column.width for column in columns) + len(columns) - 1
        if fixed + NAME_MIN <= width or level is LEVELS[-1]:
            name_width = max(1, width - fixed)
            resolved = tuple(
                column._replace(width=name_width) if column.key == "name" else column
                for column in columns)
            return resolved, level.spark
    raise AssertionError("unreachable")  # pragma: no cover


#: What a cell is drawn with: the row's base style, its state's colour, or the sparkline colour.
BASE, STATE, SPARK = "base", "state", "spark"


def _history_tail(row: JobRow, key: str, count: int) -> list[float]:
    if row.history is None or not count:
        return []
    series = row.history.cpu if key == "cpu" else row.history.rss
    return series.tail(count)


def _name_cell(row: JobRow, width: int, calibration: bool) -> str:
    """The input's name; the calibration job's ends in a mark that survives a long name (it
    is the one whose figures set the limit, and it started before the others)."""
    name = printable(row.name)
    if calibration:
        for mark in CALIBRATION_MARKS:
            if width - cell_len(mark) >= NAME_MIN // 2:
                return fit(name, width - cell_len(mark), ellipsis=True) + mark
    return fit(name, width, ellipsis=True)


def _cell(row: JobRow, column: Column, elapsed: float | None, calibration: bool) -> str:
    """The text of one plain cell, exactly `column.width` cells wide."""
    key, width = column.key, column.width
    if key == "id":
        return fit(str(row.job_id), width, right=True)
    if key == "name":
        return _name_cell(row, width, calibration)
    if key == "state":
        return fit(row.state.value, width)
    if key == "node":
        where = row.node or ""
        if row.pid is not None:
            where = f"{where}:{row.pid}" if where else str(row.pid)
        return fit(printable(where) or "-", width, ellipsis=True)
    if key == "elapsed":
        text = "-" if elapsed is None else format_duration(elapsed, stopwatch=True)
    elif key == "progress":
        text = "-" if row.progress is None else f"{min(max(row.progress, 0), 1):.0%}"
    elif key == "speed":
        text = format_speed(row.speed, row.fps) if row.state is JobState.RUNNING else "-"
    elif key == "eta":
        eta = row.eta_seconds if row.state is JobState.RUNNING else None
        text = "-" if eta is None else format_duration(round(eta), stopwatch=True)
    else:  # output
        text = format_bytes(row.output_bytes, compact=True) if row.output_bytes else "-"
    return fit(text, width, right=True)


def row_cells(row: JobRow,
              columns: tuple[Column, ...],
              spark: int,
              elapsed: float | None,
              *,
              calibration: bool = False) -> list[tuple[str, str]]:
    """One job's line as (text, BASE|STATE|SPARK) pieces, separators included; every piece is
    plain text (names are never markup) and the pieces fill the columns' widths exactly.
    `calibration` marks the job calibration measured."""
    active = row.state.active
    pieces: list[tuple[str, str]] = []
    for position, column in enumerate(columns):
        if position:
            pieces.append((" ", BASE))
        key = column.key
        if key not in ("cpu", "rss"):
            pieces.append((_cell(row, column, elapsed,
                                 calibration), STATE if key == "state" else BASE))
            continue
        if key == "cpu":
            floor, value_width = 1.0, CPU_VALUE_WIDTH
            value = format_cores(row.cpu) if active else "-"
        else:
            floor, value_width = 0.0, BYTES_VALUE_WIDTH
            value = format_bytes(row.rss, compact=True) if active else "-"
        if spark:
            pieces.append((sparkline(_history_tail(row, key, spark), spark, floor=floor), SPARK))
            pieces.append((" ", BASE))
        pieces.append((fit(value, value_width, right=True), BASE))
    return pieces
