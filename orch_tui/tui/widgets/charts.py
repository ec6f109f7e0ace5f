"""History charts: a series as columns of block characters, several rows tall, with axes.

`chart_lines` is a pure function (exact strings, tested without a screen): the series is
resampled to the plot's width (squeezed by aggregating neighbours the way the series was
downsampled, or stretched so that it always spans the whole time axis), each column is a bar of
`▁▂▃▄▅▆▇█` eighths, the y axis carries its top and bottom labels (units included) and the x axis
its left and right times; a reserve line is drawn dashed (`┄`) in the empty cells of the row it
falls in, so bars stay readable where they cross it.

The widgets draw it: `ResourceChart` (the run screen's resources panel: the gauge line on top,
the run's history under it, down to the gauge line alone when the panel is one row tall) and
`SeriesChart` (the detail screen's CPU and RSS of one job).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from orch_tui.core import events as ev
from orch_tui.core.textutil import format_bytes, format_duration
from orch_tui.tui.history import Aggregate
from orch_tui.tui.model import RunModel
from orch_tui.tui.widgets.gauges import ResourceGauge

EIGHTHS = " ▁▂▃▄▅▆▇█"
BARS = frozenset(EIGHTHS[1:])
RESERVE_CELL = "┄"
#: The y axis: a tick on the rows that carry a label, a line elsewhere.
TICK, AXIS = "┤", "│"

_AGGREGATE: dict[Aggregate, Callable[[Sequence[float]], float]] = {
    Aggregate.MEAN: lambda values: sum(values) / len(values),
    Aggregate.MAX: max,
    Aggregate.MIN: min,
}


def resample(values: Sequence[float], width: int, aggregate: Aggregate) -> list[float]:
    """`values` as exactly `width` points over the same span: neighbours aggregated (mean, max
    or min: as the series keeps them, so a peak or a dip survives) when there are more values
    than cells, each value repeated over its share of the cells when there are fewer."""
    count = len(values)
    if not count or width <= 0:
        return []
    if count <= width:
        return [values[cell * count // width] for cell in range(width)]
    pick = _AGGREGATE[aggregate]
    return [
        pick(values[cell * count // width:(cell + 1) * count // width]) for cell in range(width)
    ]


@dataclass(frozen=True)
class Axes:
    """What a chart's axes say: the value at the top of the plot (its bottom is 0), the y
    labels for the top and the bottom, and the times at the left and right ends."""

    top: float
    top_label: str
    bottom_label: str
    left: str
    right: str


def plot_rows(points: Sequence[float],
              height: int,
              top: float,
              reserve: float | None = None) -> list[str]:
    """Columns of eighths, `height` rows (top row first), one column per point, scaled so that
    `top` fills the column; values above `top` are drawn full, below 0 empty. The reserve line
    goes in the row where `reserve` falls, in the cells the bars leave empty."""
    if height <= 0:
        return []
    steps = height * 8
    levels = [0 if top <= 0 else min(steps, max(0, round(value / top * steps))) for value in points]
    line = None
    if top > 0 and reserve is not None and reserve >= 0:
        line = min(height - 1, int(reserve / top * height)) if reserve <= top else None
    rows = []
    for row in range(height):
        base = (height - 1 - row) * 8  # the eighths below this row
        cells = [EIGHTHS[min(8, max(0, level - base))] for level in levels]
        if line == height - 1 - row:
            cells = [RESERVE_CELL if cell == " " else cell for cell in cells]
        rows.append("".join(cells))
    return rows


# pylint: disable-next=too-many-arguments  # the series, the box and what the axes say
def chart_lines(values: Sequence[float],
                width: int,
                height: int,
                axes: Axes,
                *,
                aggregate: Aggregate = Aggregate.MEAN,
                reserve: float | None = None) -> list[str]:
    """The chart in `width` x `height` cells: `height - 1` plot rows with the y labels and the
    axis at their left, then the x axis's times. Every line is exactly `width` cells."""
    if height < 2 or width < 4:
        return [" " * max(0, width)] * max(0, height)
    gutter = max(len(axes.top_label), len(axes.bottom_label))
    plot_width = max(1, width - gutter - 1)
    rows = plot_rows(resample(values, plot_width, aggregate), height - 1, axes.top, reserve)
    lines = []
    for index, row in enumerate(rows):
        if index == 0:
            label, axis = axes.top_label, TICK
        elif index == len(rows) - 1:
            label, axis = axes.bottom_label, TICK
        else:
            label, axis = "", AXIS
        lines.append(label.rjust(gutter) + axis + row.ljust(plot_width))
    lines.append(" " * (gutter + 1) + _time_axis(axes.left, axes.right, plot_width))
    return [line[:width].ljust(width) for line in lines]


def _time_axis(left: str, right: str, width: int) -> str:
    """The x axis under the plot: `left` at its start, `right` at its end; when both do not
    fit, the right one alone (a cut time would read as another time)."""
    if len(left) + 1 + len(right) > width:
        left = ""
    return (left + right.rjust(width - len(left)))[:width]


def ago(seconds: float) -> str:
    """The left end of a chart of the run: how long before now its first sample was."""
    return f"-{format_duration(max(0.0, seconds), stopwatch=True)}"


def _kind(char: str) -> int:
    return 2 if char == RESERVE_CELL else 1 if char in BARS else 0


def _styled(lines: Sequence[str], bar_style: Style, reserve_style: Style) -> Text:
    """Plain chart lines as one Text: the reserve line in its own style, the bars in theirs
    (labels and axes unstyled); one span per run of cells of one kind."""
    styles = (Style(), bar_style, reserve_style)
    text = Text()
    for number, line in enumerate(lines):
        if number:
            text.append("\n")
        for kind, run in groupby(line, key=_kind):
            text.append("".join(run), styles[kind])
    return text


class ResourceChart(ResourceGauge):
    """A resource gauge over its history: the gauge line, then (given the rows) a chart of the
    run so far with the reserve line of the scaling rule.

    Each charts what is in use, as its gauge does, so that the reserve line lies above the bars
    until the use crosses it. CPU: percent of all cores (0-100%), the line at the rule's CPU
    fraction (80% by default) once a limit was computed. MEM: memory in use, total less
    available (0 to the total), the line where only the memory reserve is left. DISK: the
    disk's size less the headroom (free space less the outputs still to be written), the line
    where only the disk reserve is left. The x axis runs from the first sample the TUI saw to
    now. Its one height rule: rows beyond the gauge line go to the chart, which needs three
    (two plot rows and the time axis); with fewer, only the gauge line is drawn.
    """

    DEFAULT_CSS = """
    ResourceChart {
        height: 1;
        & > .resource-chart--bar { color: $accent; }
        & > .resource-chart--reserve { color: $warning; }
    }
    """

    COMPONENT_CLASSES = {"resource-chart--bar", "resource-chart--reserve"}

    def chart(self, width: int, height: int) -> list[str]:
        """The history part: `height` lines of `width` cells (plain, for tests)."""
        sample = self.model.system
        history = self.model.system_history
        if sample is None or history.first is None or history.last is None:
            return []
        values, axes, reserve = resource_series(self.model, self.kind, sample)
        axes = Axes(axes.top, axes.top_label, axes.bottom_label, ago(history.last - history.first),
                    "now")
        return chart_lines(values,
                           width,
                           height,
                           axes,
                           aggregate=Aggregate.MEAN if self.kind == "cpu" else Aggregate.MAX,
                           reserve=reserve)

    def render(self) -> Text:
        width = self.size.width or 80
        line = self.text(width)
        line.truncate(max(1, width))
        rows = self.size.height - 1
        if rows < 3:
            return line
        lines = self.chart(width, rows)
        if not lines:
            return line
        bars = self.get_component_rich_style("resource-chart--bar", partial=True)
        reserve = self.get_component_rich_style("resource-chart--reserve", partial=True)
        return Text.assemble(line, "\n", _styled(lines, bars, reserve))


def resource_series(model: RunModel, kind: str,
                    sample: ev.SystemSample) -> tuple[list[float], Axes, float | None]:
    """One resource's chart as the gauge above it draws it: what is in use (CPU percent;
    memory: total less available; disk: its size less the headroom), the axes from 0 to the
    whole, and the line where the scaling rule's reserve begins (None: no limit computed yet,
    for CPU). Memory and disk points are the history's minima turned into peaks of use."""
    history = model.system_history
    if kind == "cpu":
        decision = model.decision
        reserve = decision.cpu.fraction * 100 if decision is not None else None
        return history.cpu.values(), Axes(100.0, "100%", "0%", "", ""), reserve
    if kind == "memory":
        total, reserve = float(sample.total_memory), float(sample.memory_reserve)
        series = history.memory
    else:
        total, reserve = float(sample.disk_total), float(sample.disk_reserve)
        series = history.disk
    used = [total - value for value in series.values()]
    return used, Axes(total, format_bytes(total, compact=True), "0", "", ""), total - reserve


class SeriesChart(Widget):
    """One job's figure over its whole life (the detail screen's CPU or RSS chart): a title
    line, then the chart with its y scale (0 to the peak, units on the labels) and its x axis
    (elapsed time since the job started). Set `data` (points, the aggregate, the unit's
    formatter) and `span` (seconds from the start to the first and the last sample)."""

    DEFAULT_CSS = """
    SeriesChart {
        height: 8;
        & > .series-chart--bar { color: $accent; }
        & > .series-chart--title { text-style: bold; }
    }
    """

    COMPONENT_CLASSES = {"series-chart--bar", "series-chart--title"}

    def __init__(
            self,
            title: str,
            aggregate: Aggregate,
            unit: Callable[[float], str],
            *,
            id: str | None = None,  # pylint: disable=redefined-builtin  # Textual's name
            classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.aggregate = aggregate
        self.unit = unit
        self.data: list[float] = []
        self.span: tuple[float, float] | None = None
        self.ended = False  # the job ended: no sample will come any more

    def set_data(self,
                 data: list[float],
                 span: tuple[float, float] | None,
                 *,
                 ended: bool = False) -> None:
        """New points and their time span, and whether the job ended; repaint only if any of
        them changed."""
        if data != self.data or span != self.span or ended != self.ended:
            self.data, self.span, self.ended = data, span, ended
            self.refresh()

    def chart(self, width: int, height: int) -> list[str]:
        """The chart part: `height` lines of `width` cells (plain, for tests)."""
        if not self.data:
            return []
        peak = max(self.data)
        start, end = self.span if self.span is not None else (0.0, 0.0)
        axes = Axes(peak, self.unit(peak), self.unit(0.0),
                    format_duration(max(0.0, start), stopwatch=True),
                    format_duration(max(0.0, end), stopwatch=True))
        return chart_lines(self.data, width, height, axes, aggregate=self.aggregate)

    def render(self) -> Text:
        width = self.size.width or 40
        title_style = self.get_component_rich_style("series-chart--title", partial=True)
        title = Text(self.title, style=title_style)
        if self.data:
            title.append(f"  peak {self.unit(max(self.data))}")
        else:  # a job that ended before the first sweep was never sampled, and never will be
            title.append("  not sampled: it ended first" if self.ended else "  no sample yet")
        title.truncate(max(1, width))
        lines = self.chart(width, self.size.height - 1)
        if not lines:
            return title
        bars = self.get_component_rich_style("series-chart--bar", partial=True)
        return Text.assemble(title, "\n", _styled(lines, bars, Style()))


def cores(value: float) -> str:
    """A CPU axis label: `1.85c`."""
    return f"{value:.2f}c" if value < 10 else f"{value:.1f}c"


def compact_bytes(value: float) -> str:
    """An RSS axis label: `252M`."""
    return format_bytes(value, compact=True)
