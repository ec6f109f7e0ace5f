"""One-line gauges over a RunModel: overall progress and the machine's CPU, memory and disk.

They read only the model (time comes from `model.clock`), so a snapshot test is deterministic;
the screen calls `refresh_from_model()` from the same timer that drives the job table.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from orch_tui.core import events as ev
from orch_tui.core.eta import Eta
from orch_tui.core.events import PressureLevel
from orch_tui.core.tally import Counts
from orch_tui.core.textutil import format_bytes
from orch_tui.tui.model import RunModel

FULL, PROJECTED, EMPTY, RESERVE = "█", "▒", "░", "|"
#: Below this many cells a bar says nothing; labels shorten first.
MIN_BAR = 8


def draw_bar(width: int, filled: float, projected: float = 0.0, marker: float | None = None) -> str:
    """`width` cells: `filled` (a fraction) in full blocks, then `projected` in a lighter shade,
    the rest empty; `marker` (a fraction) puts a '|' where the reserve line is."""
    if width <= 0:
        return ""
    full = round(min(max(filled, 0.0), 1.0) * width)
    extra = round(min(max(filled + projected, 0.0), 1.0) * width) - full
    cells = [FULL] * full + [PROJECTED] * max(0, extra)
    cells += [EMPTY] * (width - len(cells))
    if marker is not None:
        cells[min(width - 1, max(0, int(min(max(marker, 0.0), 1.0) * width)))] = RESERVE
    return "".join(cells)


def fit_variants(width: int,
                 label: str,
                 variants: list[str],
                 *,
                 may_drop: bool = True) -> tuple[str, int]:
    """The longest detail text that leaves MIN_BAR cells for the bar, and the bar width; when
    none does, the shortest if it fits whole beside a bar, else none (`may_drop`): a number
    cut short would read as another number (`CPU ███ 10` for 100%). Without `may_drop`, the
    shortest whatever the width (the caller cuts it)."""
    for detail in variants:
        bar_cells = width - len(label) - len(detail) - 2
        if bar_cells >= MIN_BAR:
            return detail, bar_cells
    bar_cells = width - len(label) - len(variants[-1]) - 2
    if bar_cells >= 1:
        return variants[-1], bar_cells
    if not may_drop:
        return variants[-1], 3
    return "", max(1, width - len(label) - 1)


#: Limits the rule derived from measured figures: their short why is what binds them.
MEASURED = (ev.LimitSource.WINDOW, ev.LimitSource.WHOLE_LIFE, ev.LimitSource.LEARNED,
            ev.LimitSource.PREVIOUS_RUN)


def limit_why(model: RunModel) -> tuple[str, str]:
    """(long, short) explanation of the limit: what binds it and who set it. The short one is
    kept at every width: what binds a measured limit, else who set it (`set by operator`,
    `--jobs`, `memory critical`), since a bare number would read as the rule's."""
    reason = model.limit_reason
    measured = model.limit_source in MEASURED or model.limit_source is None
    # What binds the rule's limit says nothing of one the operator, --jobs or memory set.
    binding = model.decision.binding if model.decision is not None and measured else ""
    short = f" ({binding} binds)" if binding else f" ({reason})" if reason else ""
    if binding and reason:
        return f" ({binding} binds; {reason})", short
    if binding or reason:
        return f" ({binding or reason})", short
    return "", ""


def run_figures(model: RunModel) -> dict[str, object]:
    """The run-level figures a screen binds to its widgets, by reactive name."""
    return {
        "counts": model.counts(),
        "eta": model.eta(),
        "limit": model.limit,
        "limit_why": limit_why(model),
        "pressure": tuple(model.pressure.values()),
    }


class ProgressLine(Widget):
    """Done/total bar, failures, running jobs, ETA and the process limit with what binds it.

    Its figures are reactive attributes, bound (`data_bind`) to the screen's: it repaints when
    one of them changes, and only then."""

    DEFAULT_CSS = """
    ProgressLine {
        height: 1;
        & > .progress-line--bar { color: $success; }
        & > .progress-line--failed { color: $error; text-style: bold; }
    }
    """

    COMPONENT_CLASSES = {"progress-line--bar", "progress-line--failed"}

    counts: reactive[Counts] = reactive(Counts())
    eta: reactive[Eta] = reactive(Eta())
    limit: reactive[int] = reactive(0)
    limit_why: reactive[tuple[str, str]] = reactive(("", ""))

    # pylint: disable-next=too-many-locals  # one local per figure of the bar and its label
    def texts(self, width: int) -> tuple[Text, Text]:
        """(bar, figures) for `width` cells; split so tests can read the figures alone."""
        counts = self.counts
        total = counts.total
        done = counts.ended
        fraction = done / total if total else 0.0
        eta_text = self.eta.text("--")
        long_why, short_why = self.limit_why
        limit = self.limit
        # Killed, paused and stopping jobs are counts of their own (never inside failed and
        # running); each is named only when there is one, so the usual line keeps its width.
        killed, paused, stopping = counts.killed, counts.paused, counts.stopping
        running = [
            f"{run}{counts.running}" + (f"{pause}{paused}" if paused else "") +
            (f"{stop}{stopping}" if stopping else "")
            for run, pause, stop in (("  running ", "  paused ", "  stopping "),
                                     (" run ", " pause ", " stop "), (" R", " P", " S"))
        ]
        variants = [
            (f" {done}/{total} {fraction:.0%}",
             f"  failed {counts.failed}" + (f"  killed {killed}" if killed else ""), running[0],
             f"  ETA {eta_text}", f"  limit {limit}{long_why}"),
            (f" {done}/{total} {fraction:.0%}",
             f"  failed {counts.failed}" + (f"  killed {killed}" if killed else ""), running[0],
             f"  ETA {eta_text}", f"  limit {limit}{short_why}"),
            (f" {done}/{total}", f" fail {counts.failed}" + (f" kill {killed}" if killed else ""),
             running[1], f" eta {eta_text}", f" limit {limit}{short_why}"),
            (f" {done}/{total}", f" F{counts.failed}" + (f" K{killed}" if killed else ""),
             running[2], f" {eta_text}", f" L{limit}{short_why}"),
        ]
        # Only where not even that fits does the limit lose its why.
        variants.append(variants[-1][:-1] + (f" L{limit}", ))
        joined = ["".join(parts) for parts in variants]
        # The line's last variant already gave up what it could (its words, the limit's why).
        chosen, bar_width = fit_variants(width, "", joined, may_drop=False)
        parts = variants[joined.index(chosen)]
        failed_style = self.get_component_rich_style(
            "progress-line--failed", partial=True) if counts.failed or killed else ""
        figures = Text.assemble(parts[0], (parts[1], failed_style), *parts[2:])
        bar_text = Text(draw_bar(bar_width + 1, fraction),
                        style=self.get_component_rich_style("progress-line--bar", partial=True))
        return bar_text, figures

    def render(self) -> Text:
        bar_text, figures = self.texts(self.size.width or 80)
        line = Text.assemble(bar_text, figures)
        line.truncate(max(1, self.size.width or 80))
        return line


class ResourceGauge(Widget):
    """One machine resource as a bar with its reserve line: "cpu", "memory" or "disk".

    The disk gauge also draws the space the remaining outputs are projected to take, and gets
    the `-danger` class (error colour, and "LOW" in the text for colourless terminals) when
    free space minus that projection falls under the reserve; memory does when available memory
    is under its reserve.
    """

    KINDS = ("cpu", "memory", "disk")
    LABELS = {"cpu": "CPU ", "memory": "MEM ", "disk": "DISK "}

    DEFAULT_CSS = """
    ResourceGauge {
        height: 1;
        &.-danger { color: $error; text-style: bold; }
    }
    """

    def __init__(
            self,
            model: RunModel,
            kind: str,
            *,
            id: str | None = None,  # pylint: disable=redefined-builtin
            classes: str | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown gauge kind {kind!r}; expected one of {self.KINDS}")
        super().__init__(id=id, classes=classes)
        self.model = model
        self.kind = kind

    @property
    def danger(self) -> bool:
        """True when the resource is past its reserve (or projected to be, for disk)."""
        sample = self.model.system
        if sample is None:
            return False
        if self.kind == "memory":
            return sample.available_memory < sample.memory_reserve
        if self.kind == "disk":
            return sample.free_disk - sample.projected_disk_use < sample.disk_reserve
        return False

    def on_mount(self) -> None:
        """A gauge mounted after the first sample shows its danger state at once."""
        self.set_class(self.danger, "-danger")

    def refresh_from_model(self) -> None:
        """Redraw from the latest SystemSample and set `-danger` accordingly."""
        self.set_class(self.danger, "-danger")
        self.refresh()

    # pylint: disable-next=too-many-locals  # one local per segment of the disk gauge
    def text(self, width: int) -> Text:
        """The gauge for `width` cells (plain text: colour comes from the widget's classes)."""
        label = self.LABELS[self.kind]
        sample = self.model.system
        if sample is None:
            return Text(label + "n/a")
        warn = " LOW" if self.danger else ""
        if self.kind == "cpu":
            fraction = sample.cpu_percent / 100
            detail, bar_cells = fit_variants(width, label, [
                f"{sample.cpu_percent:.0f}% of {sample.logical_cores} cores"
                f"{sample.cores_source.note}",
                f"{sample.cpu_percent:.0f}% of {sample.logical_cores} cores",
                f"{sample.cpu_percent:.0f}%"
            ])
            return Text.assemble(label, draw_bar(bar_cells, fraction), " ", detail)
        if self.kind == "memory":
            total = max(sample.total_memory, 1)
            used = (total - sample.available_memory) / total
            marker = (total - sample.memory_reserve) / total
            avail, size = format_bytes(sample.available_memory), format_bytes(total)
            reserve = format_bytes(sample.memory_reserve)
            detail, bar_cells = fit_variants(width, label, [
                f"{avail} free of {size}{sample.memory_source.note}, reserve {reserve}{warn}",
                f"{avail} free of {size}, reserve {reserve}{warn}",
                f"{avail} free, res {reserve}{warn}",
                f"{avail}{warn}",
            ])
            return Text.assemble(label, draw_bar(bar_cells, used, marker=marker), " ", detail)
        total = max(sample.disk_total, 1)
        used = (total - sample.free_disk) / total
        projected = sample.projected_disk_use / total
        marker = (total - sample.disk_reserve) / total
        free, need = format_bytes(sample.free_disk), format_bytes(sample.projected_disk_use)
        reserve = format_bytes(sample.disk_reserve)
        detail, bar_cells = fit_variants(width, label, [
            f"{free} free, {need} projected, reserve {reserve}{warn}",
            f"{free} free, -{need}, res {reserve}{warn}",
            f"{free}{warn}",
        ])
        return Text.assemble(label, draw_bar(bar_cells, used, projected, marker), " ", detail)

    def render(self) -> Text:
        width = self.size.width or 80
        line = self.text(width)
        line.truncate(max(1, width))
        return line


class NoticeLine(Widget):
    """The line under the table: pause-all, resource pressure, else the latest notice.

    Pressure and the pause-all state are reactive attributes bound to the screen's."""

    pressure: reactive[tuple[ev.ResourcePressure, ...]] = reactive(())
    paused_all: reactive[bool] = reactive(False)
    notice: reactive[str] = reactive("")

    def render(self) -> Text:
        text = Text()
        if self.paused_all:
            text.append("PAUSED: no launches, all jobs stopped (P resumes)  ", style="bold")
        for pressure in self.pressure:
            if pressure.level is not PressureLevel.OK:
                text.append(pressure.message + "  ")
        if not text and self.notice:
            text.append(self.notice)
        return text
