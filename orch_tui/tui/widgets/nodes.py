"""The nodes panel: one line per node of a cluster run (its state, cores, CPU, memory, jobs).

It reads the model's `NodeTally` (core/nodes.py), which counts each node's jobs as their states
change, so a redraw is O(nodes) whatever the number of jobs, and only happens when a node
changed (`version`). A local run has one node and never shows it (the run screen keeps the
panel hidden). Below CHARTS_MIN_HEIGHT rows (80x24) the panel is one borderless line: each
node's name, jobs and CPU, or its state when it is not up; it gives up the cores, the memory,
the CPU bar and the failure count's words, and cuts the line with "+N" when the nodes do not
fit.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from orch_tui.core.events import NodeState
from orch_tui.core.nodes import NodeView, node_cells
from orch_tui.core.textutil import printable
from orch_tui.tui.model import RunModel
from orch_tui.tui.widgets.gauges import draw_bar

#: Lines shown at most; beyond, the last one says how many more there are.
MAX_LINES = 8
#: A node name's cells at most (a longer one is cut with an ellipsis).
NAME_CELLS = 20
#: The CPU bar's cells, dropped first when the line does not fit.
BAR_CELLS = 10

STATE_CLASSES = {state: f"nodes-panel--{state.value}" for state in NodeState}


def _name(node: NodeView, cells: int) -> str:
    name = printable(node.name)
    return name if len(name) <= cells else name[:cells - 1] + "…"


class NodesPanel(Widget):
    """Every node of a cluster run, one line each; a summary line when compact."""

    DEFAULT_CSS = """
    NodesPanel {
        height: auto;
        & > .nodes-panel--up { color: $text-success; }
        & > .nodes-panel--quarantined { color: $text-warning; text-style: bold; }
        & > .nodes-panel--lost { color: $text-error; text-style: bold; }
        & > .nodes-panel--bar { color: $accent; }
    }
    """

    COMPONENT_CLASSES = {*STATE_CLASSES.values(), "nodes-panel--bar"}

    def __init__(
            self,
            model: RunModel,
            *,
            id: str | None = None,  # pylint: disable=redefined-builtin  # Textual's name
            classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.model = model
        self._version = -1

    @property
    def several(self) -> bool:
        """True when the run has more than one node (the panel is shown)."""
        return len(self.model.nodes) > 1

    def refresh_from_model(self) -> None:
        """Redraw when a node changed since the last look (its height with the node count)."""
        version = self.model.nodes.version
        if version != self._version:
            self._version = version
            self._set_title()
            self.refresh(layout=True)

    def _set_title(self) -> None:
        nodes = self.model.nodes.views()
        trouble = [
            f"{sum(1 for node in nodes if node.state is state)} {words}"
            for state, words in ((NodeState.QUARANTINED, "set aside"), (NodeState.LOST, "lost"))
            if any(node.state is state for node in nodes)
        ]
        self.border_title = " · ".join(["nodes", str(len(nodes)), *trouble])

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        """A line per node, at most MAX_LINES (one in the compact screen's single line)."""
        del container, viewport, width
        if self.has_class("-compact"):
            return 1
        return max(1, min(len(self.model.nodes), MAX_LINES))

    def render(self) -> Text:
        width = self.size.width or 80
        nodes = self.model.nodes.views()
        if self.has_class("-compact"):
            return self.summary(nodes, width)
        shown = nodes if len(nodes) <= MAX_LINES else nodes[:MAX_LINES - 1]
        lines = [self.line(node, width, nodes) for node in shown]
        if len(shown) < len(nodes):
            lines.append(Text(f"… and {len(nodes) - len(shown)} more nodes (o: their jobs)"))
        return Text("\n").join(lines)

    def line(self, node: NodeView, width: int, nodes: tuple[NodeView, ...] = ()) -> Text:
        """One node's line in `width` cells: name, state, cores, CPU (with a bar when it fits),
        memory used of total, jobs."""
        name_cells, state_cells = _widths(nodes or (node, ))
        sample = node.live_sample
        cores, cpu, memory, jobs = node_cells(node)
        head = Text(f"{_name(node, name_cells):<{name_cells}} ")
        head.append(f"{node.state_text:<{state_cells}}", self._state_style(node.state))
        tail = f" {cores:>4}  mem {memory:>11}  {jobs:>8}"
        bar_room = width - head.cell_len - len(tail) - len(" cpu  100%") - 1
        line = head + Text(" cpu ")
        if bar_room >= BAR_CELLS:  # every line or none, so that the columns align
            if sample is None:
                line.append(" " * (BAR_CELLS + 1))
            else:
                line.append(draw_bar(BAR_CELLS, sample.cpu_percent / 100), self._bar_style())
                line.append(" ")
        line.append(f"{cpu:>4}{tail}")
        line.truncate(width)
        return line

    def summary(self, nodes: tuple[NodeView, ...], width: int) -> Text:
        """The compact line: `nodes  node-a 2j 45% · node-b set aside · node-c lost`, cut
        with `+N` (the nodes left out) when they do not all fit."""
        text = Text("nodes ", style="bold")
        for index, node in enumerate(nodes):
            piece = Text(("" if index == 0 else " · ") + _name(node, NAME_CELLS) + " ")
            if node.state is NodeState.UP:
                sample = node.live_sample
                cpu = "-" if sample is None else f"{sample.cpu_percent:.0f}%"
                piece.append(f"{node.running}j {cpu}")
            else:
                words = "set aside" if node.state is NodeState.QUARANTINED else "lost"
                piece.append(words, self._state_style(node.state))
            more = f" +{len(nodes) - index}"
            if text.cell_len + piece.cell_len + (len(more) if index < len(nodes) - 1 else 0) \
                    > width:
                text.append(more, style="bold")
                break
            text.append_text(piece)
        text.truncate(width)
        return text

    def _state_style(self, state: NodeState) -> Style:
        return self.get_component_rich_style(STATE_CLASSES[state], partial=True)

    def _bar_style(self) -> Style:
        return self.get_component_rich_style("nodes-panel--bar", partial=True)


def _widths(nodes: tuple[NodeView, ...]) -> tuple[int, int]:
    """The name and state columns' widths: every line of the panel aligns on its widest."""
    return (min(NAME_CELLS, max(len(printable(node.name))
                                for node in nodes)), max(len(node.state_text) for node in nodes))
