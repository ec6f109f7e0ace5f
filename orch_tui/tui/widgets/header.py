"""The run screen's header line: wall time and throughput, from the model only.

Throughput is this run's average since its first launch: jobs that succeeded per minute, and
their inputs' bytes per second (the rate the input list is worked through). Before a minute of
run or a first success there is no figure worth showing, and `-` says so.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widget import Widget

from orch_tui.core.textutil import format_bytes, format_duration, printable
from orch_tui.tui.model import RunModel

#: Seconds of run before a rate is shown: a first job done in 2 s is not 30 jobs/min.
MIN_RATE_SECONDS = 10.0


def throughput(model: RunModel) -> tuple[float, float] | None:
    """(jobs per minute, input bytes per second) since the first launch, None when the run has
    not been going for MIN_RATE_SECONDS or nothing succeeded yet."""
    wall = model.wall_seconds()
    if wall is None or wall < MIN_RATE_SECONDS or not model.succeeded_jobs:
        return None
    return model.succeeded_jobs / wall * 60, model.succeeded_bytes / wall


def header_variants(model: RunModel) -> list[str]:
    """The header line, longest first; the widget shows the first that fits."""
    wall = model.wall_seconds()
    wall_text = "-" if wall is None else format_duration(wall)
    rate = throughput(model)
    if rate is None:
        jobs, data = "-", "-"
    else:
        jobs, data = f"{rate[0]:.1f}", format_bytes(rate[1])
    return [
        f"wall {wall_text}   throughput {jobs} jobs/min, {data}/s of input",
        f"wall {wall_text}   {jobs} jobs/min   {data}/s",
        f"{wall_text}  {jobs}/min  {data}/s",
    ]


def panel_title(config: Path | None, output_dir: Path | None) -> tuple[str, str]:
    """The header panel's (title, subtitle): the config file's name and the output folder,
    each only when known (a run attached by its folder has no config path)."""
    title = f"orch-tui · {printable(config.name)}" if config is not None else "orch-tui"
    subtitle = f"→ {printable(str(output_dir))}" if output_dir is not None else ""
    return title, subtitle


class HeaderLine(Widget):
    """Wall time and throughput (see the module docstring); redrawn by the screen's timer."""

    DEFAULT_CSS = """
    HeaderLine {
        height: 1;
    }
    """

    # pylint: disable-next=redefined-builtin  # `id` is Textual's name for it
    def __init__(self, model: RunModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model

    def render(self) -> Text:
        width = self.size.width or 80
        variants = header_variants(self.model)
        line = next((text for text in variants if len(text) <= width), variants[-1])
        return Text(line[:width])
