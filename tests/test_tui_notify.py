"""The end of the run: the bytes each known terminal gets, nothing for the others, and when the
app rings (once, at the end it watched; never on a re-attach, a quit or with --quiet)."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orch_tui.cli import build_parser
from orch_tui.core import events as ev
from orch_tui.core.controller import Listener
from orch_tui.core.events import JobState
from orch_tui.core.snapshot import RunSnapshot
from orch_tui.tui.app import OrchApp
from orch_tui.tui.notify import Protocol, clean, notification, protocol_for, sequence, summary
from orch_tui.tui.screens.finished import FinishedScreen
from orch_tui.tui.screens.run import RunScreen
from tests.fake_controller import FakeController, job_views
from tests.helpers import run_cli, write_workspace
# The 80x24 tmux terminal fixture those tests use (pytest finds it by its name, `terminal`).
from tests.test_tui_terminal import terminal_fixture  # pylint: disable=unused-import  # by name
from tests.tmux import Terminal, orch_command, read_int, wait_until

END = ev.RunFinished(time=5.0,
                     counts={
                         "succeeded": 12,
                         "failed": 1,
                         "killed": 0,
                         "queued": 0
                     },
                     wall_seconds=4.0,
                     exit_code=1,
                     interrupted=False)
TEXT = "orch-tui: 12 succeeded, 1 failed (exit 1)"


def test_the_text_is_made_of_the_figures():
    assert summary(END) == TEXT
    clean_run = dataclasses.replace(END, counts={"succeeded": 3}, exit_code=0)
    assert summary(clean_run) == "orch-tui: 3 succeeded (exit 0)"
    stopped = dataclasses.replace(END,
                                  counts={
                                      "succeeded": 2,
                                      "killed": 1,
                                      "cancelled": 4
                                  },
                                  exit_code=143,
                                  interrupted=True)
    assert summary(stopped) == "orch-tui: stopped: 2 succeeded, 1 killed, 4 cancelled (exit 143)"


@pytest.mark.parametrize("environ, expected", [
    ({
        "TERM_PROGRAM": "iTerm.app",
        "TERM": "xterm-256color"
    }, f"\x1b]9;{TEXT}\x07"),
    ({
        "TERM_PROGRAM": "ghostty",
        "TERM": "xterm-ghostty"
    }, f"\x1b]9;{TEXT}\x07"),
    ({
        "TERM_PROGRAM": "WezTerm",
        "TERM": "xterm-256color"
    }, f"\x1b]777;notify;orch-tui;{TEXT}\x07"),
    ({
        "TERM": "foot"
    }, f"\x1b]777;notify;orch-tui;{TEXT}\x07"),
    ({
        "TERM": "foot-extra"
    }, f"\x1b]777;notify;orch-tui;{TEXT}\x07"),
    ({
        "TERM": "xterm-kitty"
    }, f"\x1b]99;;{TEXT}\x1b\\"),
],
                         ids=["iterm2", "ghostty", "wezterm", "foot", "foot-extra", "kitty"])
def test_each_known_terminal_gets_its_sequence(environ, expected):
    assert notification(END, environ) == expected


@pytest.mark.parametrize("environ", [
    {},
    {
        "TERM": "xterm-256color"
    },
    {
        "TERM_PROGRAM": "Apple_Terminal",
        "TERM": "xterm-256color"
    },
    {
        "TERM_PROGRAM": "vscode",
        "TERM": "xterm-256color"
    },
    {
        "TERM": "xterm-256color",
        "WT_SESSION": "x"
    },
    {
        "TERM": "xterm-256color",
        "VTE_VERSION": "7600"
    },
    {
        "TERM": "rxvt-unicode-256color"
    },
    {
        "TERM_PROGRAM": "tmux",
        "TERM": "tmux-256color",
        "TMUX": "/tmp/tmux-0/default,1,0"
    },
    {
        "TERM_PROGRAM": "iTerm.app",
        "TERM": "screen-256color",
        "TMUX": "/tmp/tmux-0/default,1,0"
    },
    {
        "TERM_PROGRAM": "WezTerm",
        "TERM": "screen",
        "STY": "1234.pts-0.host"
    },
    {
        "TERM": "xterm-kitty",
        "TMUX": "/tmp/tmux-0/default,1,0"
    },
],
                         ids=[
                             "empty", "xterm", "apple-terminal", "vscode", "windows-terminal",
                             "vte", "urxvt", "tmux", "tmux-in-iterm2", "screen-in-wezterm",
                             "tmux-in-kitty"
                         ])
def test_unknown_terminals_and_multiplexers_get_nothing(environ):
    assert protocol_for(environ) is None
    assert notification(END, environ) == ""


def test_control_characters_and_separators_never_reach_the_terminal():
    hostile = "a\x1b]0;pwned\x07b\x9cc\x7fd;e\nf\u202eg"
    cleaned = clean(hostile)
    assert cleaned == "a]0pwnedbcdefg"
    for protocol in Protocol:
        seq = sequence(protocol, hostile)
        payload = seq[seq.index(";") + 1:]
        assert "\x1b]" not in payload[:-2] and "\x9c" not in seq and "\n" not in seq
    assert len(clean("x" * 1000)) == 200


# --- when the app rings


@pytest.fixture(name="written")
def written_fixture(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the app writes to the terminal at the end, in order ('\\a' for the bell), in an
    iTerm2 outside any multiplexer."""
    monkeypatch.setenv("TERM_PROGRAM", "iTerm.app")
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("STY", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    written: list[str] = []
    monkeypatch.setattr(OrchApp, "bell", lambda _app: written.append("\a"))
    monkeypatch.setattr(OrchApp, "write_escape", lambda _app, text: written.append(text))
    return written


def running_jobs() -> FakeController:
    return FakeController(job_views([JobState.RUNNING, JobState.QUEUED]))


async def test_the_end_rings_once_and_notifies(written):
    controller = running_jobs()
    app = OrchApp(controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunScreen) and not written
        controller.listeners[0](END)
        await pilot.pause()
        assert isinstance(app.screen, FinishedScreen)
        assert written == ["\a", f"\x1b]9;{TEXT}\x07"]
        controller.listeners[0](END)  # told twice (never by the core): still once
        await pilot.pause()
        assert len(written) == 2


async def test_quiet_neither_rings_nor_notifies(written):
    controller = running_jobs()
    app = OrchApp(controller, quiet=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        controller.listeners[0](END)
        await pilot.pause()
        assert isinstance(app.screen, FinishedScreen)
        assert not written


async def test_a_run_that_was_over_before_the_attach_is_not_told_again(written):

    class Finished(FakeController):
        """A run in another process that ended before this app attached."""

        def attach(self, listener: Listener) -> RunSnapshot:
            return dataclasses.replace(super().attach(listener), finished=END)

    app = OrchApp(Finished(job_views([JobState.SUCCEEDED, JobState.FAILED])))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FinishedScreen)
        assert not written


async def test_quitting_before_the_end_does_not_ring(written):
    controller = running_jobs()
    app = OrchApp(controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("q", "w")  # quit once the running jobs end
        await pilot.pause()
        assert ("shutdown", (False, False)) in controller.calls
        controller.listeners[0](END)
        await pilot.pause()
    assert app.return_code == 1
    assert not written


# --- in a real terminal


def bell_flag(terminal: Terminal) -> str:
    """tmux's record of a bell in the (detached) session's window: '1' once one rang."""
    return terminal.tmux("display", "-p", "-t", "t", "#{window_bell_flag}").stdout.strip()


def watch_the_end(terminal: Terminal, args: list[str], root: Path, *, quiet: bool) -> None:
    """Run `orch-tui ARGS` (plus --quiet) in the terminal, watch its jobs run and end: the bell
    rang at the end unless quiet, never before it; then q exits 0."""
    rc_file = terminal.workdir / "rc"
    env = {"TERM": "xterm-256color", "XDG_CONFIG_HOME": str(root / "config")}
    command = orch_command(args + (["--quiet"] if quiet else []), env=env, rc_file=rc_file)
    terminal.start(command, cwd=root / "ws")
    terminal.wait_for(lambda s: "running" in s and "clip01.bin" in s, what="a job running")
    assert bell_flag(terminal) == "0", "no bell before the end"
    # The bell is written before the finished screen: once that shows, tmux has seen it.
    terminal.wait_for("Finished: exit code 0", timeout=20)
    assert bell_flag(terminal) == ("0" if quiet else "1")
    terminal.send("q")
    wait_until(lambda: read_int(rc_file) is not None, 10, "the program to exit")
    assert read_int(rc_file) == 0


@pytest.mark.parametrize("quiet", [False, True], ids=["bell", "quiet"])
def test_a_real_run_ending_rings_the_terminal_bell_unless_quiet(tmp_path, terminal, quiet):
    write_workspace(tmp_path / "ws", 2, worker_args=["--seconds", "1.5"])
    watch_the_end(terminal, ["config.yaml", "--yes", "--max-procs", "2"], tmp_path, quiet=quiet)


def test_quiet_is_a_flag_of_the_command_line_harmless_headless():
    args = build_parser().parse_args(["config.yaml", "--quiet", "--headless"])
    assert args.quiet and args.headless
    assert not build_parser().parse_args(["config.yaml"]).quiet


@pytest.mark.parametrize("quiet", [False, True], ids=["bell", "quiet"])
def test_an_attached_screen_rings_at_the_end_unless_attach_quiet(tmp_path, terminal, quiet):
    ws = write_workspace(tmp_path / "ws", 2, worker_args=["--seconds", "3"])
    detached = run_cli("--detach", "--jobs", "2", str(ws.config), cwd=ws.root)
    assert detached.returncode == 0, detached.stderr
    watch_the_end(terminal, ["attach", str(ws.output_dir)], tmp_path, quiet=quiet)
