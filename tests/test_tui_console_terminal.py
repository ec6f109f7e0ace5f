"""The console keys in a real terminal (issue 12): `G` and `/` typed on a tty in an 80x24 tmux
pane move the real program's cursor (what `enter` then opens says where it is), and at 60
columns the footer still shows q and ?."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring,invalid-name  # G is the key typed, not g
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_tui_terminal import COLOR, exit_code, job_pids, make_workspace, start_run
from tests.tmux import Terminal


@pytest.fixture(name="term")
def term_fixture(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Terminal]:
    """A tmux terminal of the size the test asks for (80x24 unless parametrized)."""
    width, height = getattr(request, "param", (80, 24))
    terminal = Terminal(tmp_path, width=width, height=height)
    try:
        yield terminal
    finally:
        terminal.close()


def table_rows(screen: str) -> list[str]:
    """The job table's lines (a job id then its input name), inside the panel's border."""
    return [line for line in screen.splitlines() if re.match(r"[│\s]*●?\s*\d+ clip", line)]


def detail_of(job_id: int, name: str):
    """A predicate: the detail screen of job `job_id` is up (its first line names it)."""
    return lambda screen: "Back" in screen.rstrip("\n").splitlines()[-1] and screen.lstrip(
    ).startswith(f"#{job_id} {name} ")


def on_run_screen(screen: str) -> bool:
    return "Find" in screen.rstrip("\n").splitlines()[-1]


def selected(term: Terminal, job_id: int, name: str, what: str) -> None:
    """Enter opens the selected job's detail: it is job `job_id`; escape goes back."""
    term.send("Enter")
    term.wait_for(detail_of(job_id, name), what=what)
    term.send("Escape")  # then wait: escape and a key at once read as alt+key
    term.wait_for(on_run_screen, what="the run screen")


def test_G_goes_to_the_last_job_and_slash_finds_one_as_typed(tmp_path, term):
    ws, pidfile = make_workspace(tmp_path, 30, 60)
    rc_file = start_run(term, ws, COLOR)
    job_pids(pidfile, 2)
    screen = term.wait_for(lambda s: len(table_rows(s)) > 5 and "Find" in s.splitlines()[-1],
                           what="the run screen")
    assert "clip30.bin" not in screen, "30 jobs do not fit in 24 lines"

    term.send("G")
    screen = term.wait_for(lambda s: "clip30.bin" in (table_rows(s) or [""])[-1],
                           what="the last job at the bottom of the table")
    assert "clip01.bin" not in screen
    selected(term, 30, "clip30.bin", "job 30's detail: G selected it")

    term.send("/")
    term.wait_for("search input names", what="the search line")
    term.send("clip07")
    term.wait_for(lambda s: "clip07.bin" in s and "clip30.bin" not in s,
                  what="the table scrolled to the match")
    term.send("Enter")
    term.wait_for(lambda s: "search input names" not in s and "Find" in s.splitlines()[-1],
                  what="the search line closed")
    selected(term, 7, "clip07.bin", "job 7's detail: the search selected it")

    term.send("/")
    term.wait_for("search input names")
    term.send("clip2")  # the cursor goes to clip20 as typed; escape brings it back to 7
    term.wait_for(lambda s: "clip20.bin" in s and any("clip2" in line
                                                      for line in s.splitlines()[-2:]),
                  what="the pattern typed")
    term.send("Escape")
    term.wait_for(lambda s: "Find" in s.splitlines()[-1], what="the search closed")
    selected(term, 7, "clip07.bin", "escape put the cursor back on job 7")

    term.send("q")
    term.wait_for("Leave the run?")
    term.send("k")
    assert exit_code(rc_file) == 143


@pytest.mark.parametrize("term", [(60, 20)], indirect=True)
def test_at_60_columns_the_footer_still_shows_quit_and_help(tmp_path, term):
    ws, pidfile = make_workspace(tmp_path, 3, 60)
    rc_file = start_run(term, ws, COLOR)
    job_pids(pidfile, 2)
    screen = term.wait_for(
        lambda s: len(table_rows(s)) == 3 and "Quit" in s.rstrip("\n").splitlines()[-1],
        what="the run screen at 60x20")
    footer = screen.rstrip("\n").splitlines()[-1]
    assert "q Quit" in footer and "? Help" in footer, footer
    assert all(len(line) <= 60 for line in screen.splitlines()), screen
    term.send("?")
    term.wait_for("Keys (escape closes)", what="the help")
    term.send("Escape")
    term.wait_for(lambda s: "q Quit" in s.rstrip("\n").splitlines()[-1], what="the run screen")
    term.send("q")
    term.wait_for("Leave the run?")
    term.send("k")
    assert exit_code(rc_file) == 143
