"""A run started before the TUI draws (--yes): the run reads its list in its own process while
the app shows how far it is, then attaches; a refusal lands on the config screen."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from orch_tui.background import spawn_run
from orch_tui.core.controller import Launch, LoadProgress, Starting
from orch_tui.core.errors import OrchError
from orch_tui.core.events import JobState
from orch_tui.core.inputs import PROGRESS_EVERY
from orch_tui.tui.app import OrchApp
from orch_tui.tui.screens.config import BACKGROUND_LIST_BYTES, ConfigScreen
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.screens.starting import StartingScreen
from tests.fake_controller import FakeController, job_views
from tests.helpers import CMD, screen_text, write_workspace
from tests.test_tui_app import until


def test_the_run_process_reports_its_list_loading_before_it_starts(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", 2, size=16)
    lines = 2 * PROGRESS_EVERY + 123
    # One input listed many times: every line is read (and counted), the duplicates dropped.
    (ws.root / "inputs.txt").write_text("in/clip01.bin\n" * (lines - 1) + "in/clip02.bin\n",
                                        encoding="utf-8")
    seen: list[tuple[int, int]] = []

    async def start() -> None:
        await spawn_run(ws.config, ["--jobs", "1"], lambda done, total: seen.append((done, total)))

    asyncio.run(start())
    subprocess.run(CMD + ["wait", str(ws.output_dir), "--timeout", "60"], check=True, timeout=90)
    total = lines  # as wc -l counts them: the final newline ends the last line
    assert seen[:2] == [(PROGRESS_EVERY, total), (2 * PROGRESS_EVERY, total)]
    assert seen[-1] == (total, total), "the last figure is the whole list"


def notified(app: OrchApp, words: str) -> bool:
    """The app said `words` in a notification."""
    # Textual has no public list of the notifications it showed.
    notes = app._notifications  # pylint: disable=protected-access  # no public list exists
    return any(words in str(note.message) for note in notes)


def _app(launch: asyncio.Future[Launch], progress: LoadProgress,
         tmp_path: Path) -> tuple[OrchApp, FakeController]:
    controller = FakeController(job_views([JobState.QUEUED] * 2), started=False)
    config = tmp_path / "config.yaml"
    config.write_text("binary: {path: /bin/true}\n", encoding="utf-8")
    app = OrchApp(controller, config, starting=Starting(launch, progress))
    return app, controller


async def test_the_starting_screen_counts_the_lines_then_the_run_screen_opens(tmp_path):
    launch: asyncio.Future[Launch] = asyncio.get_running_loop().create_future()
    progress = LoadProgress()
    app, controller = _app(launch, progress, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, StartingScreen))
        assert "starting the run process" in screen_text(app)
        progress.update(45_000, 100_000)
        await until(pilot,
                    lambda: "reading the input list: 45,000 of 100,000 lines" in screen_text(app))
        await pilot.press("j")  # keys are taken while the list loads: the screen answers
        controller._started = True  # pylint: disable=protected-access  # the run is up
        launch.set_result(Launch(notice="a notice from the run"))
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert app.model is not None and len(app.model.rows) == 2
        await until(pilot, lambda: notified(app, "a notice from the run"))


async def test_a_run_that_refuses_to_start_leaves_the_config_screen_saying_why(tmp_path):
    launch: asyncio.Future[Launch] = asyncio.get_running_loop().create_future()
    app, _ = _app(launch, LoadProgress(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, StartingScreen))
        launch.set_exception(OrchError("the folder is held by pid 42"))
        await until(pilot, lambda: isinstance(app.screen, ConfigScreen))
        await until(pilot, lambda: notified(app, "the folder is held by pid 42"))
        assert app.model is None


async def test_q_while_starting_leaves_the_run_to_itself(tmp_path):
    launch: asyncio.Future[Launch] = asyncio.get_running_loop().create_future()
    app, controller = _app(launch, LoadProgress(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, StartingScreen))
        await until(pilot, lambda: "Leave (the run goes on)" in screen_text(app))
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    assert controller.calls == [], "nothing was asked of the run"


async def test_a_long_list_loads_on_the_config_screen_with_its_progress(tmp_path):
    ws = write_workspace(tmp_path / "ws", 1, size=16)
    line = f"{ws.inputs[0]}\n"
    count = BACKGROUND_LIST_BYTES // len(line) + PROGRESS_EVERY
    (ws.root / "inputs.txt").write_text(line * count, encoding="utf-8")
    seen: list[str] = []
    app = OrchApp(FakeController(started=False), ws.config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen

        def loaded() -> bool:
            text = screen_text(app)
            seen.append(text)
            return isinstance(screen, ConfigScreen) and screen.plan is not None

        await until(pilot, lambda: isinstance(app.screen, ConfigScreen))
        screen = app.screen
        await until(pilot, loaded)
        await until(pilot, lambda: f"{count - 1} duplicated" in screen_text(app))
    assert any("Reading the input list" in text for text in seen), "the load was shown"
