"""The job table's columns: which fit a width, and each job's cells as plain text.

No Textual here (rich's cell measures only): the layout and the cell text are pure functions of
the width and the row, tested without a screen; job_table.py turns them into styled strips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from rich.cells import cell_len, set_cell_size

from orch_tui.core.events import JobState
from orch_tui.core.textutil import format_bytes, format_duration, printable
from orch_tui.tui.model import JobRow

SPARK_CHARS = "▁▂▃▄▅▆▇█"
#: A progress bar's partial cell, in eighths (index 0: nothing).
BAR_EIGHTHS = " ▏▎▍▌▋▊▉"
ELLIPSIS = "…"

#: The name column never shrinks below this before optional columns are dropped.
NAME_MIN = 20
#: On a narrow screen a progress bar never takes the cells a name needs for its calibration
#: mark in full (NAME_MIN // 2 of name, then " (calibration)"): at 80 columns the output
#: column and the name come first, and the progress is its percentage.
NAME_BAR_MIN = 24
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
#: Where the screen has room to spare (120 columns and up), the sparklines take it.
WIDER_SPARK, WIDEST_SPARK = 16, 24
#: The sparkline columns a scale is kept for, and the floor of each: a CPU scale never goes
#: under one core, so a few idle jobs do not draw full bars.
SCALE_FLOORS = {"cpu": 1.0, "rss": 0.0}


def sparkline(values: list[float],
              width: int,
              *,
              floor: float = 0.0,
              top: float | None = None) -> str:
    """The last `width` values as block characters, scaled to `top` (the column's shared
    scale: values above it are drawn full) or else to max(values, floor); short histories are
    padded on the left so every row's sparkline ends in the same column."""
    if width <= 0:
        return ""
    points = values[-width:]
    if top is None:
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


def progress_bar(fraction: float, cells: int) -> str:
    """`fraction` (0-1) as `cells` cells of full blocks and one partial eighth, padded with
    spaces: 0.4 in 5 cells is '██   '."""
    if cells <= 0:
        return ""
    eighths = round(min(max(fraction, 0.0), 1.0) * cells * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BAR_EIGHTHS[part] if part else "")).ljust(cells)


def progress_cell(progress: float | None, bar_cells: int, width: int) -> str:
    """The progress column: a bar of `bar_cells` cells and the percentage in four, '-' without
    a figure; exactly `width` cells."""
    if progress is None:
        return fit("-", width, right=True)
    fraction = min(max(progress, 0.0), 1.0)
    percent = f"{fraction:.0%}".rjust(PROGRESS_WIDTH)
    if not bar_cells:
        return fit(percent, width, right=True)
    return fit(progress_bar(fraction, bar_cells) + " " + percent, width)


def scale_top(key: str, peak: float) -> float:
    """The top of a sparkline column's scale: `peak` rounded up to what its label shows (so
    the label is a true bound): tenths of a core (whole cores from 10), three figures of bytes."""
    if key == "cpu":
        per = 10 if peak < 10 else 1  # steps per core
        return math.ceil(round(peak * per, 6)) / per
    unit = 1.0
    while peak / unit >= 1024 and unit < 1024**4:
        unit *= 1024
    scaled = peak / unit
    per = 1 if unit == 1.0 or scaled >= 100 else 10 if scaled >= 10 else 100  # steps per unit
    return math.ceil(round(scaled * per, 6)) / per * unit


def scale_label(key: str, top: float) -> str:
    """A scale's top as a header shows it: '≤1.9c', '≤12c', '≤47.7M'."""
    if key == "cpu":
        return f"≤{top:.1f}c" if top < 10 else f"≤{top:.0f}c"
    return "≤" + format_bytes(top, compact=True)


def column_label(column: Column, scales: dict[str, float]) -> str:
    """A column's header: the sparkline columns say their scale when they have one and there
    is room ('cpu ≤1.9c', else 'cpu')."""
    top = scales.get(column.key)
    if top is None:
        return column.label
    scale = scale_label(column.key, top)
    label = f"{column.label} {scale}"
    return label if cell_len(label) <= column.width else column.label


def spark_scales(rows: Iterable[JobRow], spark: int) -> dict[str, float]:
    """The shared scale of each sparkline column: the peak over the last `spark` points of
    `rows` (the screen passes the active rows and the rows on screen: a few dozen, whatever
    the number of jobs), never under the column's floor. Empty without sparklines."""
    if not spark:
        return {}
    peaks = dict(SCALE_FLOORS)
    for row in rows:
        history = row.history
        if history is None:
            continue
        peaks["cpu"] = max(peaks["cpu"], max(history.cpu.tail(spark), default=0.0))
        peaks["rss"] = max(peaks["rss"], max(history.rss.tail(spark), default=0.0))
    return {key: scale_top(key, top) for key, top in peaks.items() if top > 0}


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
    bar_cells: int = 0  # cells of the progress bar (0: the percentage alone)
    name_min: int = NAME_MIN  # the wide levels want a wide name too, not only wide sparklines


def _roomy(spark: int, *, bar_cells: int, name_min: int) -> _Level:
    """A level for a wide screen: every column, wider sparklines and bar, and a wider name."""
    return _Level(node=True,
                  spark=spark,
                  output=True,
                  speed=True,
                  eta=True,
                  bar_cells=bar_cells,
                  name_min=name_min)


#: Tried in order; the first whose fixed columns leave `name_min` cells for the name wins.
LEVELS = (
    _roomy(WIDEST_SPARK, bar_cells=10, name_min=40),
    _roomy(WIDER_SPARK, bar_cells=8, name_min=30),
    # 18, not NAME_MIN: at 120 columns (inside the panel's border, the scrollbar and the
    # marks) the node column still fits beside names of 18 cells.
    _Level(node=True, spark=WIDE_SPARK, output=True, speed=True, eta=True, bar_cells=3,
           name_min=18),
    _Level(node=False, spark=WIDE_SPARK, output=True, speed=True, eta=True, bar_cells=5),
    _Level(node=False, spark=WIDE_SPARK, output=True, eta=True, bar_cells=5),
    _Level(node=False, spark=WIDE_SPARK, output=True, bar_cells=5),
    _Level(node=False, spark=NARROW_SPARK, output=True, bar_cells=5, name_min=NAME_BAR_MIN),
    _Level(node=False, spark=NARROW_SPARK, output=True, bar_cells=3, name_min=NAME_BAR_MIN),
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
        cells = level.bar_cells + 1 if level.bar_cells else 0
        columns.append(Column("progress", "prog", cells + PROGRESS_WIDTH, True))
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
    width; wide screens get wider sparklines and progress bars, then optional columns go, then
    sparklines and bars shrink, then values drop."""
    for level in LEVELS:
        columns = _columns_for(level, id_width)
        fixed = sum(column.width for column in columns) + len(columns) - 1
        if fixed + level.name_min <= width or level is LEVELS[-1]:
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
    elif key == "speed":
        text = format_speed(row.speed, row.fps) if row.state is JobState.RUNNING else "-"
    elif key == "eta":
        eta = row.eta_seconds if row.state is JobState.RUNNING else None
        text = "-" if eta is None else format_duration(round(eta), stopwatch=True)
    else:  # output
        text = format_bytes(row.output_bytes, compact=True) if row.output_bytes else "-"
    return fit(text, width, right=True)


def _progress_pieces(row: JobRow, column: Column) -> list[tuple[str, str]]:
    """The progress cell: its bar drawn as a sparkline is, the percentage as plain text."""
    cell = progress_cell(row.progress, max(0, column.width - PROGRESS_WIDTH - 1), column.width)
    if column.width <= PROGRESS_WIDTH or row.progress is None:
        return [(cell, BASE)]
    cut = column.width - PROGRESS_WIDTH
    return [(cell[:cut], SPARK), (cell[cut:], BASE)]


def _figure_pieces(row: JobRow, key: str, spark: int, top: float | None) -> list[tuple[str, str]]:
    """A CPU or RSS cell: the sparkline (on the column's shared scale `top`), then the value."""
    active = row.state.active
    if key == "cpu":
        floor, value_width = SCALE_FLOORS["cpu"], CPU_VALUE_WIDTH
        value = format_cores(row.cpu) if active else "-"
    else:
        floor, value_width = SCALE_FLOORS["rss"], BYTES_VALUE_WIDTH
        value = format_bytes(row.rss, compact=True) if active else "-"
    pieces = []
    if spark:
        tail = _history_tail(row, key, spark)
        pieces += [(sparkline(tail, spark, floor=floor, top=top), SPARK), (" ", BASE)]
    pieces.append((fit(value, value_width, right=True), BASE))
    return pieces


# pylint: disable-next=too-many-arguments  # one line's inputs, the last two by keyword
def row_cells(row: JobRow,
              columns: tuple[Column, ...],
              spark: int,
              elapsed: float | None,
              *,
              calibration: bool = False,
              scales: dict[str, float] | None = None) -> list[tuple[str, str]]:
    """One job's line as (text, BASE|STATE|SPARK) pieces, separators included; every piece is
    plain text (names are never markup) and the pieces fill the columns' widths exactly.
    `calibration` marks the job calibration measured; `scales` are the sparkline columns'
    shared tops (`spark_scales`), without which each row is scaled to its own peak."""
    scales = scales or {}
    pieces: list[tuple[str, str]] = []
    for position, column in enumerate(columns):
        if position:
            pieces.append((" ", BASE))
        key = column.key
        if key == "progress":
            pieces += _progress_pieces(row, column)
        elif key in ("cpu", "rss"):
            pieces += _figure_pieces(row, key, spark, scales.get(key))
        else:
            pieces.append((_cell(row, column, elapsed,
                                 calibration), STATE if key == "state" else BASE))
    return pieces
