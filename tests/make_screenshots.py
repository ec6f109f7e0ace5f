"""Regenerate the README's screenshots (screenshots/*.svg) from a real demo run.

    python tests/make_screenshots.py [--out screenshots] [--workspace DIR] [--count 12]

Unlike the snapshot tests, nothing here is faked: the demo workspace is written, OrchApp runs
headless with the real core and real demo jobs, and each screenshot is saved when the model says
the moment has come (config validated, calibration sampling, result known, jobs finished...).
Waits poll the model; a short pause after each only lets the screen's redraw timer catch up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `orch_tui` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# pylint: disable=wrong-import-position
from textual.pilot import Pilot
from textual.widgets import Log

from orch_tui.background import spawn_run
from orch_tui.core.control.remote import RemoteRun
from orch_tui.core.events import JobState
from orch_tui.demo.workspace import write_demo_workspace
from orch_tui.tui.app import OrchApp
from orch_tui.tui.model import JobRow
from orch_tui.tui.screens.calibration import CalibrationScreen
from orch_tui.tui.screens.config import ConfigScreen
from orch_tui.tui.screens.detail import DetailScreen
from orch_tui.tui.screens.finished import FinishedScreen
from orch_tui.tui.screens.help import HelpScreen
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.widgets.job_table import JobTable

SIZE = (120, 36)
#: The run screen is also shot at these sizes.
WIDE, SMALL = (200, 50), (80, 24)
#: Longer than any redraw timer of the screens (0.25 s calibration, 0.5 s run and detail).
REDRAW = 0.7
DEFAULT_WORKSPACE = Path(tempfile.gettempdir()) / "orch-tui-demo"


def points(row: JobRow) -> int:
    """Points in a job's CPU history (its samples, until the history downsamples)."""
    return 0 if row.history is None else len(row.history.cpu)


class Shooter:
    """Drives one app through the demo and saves a screenshot at each interesting moment."""

    def __init__(self, app: OrchApp, pilot: Pilot, out: Path, *, verbose: bool = True) -> None:
        self.app = app
        self.pilot = pilot
        self.out = out
        self.verbose = verbose
        self.saved: list[Path] = []

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Let the app run until `predicate()` holds; fail loudly with `what` otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            await self.pilot.pause(0.05)

    async def shoot(self, name: str) -> None:
        """Wait for the next redraw, then save the screen as `name`."""
        await self.pilot.pause(REDRAW)
        path = self.app.save_screenshot(filename=name, path=str(self.out))
        self.saved.append(Path(path))
        if self.verbose:
            print(f"saved {path}")

    def running(self) -> list[int]:
        """Ids of the jobs running right now."""
        model = self.app.model
        assert model is not None
        return [job_id for job_id, row in model.rows.items() if row.state is JobState.RUNNING]

    def sampled(self, count: int) -> list[int]:
        """Running jobs with at least `count` samples (enough for a sparkline)."""
        model = self.app.model
        assert model is not None
        return [job_id for job_id in self.running() if points(model.rows[job_id]) >= count]

    async def run(self) -> None:
        """Config, calibration (live, result), run, detail, help, finished."""
        app, pilot = self.app, self.pilot
        await self.until(
            lambda: isinstance(app.screen, ConfigScreen) and app.screen.plan is not None,
            "the config to validate")
        await self.shoot("01-config.svg")

        await pilot.press("enter")
        await self.until(
            lambda: isinstance(app.screen, CalibrationScreen) and app.model is not None and len(
                app.model.calibration) >= 3, "calibration samples")
        await self.shoot("02-calibration.svg")
        await self.until(lambda: app.model is not None and app.model.calibrated is not None,
                         "the calibration result")
        await self.shoot("03-calibration-result.svg")

        await pilot.press("enter")
        await self.until(lambda: isinstance(app.screen, RunScreen), "the run screen")
        # Mid-run: a failure and some successes, and jobs running long enough for sparklines.
        await self.until(
            lambda: app.model is not None and app.model.counts().failed >= 1 and len(self.sampled(
                4)) >= 2, "a mid-run moment", 90.0)
        await self.shoot("04-run.svg")
        # The same moment on a large and a small terminal: where the extra space goes, and
        # what still fits at 80x24.
        for width, height in (WIDE, SMALL):
            await pilot.resize_terminal(width, height)
            await self.shoot(f"04-run-{width}x{height}.svg")
        await pilot.resize_terminal(*SIZE)

        # The job with the most samples that is not about to end, so its detail shows it running.
        rows = app.model.rows
        young = [i for i in self.sampled(2) if (rows[i].progress or 0.0) < 0.6]
        job_id = max(young or self.running(), key=lambda i: points(rows[i]))
        table = app.screen.query_one(JobTable)
        table.focus()
        table.select_job(job_id)
        await pilot.press("enter")
        await self.until(
            lambda: isinstance(app.screen, DetailScreen) and app.screen.query_one(Log).line_count >
            2, "the job's log in the detail view")
        await self.shoot("05-detail.svg")
        await pilot.press("escape")

        await self.until(lambda: isinstance(app.screen, (RunScreen, FinishedScreen)),
                         "back to the run")
        if isinstance(app.screen, RunScreen):
            await pilot.press("question_mark")
            await self.until(lambda: isinstance(app.screen, HelpScreen), "the help")
            await self.shoot("06-help.svg")
            await pilot.press("escape")
        else:
            print("warning: the run ended before the help screenshot; rerun with more --seconds",
                  file=sys.stderr)

        await self.until(lambda: isinstance(app.screen, FinishedScreen), "the end of the run",
                         120.0)
        await self.shoot("07-finished.svg")
        await pilot.press("q")


async def make_screenshots(out: Path,
                           workspace: Path,
                           *,
                           count: int = 12,
                           seconds: float = 8.0,
                           verbose: bool = True) -> list[Path]:
    """Write the demo workspace, run it in a process of its own as `orch-tui config.yaml` does,
    watch it from the TUI (headless) and save the screenshots."""
    out.mkdir(parents=True, exist_ok=True)
    config = write_demo_workspace(workspace, count=count, seconds=seconds)
    remote = RemoteRun(spawn=lambda plan: spawn_run(plan.config.path))
    app = OrchApp(remote, config, start_dir=workspace)
    async with app.run_test(size=SIZE) as pilot:
        shooter = Shooter(app, pilot, out, verbose=verbose)
        try:
            await shooter.run()
        finally:
            if remote.started and remote.finished is None:
                remote.shutdown(kill=True)  # a shot failed: the run must not outlive this
            await remote.close()
    return shooter.saved


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out",
                        type=Path,
                        default=root / "screenshots",
                        help="folder for the SVGs (default: screenshots/)")
    parser.add_argument("--workspace",
                        type=Path,
                        default=DEFAULT_WORKSPACE,
                        help=f"demo workspace to (re)write (default: {DEFAULT_WORKSPACE})")
    parser.add_argument("--count", type=int, default=12, help="demo inputs (default 12)")
    parser.add_argument("--seconds",
                        type=float,
                        default=8.0,
                        help="seconds each demo job lasts (default 8: long enough for "
                        "sparklines)")
    args = parser.parse_args(argv)
    saved = asyncio.run(
        make_screenshots(args.out, args.workspace, count=args.count, seconds=args.seconds))
    stale = args.out / ".gitkeep"
    if saved and stale.exists():
        stale.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
