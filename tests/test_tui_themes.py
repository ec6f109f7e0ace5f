"""Themes: the settings file on a real file system, the palette's choice kept for the next start,
every built-in theme legible in the job table, and NO_COLOR colourless whatever was saved."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import importlib
import json
import os
import pkgutil
import stat
from pathlib import Path

import pytest
from rich.segment import Segment
from textual.binding import Binding
from textual.color import Color
from textual.command import CommandPalette
from textual.dom import DOMNode

import orch_tui.tui
from orch_tui.core import events as ev

from orch_tui.core.events import JobState
from orch_tui.tui.app import OrchApp
from orch_tui.tui.screens.config import ConfigScreen
from orch_tui.tui.screens.detail import DetailScreen
from orch_tui.tui.screens.finished import FinishedScreen
from orch_tui.tui.screens.help import HelpScreen
from orch_tui.tui.screens.modals import QuitModal
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.settings import Settings, SettingsError, SettingsFile, settings_dir
from orch_tui.tui.widgets.job_table import JobTable
from tests.fake_controller import FakeController, job_views
from tests.helpers import write_workspace

STATES = list(JobState)
#: Shown dim on purpose (nothing to do about them): not held to the contrast of the others.
DIM = {JobState.QUEUED, JobState.SKIPPED}
FINISHED = ev.RunFinished(time=1.0,
                          counts={"failed": 1},
                          wall_seconds=1.0,
                          exit_code=1,
                          interrupted=False)


@pytest.fixture(name="store")
def store_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SettingsFile:
    """The settings file where the app looks for it, in a config folder of the test's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return SettingsFile(settings_dir())


def app_on(store: SettingsFile | None, states: list[JobState] | None = None) -> OrchApp:
    """The app on a run of jobs in `states` (job 1 queued: the cursor's row is not judged)."""
    jobs = job_views([JobState.QUEUED] + (states or []))
    return OrchApp(FakeController(jobs), settings=store)


# --- the file


def test_settings_dir_follows_xdg_config_home(tmp_path, monkeypatch):
    assert settings_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "orch-tui"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert settings_dir({}) == tmp_path / "home" / ".config" / "orch-tui"
    # The XDG spec: a relative path is invalid and ignored.
    assert settings_dir({"XDG_CONFIG_HOME": "rel"}) == tmp_path / "home" / ".config" / "orch-tui"


def test_no_file_is_the_defaults(store):
    assert store.load() == Settings()
    assert not store.folder.exists()


def test_save_then_load_with_owner_only_modes(store):
    store.save(Settings(theme="nord"))
    assert store.load() == Settings(theme="nord")
    assert json.loads(store.path.read_text(encoding="utf-8")) == {"theme": "nord"}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    store.save(Settings(theme="dracula"))
    assert store.load().theme == "dracula"
    assert sorted(p.name for p in store.folder.iterdir()) == ["settings.json"], "no temp left"


def test_an_existing_open_folder_is_made_owner_only(store):
    store.folder.mkdir(parents=True, mode=0o755)
    os.chmod(store.folder, 0o755)
    store.save(Settings(theme="nord"))
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("content", [
    b"{not json",
    b"\xff\xfe",
    b"[1, 2]",
    b'{"theme": 3}',
])
def test_a_corrupt_file_is_an_error_not_a_traceback(store, content):
    store.folder.mkdir(parents=True)
    store.path.write_bytes(content)
    with pytest.raises(SettingsError, match="settings.json"):
        store.load()


def test_a_symlinked_file_is_neither_read_nor_written_through(store, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text('{"theme": "nord"}', encoding="utf-8")
    store.folder.mkdir(parents=True)
    store.path.symlink_to(target)
    with pytest.raises(SettingsError, match="cannot read"):
        store.load()
    store.save(Settings(theme="dracula"))  # replaces the link itself
    assert target.read_text(encoding="utf-8") == '{"theme": "nord"}'
    assert not store.path.is_symlink() and store.load().theme == "dracula"


def test_a_symlinked_folder_is_refused(store, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    store.folder.parent.mkdir(parents=True)
    store.folder.symlink_to(real)
    with pytest.raises(SettingsError, match="cannot create the folder"):
        store.save(Settings(theme="nord"))
    assert not list(real.iterdir())


def test_a_directory_in_place_of_the_file_cannot_be_read_nor_written(store):
    """Unwritable even for root (the tests may run as root, whom modes do not stop)."""
    store.path.mkdir(parents=True)
    with pytest.raises(SettingsError, match="not a regular file"):
        store.load()
    with pytest.raises(SettingsError, match="cannot write"):
        store.save(Settings(theme="nord"))
    assert sorted(p.name for p in store.folder.iterdir()) == ["settings.json"], "no temp left"


def test_an_unwritable_place_for_the_folder_is_an_error(store):
    store.folder.parent.write_text("a file where the config folder should be", encoding="utf-8")
    with pytest.raises(SettingsError, match="cannot create the folder"):
        store.save(Settings(theme="nord"))


# --- the app


async def choose_theme(pilot, name: str) -> None:
    """ctrl+p, the "Theme" command, then `name` in Textual's theme list."""
    await pilot.press("ctrl+p")
    assert isinstance(pilot.app.screen, CommandPalette)
    await pilot.press(*"theme")
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause(0.3)
    await pilot.press(*name)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause()


async def test_the_theme_chosen_in_the_palette_is_saved_and_used_next_start(store):
    app = app_on(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        await choose_theme(pilot, "nord")
        assert app.theme == "nord" and isinstance(app.screen, RunScreen)
    assert store.load().theme == "nord"
    again = app_on(store)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert again.theme == "nord"
        assert not again._notifications  # pylint: disable=protected-access  # no warning


async def test_palette_quit_asks_as_q_does():
    app = app_on(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *"quit")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, QuitModal) and app.is_running


@pytest.mark.parametrize("content", [b"{broken", b'{"theme": "no-such-theme"}'])
async def test_a_bad_settings_file_gives_one_warning_and_the_default_theme(store, content):
    store.folder.mkdir(parents=True)
    store.path.write_bytes(content)
    app = app_on(store)
    default = app.theme
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        notices = list(app._notifications)  # pylint: disable=protected-access  # what shows
        assert len(notices) == 1 and notices[0].severity == "warning", notices
        assert "settings.json" in notices[0].message and app.theme == default
        assert isinstance(app.screen, RunScreen)


async def test_an_unsaveable_choice_is_a_warning_and_the_theme_still_changes(store):
    store.folder.parent.mkdir(parents=True)
    store.folder.write_text("not a folder", encoding="utf-8")
    app = app_on(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.theme = "dracula"
        await pilot.pause()
        notices = list(app._notifications)  # pylint: disable=protected-access  # what shows
        # One at start (the file cannot be read), one for the choice that cannot be kept.
        assert [n.title for n in notices] == ["settings", "theme not saved"], notices
        assert app.theme == "dracula"


def luminance(color: Color) -> float:
    """WCAG relative luminance."""

    def channel(value: int) -> float:
        value_01 = value / 255
        return value_01 / 12.92 if value_01 <= 0.03928 else ((value_01 + 0.055) / 1.055)**2.4

    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)


def contrast(segment: Segment) -> float:
    """WCAG contrast ratio of a segment's ink on its paper."""
    assert segment.style is not None and segment.style.color and segment.style.bgcolor
    ink, paper = (Color.from_rich_color(c) for c in (segment.style.color, segment.style.bgcolor))
    lighter, darker = sorted((luminance(ink), luminance(paper)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def shown_states(app: OrchApp) -> dict[JobState, Segment]:
    """Each state's cell as it reaches the terminal (after the app's filters)."""
    table = app.screen.query_one(JobTable)
    cells = {}
    for line, state in enumerate(STATES, 2):  # line 1: job 1, under the cursor
        segments = list(table.render_line(line))
        for line_filter in app.get_line_filters():
            segments = line_filter.apply(segments, Color(0, 0, 0))
        cells[state] = next(s for s in segments if s.text.strip() == state.value)
    return cells


async def test_every_state_is_legible_in_every_built_in_theme():
    """textual-light's paused (its pale $warning) was 1.4:1 on the table; every state that is
    not dim on purpose must read at 2.5:1 or better, and missing's magenta at 2:1, in each
    theme with colours of its own (the ansi-* themes are the terminal's)."""
    app = app_on(None, STATES)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        themes = sorted(name for name in app.available_themes if not name.startswith("ansi"))
        assert "textual-light" in themes and len(themes) > 10
        poor = []
        for theme in themes:
            app.theme = theme
            await pilot.pause()
            for state, cell in shown_states(app).items():
                floor = 1.8 if state in DIM else 2.0 if state is JobState.MISSING else 2.5
                if contrast(cell) < floor:
                    poor.append((theme, state.value, round(contrast(cell), 2)))
        assert not poor, poor


def hue_free(cell: Segment) -> bool:
    style = cell.style
    assert style is not None
    colours = [Color.from_rich_color(c) for c in (style.color, style.bgcolor) if c is not None]
    return all(c.r == c.g == c.b for c in colours)


async def test_no_color_stays_grey_with_a_saved_theme_and_after_choosing_one(store, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    store.save(Settings(theme="dracula"))
    app = app_on(store, STATES)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.no_color and app.theme == "dracula"
        assert all(hue_free(cell) for cell in shown_states(app).values())
        await choose_theme(pilot, "textual-light")
        assert app.theme == "textual-light"
        assert all(hue_free(cell) for cell in shown_states(app).values())
    assert store.load().theme == "textual-light"


# --- ctrl+p everywhere


def screen_classes() -> list[type]:
    """Every screen and widget class orch-tui defines (their bindings are orch-tui's keys)."""
    found: list[type] = []
    for info in pkgutil.walk_packages(orch_tui.tui.__path__, "orch_tui.tui."):
        module = importlib.import_module(info.name)
        found += [
            value for value in vars(module).values() if isinstance(value, type)
            and issubclass(value, DOMNode) and value.__module__ == module.__name__
        ]
    return found


def test_no_orch_tui_key_is_shadowed_by_the_palette():
    classes = screen_classes()
    assert JobTable in classes and RunScreen in classes and QuitModal in classes
    palette = OrchApp.COMMAND_PALETTE_BINDING
    for cls in classes:
        for binding in getattr(cls, "BINDINGS", []):
            keys = binding.key if isinstance(binding, Binding) else binding[0]
            assert palette not in keys.split(","), (cls, binding)


async def open_palette_on(app: OrchApp, pilot, screen: type) -> None:
    await pilot.pause()
    assert isinstance(app.screen, screen), app.screen
    await pilot.press("ctrl+p")
    assert isinstance(app.screen, CommandPalette), f"ctrl+p on {screen.__name__}"
    await pilot.press("escape")
    assert isinstance(app.screen, screen)


async def test_ctrl_p_opens_the_palette_on_every_screen(tmp_path):
    config = write_workspace(tmp_path / "ws", 2).config
    app = OrchApp(FakeController(started=False), config)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_palette_on(app, pilot, ConfigScreen)
    app = app_on(None, [JobState.FAILED])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_palette_on(app, pilot, RunScreen)
        await pilot.press("question_mark")
        await open_palette_on(app, pilot, HelpScreen)
        await pilot.press("escape", "enter")
        await open_palette_on(app, pilot, DetailScreen)
        await pilot.press("escape", "q")
        await open_palette_on(app, pilot, QuitModal)
        await pilot.press("escape")
        app.controller.listeners[0](FINISHED)
        await open_palette_on(app, pilot, FinishedScreen)
