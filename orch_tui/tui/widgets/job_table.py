"""The job table: a virtualized Line-API view over a RunModel.

A DataTable keeps a cell object per row and re-lays out on every update, which stalls at
100,000 jobs. This widget keeps nothing per row but the ids that pass the filter: it renders only
the lines on screen, caches each rendered line by the row's version, and repaints only the rows
the model marked dirty.
"""

from __future__ import annotations

import bisect
import time
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.markup import escape
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from orch_tui.core.events import JobState
from orch_tui.core.textutil import printable
from orch_tui.tui.model import FILTERS, LIVE_SORTS, SORTS, JobRow, RunModel, cycle, passes
from orch_tui.tui.widgets.columns import (BASE, SPARK, STATE, Column, column_label, fit,
                                          layout_columns, row_cells, spark_scales, sparkline)

#: The layout helpers stay importable from here (the tests and benchmarks use this module).
__all__ = ["JobTable", "layout_columns", "sparkline"]

STATE_CLASSES = {state: f"job-table--{state.value}" for state in JobState}
#: The narrow first column: a marked job's glyph, and the cells it takes with its separator.
MARK_GLYPH = "●"
MARK_WIDTH = 2
#: The header's sort mark, ascending and descending.
ARROWS = ("▲", "▼")
#: Which header column shows each sort's mark ("index" sorts by the plan's order: the # column).
SORT_COLUMNS = {"index": "id"}
#: A sort on a live column is redone at most this often (seconds): the screen's refresh tick.
RESORT_INTERVAL = 0.5


# The view's state (rows, filter, sort, marks, scroll) and an action per movement key:
# pylint: disable-next=too-many-instance-attributes,too-many-public-methods  # see above
class JobTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Every job as one line: id, input, state, where, elapsed, progress, speed, time left, CPU,
    RSS, output.

    Line 0 is a fixed header; line y > 0 shows visible[scroll_y + y - 1]. The screen drives it
    with `refresh_from_model()` from a timer; movement keys (arrows and vi's) move the cursor,
    other letters are left to the screen (x kills, space pauses...). The view keeps its filter,
    sort and marks, and says them in its `border_title`.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+u", "half_page(-1)", "Half page up", show=False),
        Binding("ctrl+d", "half_page(1)", "Half page down", show=False),
        Binding("home,g", "cursor_home", "First", show=False),
        Binding("end,G", "cursor_end", "Last", show=False),
    ]

    COMPONENT_CLASSES = {
        "job-table--header",
        "job-table--cursor",
        "job-table--spark",
        "job-table--marked",
        *STATE_CLASSES.values(),
    }

    DEFAULT_CSS = """
    JobTable {
        width: 1fr;
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        background: $surface;
        color: $foreground;
        & > .job-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .job-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .job-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .job-table--spark { color: $accent; }
        & > .job-table--marked { background: $accent 30%; text-style: bold; }
        /* The states in $text-* colours: $warning, $success... are fills, pale on a light
           theme's surface (paused was 1.4:1 in textual-light); the $text-* variants are made
           for reading on the theme's background (2.5:1 or more in every built-in theme, see
           tests/test_tui_themes.py). Queued and skipped stay dim on purpose; missing keeps
           its magenta. */
        & > .job-table--queued { color: $text-muted; text-style: dim; }
        & > .job-table--running { color: $text-primary; text-style: bold; }
        & > .job-table--paused { color: $text-warning; }
        & > .job-table--stopping { color: $text-error; text-style: italic; }
        & > .job-table--succeeded { color: $text-success; }
        & > .job-table--failed { color: $text-error; text-style: bold; }
        & > .job-table--killed { color: $text-error; }
        & > .job-table--cancelled { color: $text-muted; }
        & > .job-table--skipped { color: $text-success; text-style: dim; }
        & > .job-table--missing { color: magenta; }
    }
    """

    class CursorMoved(Message):
        """The selected job changed (None when the filter leaves no rows)."""

        def __init__(self, table: JobTable, job_id: int | None) -> None:
            super().__init__()
            self.table = table
            self.job_id = job_id

        @property
        def control(self) -> JobTable:
            """The table, so handlers can use @on(JobTable.CursorMoved, '#id')."""
            return self.table

    def __init__(
            self,
            model: RunModel,
            *,
            id: str | None = None,  # pylint: disable=redefined-builtin
            classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.model = model
        self._filter = "all"
        self._node: str | None = None  # the node filter (None: every node)
        self._sort = "index"
        self._reverse = False
        self._visible: list[int] = model.visible("all")
        self._visible_view: tuple[str, str, bool, str | None] = ("all", "index", False, None)
        self._visible_version = model.states_version
        self._sorted_at = 0.0
        self._moved: set[int] = set()  # rows changed since the last re-sort of a live column
        self._marked: set[int] = set()
        self._cursor = 0
        self._last_selected: int | None = self.selected_job_id
        self._last_second: int | None = None
        self._id_width = max(1, len(str(max(model.order, default=0))))
        self._layouts: dict[int, tuple[tuple[Column, ...], int]] = {}
        self._styles: dict[str, Style] = {}
        self._strips: LRUCache[tuple[int, int, int, int, int, bool, bool, int],
                               Strip] = LRUCache(256)
        self._header: tuple[int, int, Strip] | None = None
        # The sparkline columns' shared scales, what they were computed for, and their version
        # (part of each cached line's key: a new scale redraws every line).
        self._scales: dict[str, float] = {}
        self._scales_for: tuple[int, int, int, int, int] | None = None
        self._scales_version = 0
        self._ticks = 0
        self.virtual_size = Size(0, len(self._visible) + 1)
        self._set_title()

    # --- public API

    @property
    def filter(self) -> str:
        """The FILTERS key in force ("all", "running", "paused", "queued", "failed"...)."""
        return self._filter

    @filter.setter
    def filter(self, name: str) -> None:
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}; expected one of {', '.join(FILTERS)}")
        if name != self._filter:
            self._filter = name
            self._recompute_visible()

    def cycle_filter(self, step: int = 1) -> str:
        """Switch to the next filter (`step` -1: the previous one), wrapping; return it."""
        self.filter = cycle(list(FILTERS), self._filter, step)
        return self._filter

    @property
    def node(self) -> str | None:
        """The node whose jobs the table shows (None: every node's)."""
        return self._node

    @node.setter
    def node(self, name: str | None) -> None:
        if name != self._node:
            self._node = name
            self._recompute_visible()

    def cycle_node(self, step: int = 1) -> str | None:
        """Show the next node's jobs (`step` -1: the previous node's), every node's between
        the last and the first, composed with the state filter; return the node (None: all)."""
        names: list[str | None] = [None, *self.model.nodes.names()]
        place = names.index(self._node) if self._node in names else 0
        self.node = names[(place + step) % len(names)]
        return self._node

    @property
    def sort(self) -> tuple[str, bool]:
        """The SORTS key in force and whether the order is reversed."""
        return self._sort, self._reverse

    def set_sort(self, name: str, reverse: bool = False) -> None:
        """Sort by `name` (a key of SORTS), keeping the selected job under the cursor."""
        if name not in SORTS:
            raise ValueError(f"unknown sort {name!r}; expected one of {', '.join(SORTS)}")
        self._sort, self._reverse = name, reverse
        self._header = None
        self.refresh(Region(0, 0, self.size.width, 1))
        self._recompute_visible()

    def cycle_sort(self) -> str:
        """Sort by the next column (same direction); return its name."""
        self.set_sort(cycle(list(SORTS), self._sort, 1), self._reverse)
        return self._sort

    def reverse_sort(self) -> bool:
        """Reverse the order; return whether it is now reversed (descending)."""
        self.set_sort(self._sort, not self._reverse)
        return self._reverse

    @property
    def marked(self) -> frozenset[int]:
        """The marked jobs (whether the filter shows them or not)."""
        return frozenset(self._marked)

    def toggle_mark(self) -> bool:
        """Mark the selected job, or unmark it; return whether it is now marked."""
        job_id = self.selected_job_id
        if job_id is None:
            return False
        marked = job_id not in self._marked
        if marked:
            self._marked.add(job_id)
        else:
            self._marked.discard(job_id)
        self._refresh_index(self._cursor)
        self._set_title()
        return marked

    def mark_visible(self) -> int:
        """Mark every job the filter shows; return how many are marked now."""
        self._marked.update(self._visible)
        self._marks_changed()
        return len(self._marked)

    def clear_marks(self) -> int:
        """Unmark every job; return how many were marked."""
        count = len(self._marked)
        self._marked.clear()
        if count:
            self._marks_changed()
        return count

    def find(self, pattern: str, start: int, step: int = 1) -> bool:
        """Put the cursor on the first job whose name contains `pattern` (any case) from index
        `start` on (backwards with `step` -1), wrapping; return whether one does."""
        index = self.model.find(self._visible, pattern, start, step)
        if index is None:
            return False
        self._move_cursor(index)
        return True

    @property
    def visible_ids(self) -> list[int]:
        """Job ids passing the filter, in list order (do not mutate)."""
        return self._visible

    @property
    def cursor_row(self) -> int:
        """Index of the cursor within `visible_ids`."""
        return self._cursor

    @cursor_row.setter
    def cursor_row(self, index: int) -> None:
        self._move_cursor(index)

    @property
    def selected_job_id(self) -> int | None:
        """The job under the cursor, None when no job passes the filter."""
        if not self._visible:
            return None
        return self._visible[min(self._cursor, len(self._visible) - 1)]

    def select_job(self, job_id: int) -> bool:
        """Put the cursor on `job_id` if it passes the filter; return whether it does."""
        try:
            index = self._visible.index(job_id)
        except ValueError:
            return False
        self._move_cursor(index)
        return True

    def refresh_from_model(self) -> None:
        """Repaint what changed since the last call: everything when the visible list changed,
        else only on-screen rows the model marked dirty (and running rows when the elapsed
        second ticked). Cheap when nothing changed, whatever the number of jobs."""
        dirty = self.model.take_dirty()
        self._ticks += 1
        if self._update_scales():
            self.refresh()
        second = int(self.model.clock())
        ticked = second != self._last_second
        self._last_second = second
        if self._needs_recompute():
            if self._recompute_visible():
                return
        elif self._needs_resort(dirty, ticked):
            if self._resort():
                return
        if not dirty and not ticked:
            return
        rows = self.model.rows
        first, count = self._page()
        for index in range(first, min(first + count, len(self._visible))):
            job_id = self._visible[index]
            row = rows[job_id]
            if job_id in dirty or (ticked and row.started is not None and row.ended is None):
                self._refresh_index(index)

    # --- Line API

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:  # a full repaint starts here: a scroll brings new rows into the scale
            self._update_scales()
            return self._header_strip(width)
        index = self.scroll_offset.y + y - 1
        if not 0 <= index < len(self._visible):
            return Strip.blank(width, self.rich_style)
        row = self.model.rows[self._visible[index]]
        elapsed = row.elapsed(self.model.clock())
        cursor = 0 if index != self._cursor else (2 if self.has_focus else 1)
        calibration = row.job_id == self.model.calibration_job
        marked = row.job_id in self._marked
        key = (row.job_id, row.version, width, cursor, -1 if elapsed is None else int(elapsed),
               calibration, marked, self._scales_version)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(row, width, cursor, elapsed, (calibration, marked))
            self._strips[key] = strip
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._clear_render_caches()

    def _clear_render_caches(self) -> None:
        self._styles.clear()
        self._strips.clear()
        self._header = None

    def on_resize(self) -> None:
        """Keep about two screens of rendered lines and the cursor in view."""
        self._strips.maxsize = max(64, 2 * self.size.height)
        self._scroll_cursor_into_view()

    def on_click(self, event: events.Click) -> None:
        """A click on a data line selects it (the mouse is optional)."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = self.scroll_offset.y + offset.y - 1
        if index < len(self._visible):
            self._move_cursor(index)

    # --- actions

    def action_cursor_up(self) -> None:
        """Move the cursor one job up."""
        self._move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        """Move the cursor one job down."""
        self._move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        """Move the cursor one screen up."""
        self._move_cursor(self._cursor - self._page()[1])

    def action_page_down(self) -> None:
        """Move the cursor one screen down."""
        self._move_cursor(self._cursor + self._page()[1])

    def action_cursor_home(self) -> None:
        """Move the cursor to the first job."""
        self._move_cursor(0)

    def action_cursor_end(self) -> None:
        """Move the cursor to the last job."""
        self._move_cursor(len(self._visible) - 1)

    def action_half_page(self, direction: int) -> None:
        """Move the cursor half a screen down (1) or up (-1), as vi's ctrl+d / ctrl+u."""
        self._move_cursor(self._cursor + direction * max(1, self._page()[1] // 2))

    # --- internals

    def _page(self) -> tuple[int, int]:
        """(first visible index on screen, number of data lines on screen)."""
        height = self.scrollable_content_region.height - 1
        return self.scroll_offset.y, max(1, height)

    def _needs_recompute(self) -> bool:
        if self._visible_view != (self._filter, self._sort, self._reverse, self._node):
            return True
        if FILTERS[self._filter] is None and self._sort != "state" and self._node is None:
            return False  # "all" in the plan's (or a sample's) order never changes with states
        return self._visible_version != self.model.states_version

    def _needs_resort(self, dirty: set[int], ticked: bool) -> bool:
        """Sorted on a live column, the rows that changed (and, by elapsed time, the running
        ones when the second ticked) are put back in place at most once per RESORT_INTERVAL;
        sorted by index or state nothing moves but with a state change (a recompute)."""
        if self._sort not in LIVE_SORTS:
            return False
        self._moved |= dirty  # kept until the re-sort: the dirty set is taken only once
        if ticked and self._sort == "elapsed":
            rows = self.model.rows
            self._moved.update(job_id for job_id in self._visible
                               if rows[job_id].started is not None and rows[job_id].ended is None)
        return bool(self._moved) and time.monotonic() - self._sorted_at >= RESORT_INTERVAL

    def _resort(self) -> bool:
        """Put the moved rows back in place: one pass to take them out, then a bisect each,
        O(n + k log n) for k changed rows instead of a sort of all n (at 100,000 jobs a few
        ms against 50-200 ms). Return whether the order changed (and was repainted)."""
        moved, self._moved = self._moved, set()
        self._sorted_at = time.monotonic()
        key = self.model.sort_key(self._sort, self._reverse)
        states, rows, node = FILTERS[self._filter], self.model.rows, self._node
        visible = [job_id for job_id in self._visible if job_id not in moved]
        for job_id in moved:
            if passes(rows[job_id], states, node):
                bisect.insort(visible, job_id, key=key)
        return self._set_visible(visible)

    def _recompute_visible(self) -> bool:
        """Refilter, keep the selected job under the cursor if it still passes; return whether
        the list changed (and so everything was repainted)."""
        visible = self.model.visible(self._filter,
                                     self._sort,
                                     reverse=self._reverse,
                                     node=self._node)
        self._visible_version = self.model.states_version
        self._visible_view = (self._filter, self._sort, self._reverse, self._node)
        self._sorted_at, self._moved = time.monotonic(), set()
        return self._set_visible(visible)

    def _set_visible(self, visible: list[int]) -> bool:
        """Show `visible`, keeping the selected job under the cursor if it is in it; return
        whether the list changed (and so everything was repainted)."""
        selected = self.selected_job_id
        if visible == self._visible:
            self._set_title()
            return False
        self._visible = visible
        index = self._cursor
        if selected is not None:
            try:
                index = visible.index(selected)
            except ValueError:
                pass
        self._cursor = max(0, min(index, len(visible) - 1))
        self.virtual_size = Size(0, len(visible) + 1)
        self.refresh()
        self._scroll_cursor_into_view()
        self._post_if_moved()
        self._set_title()
        return True

    def _marks_changed(self) -> None:
        self.refresh()
        self._set_title()

    def _set_title(self) -> None:
        """The view in the border's title, short enough for 80 columns:
        "jobs · failed 3 of 120 · sort elapsed ▼ · 2 marked", with a node filter "jobs ·
        failed on node-b 2 of 120"."""
        total = len(self.model.rows)
        # A node's name is the cluster's: escaped, a str title being Textual markup.
        where = "" if self._node is None else f" on {escape(printable(self._node))}"
        if self._filter == "all" and self._node is None:
            parts = [f"jobs · all {total}"]
        else:
            parts = [f"jobs · {self._filter}{where} {len(self._visible)} of {total}"]
        if self._sort != "index" or self._reverse:
            parts.append(f"sort {self._sort} {ARROWS[self._reverse]}")
        if self._marked:
            parts.append(f"{len(self._marked)} marked")
        self.border_title = " · ".join(parts)

    def _move_cursor(self, index: int) -> None:
        index = max(0, min(index, len(self._visible) - 1))
        if index == self._cursor:
            return
        old, self._cursor = self._cursor, index
        self._refresh_index(old)
        self._refresh_index(index)
        self._scroll_cursor_into_view()
        self._post_if_moved()

    def _post_if_moved(self) -> None:
        selected = self.selected_job_id
        if selected != self._last_selected:
            self._last_selected = selected
            self.post_message(self.CursorMoved(self, selected))

    def _scroll_cursor_into_view(self) -> None:
        if not self.is_mounted or not self.size:
            return
        first, count = self._page()
        if self._cursor < first:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= first + count:
            self.scroll_to(y=self._cursor - count + 1, animate=False, force=True)

    def _refresh_index(self, index: int) -> None:
        """Repaint the line of visible[index] if it is on screen."""
        first, count = self._page()
        if first <= index < first + count:
            self.refresh(Region(0, index - first + 1, self.size.width, 1))

    def _columns_at(self, width: int) -> tuple[tuple[Column, ...], int]:
        """The columns after the mark column."""
        layout = self._layouts.get(width)
        if layout is None:
            layout = self._layouts[width] = layout_columns(width - MARK_WIDTH, self._id_width)
        return layout

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            else:
                # The full component style: alpha backgrounds blended over the table's own.
                style = self.get_component_rich_style(name)
                if name == "job-table--cursor" and self.app.no_color:
                    style += Style(reverse=True)  # a colourless terminal still shows the cursor
                elif name == STATE_CLASSES[JobState.RUNNING] and self.app.no_color:
                    # In shades of grey $primary is a dark grey on the dark surface: the
                    # table's own foreground, bold, keeps the state that matters most legible.
                    style = self.rich_style + Style(bold=True)
            self._styles[name] = style
        return style

    def _update_scales(self) -> bool:
        """Recompute the sparklines' shared scales over the active rows and the rows on screen
        (at most the limit plus a page: cheap at any number of jobs) once per tick, scroll
        position, width or list; return whether they changed."""
        first, count = self._page()
        width = self.scrollable_content_region.width
        key = (self._ticks, first, count, width, id(self._visible))
        if key == self._scales_for:
            return False
        self._scales_for = key
        _columns, spark = self._columns_at(width)
        rows = self.model.rows
        shown = [rows[job_id] for job_id in self._visible[first:first + count]]
        scales = spark_scales([*(rows[job_id] for job_id in self.model.active), *shown], spark)
        if scales == self._scales:
            return False
        self._scales = scales
        self._scales_version += 1
        return True

    def _header_strip(self, width: int) -> Strip:
        if self._header is not None and self._header[:2] == (width, self._scales_version):
            return self._header[2]
        columns, _spark = self._columns_at(width)
        style = self._style("job-table--header")
        text = " ".join(
            fit(self._label(column), column.width, right=column.right) for column in columns)
        strip = Strip([Segment(fit(" " * MARK_WIDTH + text, width), style)], width)
        self._header = (width, self._scales_version, strip)
        return strip

    def _label(self, column: Column) -> str:
        """A header label, with the sort's arrow on the sorted column (none for the plan's
        order, the default); the label is cut to keep the arrow ("pro▲", "▲" for # of a short
        run)."""
        if (self._sort, self._reverse) == ("index", False) or column.key != SORT_COLUMNS.get(
                self._sort, self._sort):
            return column_label(column, self._scales)  # a sparkline column's shared scale
        return column.label[:max(0, column.width - 1)] + ARROWS[self._reverse]

    # pylint: disable-next=too-many-arguments,too-many-positional-arguments  # one line's inputs
    def _render_row(self, row: JobRow, width: int, cursor: int, elapsed: float | None,
                    flags: tuple[bool, bool]) -> Strip:
        """One job's line; every cell is plain text in a Segment (names are never markup).
        `flags`: whether it is the calibration job, and whether it is marked."""
        calibration, marked = flags
        columns, spark = self._columns_at(width)
        base = self._style("job-table--cursor" if cursor else (
            "job-table--marked" if marked else "base"))
        styles = {
            BASE: base,
            STATE: base if cursor else self._style(STATE_CLASSES[row.state]),
            SPARK: base if cursor else self._style("job-table--spark"),
        }
        if marked and not cursor:  # the marked background behind the state's colours
            for kind in (STATE, SPARK):
                styles[kind] = base + Style(color=styles[kind].color)
        segments = [Segment(fit(MARK_GLYPH if marked else "", MARK_WIDTH), base)]
        segments.extend(
            Segment(text, styles[kind]) for text, kind in row_cells(
                row, columns, spark, elapsed, calibration=calibration, scales=self._scales))
        return Strip(segments).adjust_cell_length(width, base)
