"""When the TUI exits, the terminal keeps the run's summary line (the headless one) and, with work
left, the command that finishes it: the real program in a tmux pane, then that command run."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_tui.cli import print_exit_summary
from orch_tui.core.events import RunFinished
from tests.helpers import write_workspace
from tests.test_tui_terminal import COLOR, exit_code
from tests.tmux import Terminal, orch_command

# Fails on inputs named bad*, after saying why; succeeds (an empty output) on the others.
FAILING = ("import sys; name = sys.argv[1].rsplit('/', 1)[-1]\n"
           "print(name + ': cannot parse header', file=sys.stderr)\n"
           "sys.exit(3 if name.startswith('bad') else open(sys.argv[2], 'w').close())\n")


@pytest.fixture(name="terminal")
def terminal_fixture(tmp_path: Path) -> Iterator[Terminal]:
    """A 100x30 tmux terminal of its own; the server is killed whatever the test's outcome."""
    term = Terminal(tmp_path, width=100, height=30)
    try:
        yield term
    finally:
        term.close()


def joined_screen(terminal: Terminal) -> str:
    """The pane's text with wrapped lines joined (a long command stays one line), and its
    history: tmux's `Pane is dead` line scrolls the first line off the screen."""
    return terminal.tmux("capture-pane", "-p", "-J", "-S", "-100", "-t", "t").stdout


def test_tui_exit_prints_the_summary_and_the_resume_command_that_works(tmp_path, terminal):
    ws = write_workspace(tmp_path / "ws", ["bad.bin", "good.bin"],
                         flags=["-c", FAILING, "{input_file}", "{output_file}"])
    rc_file = terminal.workdir / "rc"
    terminal.start(orch_command(["config.yaml", "--yes", "--jobs", "1"], env=COLOR,
                                rc_file=rc_file),
                   cwd=ws.root)
    terminal.tmux("set-option", "-t", "t", "remain-on-exit", "on")
    terminal.wait_for("Finished: exit code 1", timeout=30, what="the finished screen")
    terminal.send("q")
    assert exit_code(rc_file) == 1
    screen = joined_screen(terminal)
    summary = re.search(
        r"^done: 1 succeeded, 1 failed, 0 killed, 0 skipped, 0 missing in "
        r"\d:\d\d:\d\d \(exit 1\)$", screen, re.MULTILINE)
    assert summary, screen
    assert "1 job left to do (failed, killed or not run)" in screen, screen
    command = next(line.strip() for line in screen.splitlines() if "-m orch_tui" in line)
    argv = shlex.split(command)
    assert argv[-4:] == ["--jobs", "1", "--yes", str(ws.config)], argv
    # The printed command does finish the work: the good job is skipped, the bad one runs again.
    rerun = subprocess.run([*argv, "--headless"],
                           cwd=tmp_path,
                           capture_output=True,
                           text=True,
                           timeout=60,
                           stdin=subprocess.DEVNULL,
                           check=False)
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "done: 0 succeeded, 1 failed, 0 killed, 1 skipped, 0 missing" in rerun.stdout, \
        rerun.stdout
    assert "bad.bin: cannot parse header (exit 3)" in rerun.stdout


def test_nothing_left_means_no_resume_hint_and_a_dead_stream_is_no_error():
    done = RunFinished(time=0.0,
                       counts={"succeeded": 2},
                       wall_seconds=61.0,
                       exit_code=0,
                       interrupted=False)
    out: list[str] = []

    class Stream:
        """Records what is written."""

        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    print_exit_summary(Stream(), done, "orch-tui c.yaml")  # type: ignore[arg-type]
    assert out == [
        "done: 2 succeeded, 0 failed, 0 killed, 0 skipped, 0 missing in 0:01:01 "
        "(exit 0)\n"
    ]
    left = RunFinished(time=0.0,
                       counts={
                           "queued": 3,
                           "killed": 1
                       },
                       wall_seconds=1.0,
                       exit_code=130,
                       interrupted=True)
    out.clear()
    print_exit_summary(Stream(), left, "orch-tui 'my c.yaml'")  # type: ignore[arg-type]
    assert out[0].splitlines() == [
        "interrupted: 0 succeeded, 0 failed, 1 killed, 0 skipped, 0 missing, 3 not run in "
        "0:00:01 (exit 130)", "4 jobs left to do (failed, killed or not run); to run them, run "
        "the same command again:", "  orch-tui 'my c.yaml'"
    ]

    class Closed(Stream):
        """A terminal that went away."""

        def write(self, text: str) -> None:
            raise BrokenPipeError

    print_exit_summary(Closed(), left, "x")  # type: ignore[arg-type]
