"""The TUI says why a job failed (finished and detail screens) and its log tail follows like
`less +F`, against real subprocess jobs driven by Textual's pilot."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

from textual.widgets import Log

from orch_tui.core.events import JobState
from orch_tui.tui.screens.modals import ConfirmKill
from tests.test_tui_app import make_app, select, until
from tests.helpers import screen_text

# Writes 300 lines at once, then one every 0.1 s: more than a screen at open, and new ones after.
CHATTY = ("import sys, time\n"
          "for i in range(300): print('line %04d end' % i, flush=True)\n"
          "for i in range(300, 600): print('line %04d end' % i, flush=True); time.sleep(0.1)\n")
FAILING = ("import sys; name = sys.argv[1].rsplit('/', 1)[-1]; print('reading', name)\n"
           "print('\\x1b[31m' + name + ': [bold]cannot parse header[/bold]\\x1b[0m', "
           "file=sys.stderr)\n"
           "sys.exit(3 if 'bad' in name else open(sys.argv[2], 'w').close())\n")


def written(path) -> int:
    """How many lines the job has written to its log."""
    return path.read_text(encoding="utf-8").count("\n")


async def test_the_log_tail_opens_at_the_end_and_follows_until_scrolled_up(workspace):
    ws = workspace(["talk.bin"], flags=["-c", CHATTY, "{input_file}", "{output_file}"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.model is not None and app.controller.started)
        row = app.model.rows[1]
        await until(pilot, lambda: row.log_path.exists() and written(row.log_path) >= 300)
        select(app, 1)
        await pilot.press("enter")
        log = app.screen.query_one(Log)
        # At open: the newest line written is on screen.
        await until(pilot, lambda: log.line_count >= 300)
        newest = log.lines[-1]
        await until(pilot, lambda: newest in screen_text(app))
        assert "line 0000 end" not in screen_text(app)
        # Lines written later appear at the bottom while the view is there.
        await until(pilot, lambda: log.line_count >= 320)
        await until(pilot, lambda: log.lines[-1] in screen_text(app) and log.is_vertical_scroll_end)
        # Scrolled up, the view stays where the operator reads...
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause(0.1)
        count = log.line_count
        await until(pilot, lambda: log.line_count >= count + 5)
        await pilot.pause(0.2)
        assert log.scroll_y == 0 and "line 0000 end" in screen_text(app)
        # ... and back at the bottom it follows again.
        log.scroll_end(animate=False, immediate=True)
        count = log.line_count
        await until(pilot, lambda: log.line_count >= count + 5)
        await until(pilot, lambda: log.lines[-1] in screen_text(app))
        app.controller.shutdown()
        await until(pilot, lambda: app.controller.done)


async def test_finished_and_detail_screens_name_the_failure_in_its_own_words(workspace):
    ws = workspace(["bad.bin", "good.bin"], flags=["-c", FAILING, "{input_file}", "{output_file}"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.controller.done, timeout=30)
        reason = "bad.bin: [bold]cannot parse header[/bold] (exit 3)"
        await until(pilot, lambda: reason in screen_text(app))
        assert app.model.rows[1].state is JobState.FAILED
        assert "\x1b" not in screen_text(app)
        await pilot.press("enter")
        await until(pilot,
                    lambda: "reason: bad.bin: [bold]cannot parse header[/bold]" in screen_text(app))
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 1


# Its last words end no line: the log's last line is still a line of the detail's tail.
UNENDED = "import sys; print('line 1'); sys.stdout.write('final words'); sys.exit(3)\n"
# One line longer than the tail the detail starts with (64 KiB), then 1 KiB lines exactly
# filling the tail, so that the tail starts right after a line's end.
LONG_LINE = "import sys; sys.stdout.write('x' * 100_000 + ' the end\\n'); sys.exit(3)\n"
WHOLE_LINES = "import sys; sys.stdout.write(('y' * 1023 + '\\n') * 100); sys.exit(3)\n"


async def detail_log_lines(workspace, name: str, script: str) -> list[str]:
    """The lines the detail screen's log shows for a job running `script`, once it ended."""
    ws = workspace([name], flags=["-c", script, "{input_file}", "{output_file}"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.controller.done, timeout=30)
        await pilot.press("enter")
        log = app.screen.query_one(Log)
        await until(pilot, lambda: log.line_count > 0)
        app.screen.refresh_view()  # one more look at the log: nothing more may come
        await pilot.pause()
        lines = list(log.lines)
        await pilot.press("escape", "q")
    return lines


async def test_the_detail_shows_the_last_words_of_an_ended_job_that_end_no_line(workspace):
    assert await detail_log_lines(workspace, "unended.bin", UNENDED) == ["line 1", "final words"]


async def test_a_tail_that_starts_inside_a_line_shows_it_marked_as_cut(workspace):
    (line, ) = await detail_log_lines(workspace, "long.bin", LONG_LINE)
    assert line.startswith("…x") and line.endswith("x the end") and len(line) < 100_000
    lines = await detail_log_lines(workspace, "whole.bin", WHOLE_LINES)
    assert lines == ["y" * 1023] * 64, "a tail that starts at a line's start cuts nothing"


# The screen's own escape sequences aside, none of a name's may reach the terminal: an OSC in
# a name retitled the pane, an SGR reversed the detail's header and broke its border.
NASTY = "bad\x1b]0;PWNED\x07\x1b[7mREV\tx.bin"
SHOWN = "bad\\x1b]0;PWNED\\x07\\x1b[7mREV\\tx.bin"


async def test_a_name_s_escapes_are_shown_not_sent_on_every_screen_that_names_it(workspace):
    ws = workspace([NASTY], flags=["-c", FAILING, "{input_file}", "{output_file}"])
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.controller.done, timeout=30)
        await until(pilot, lambda: f"#1 {SHOWN}" in screen_text(app))  # the finished screen
        assert "\x1b" not in screen_text(app) and "\x07" not in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: f"#1 {SHOWN}" in screen_text(app))  # the detail screen
        assert "\x1b" not in screen_text(app) and "\t" not in screen_text(app)
        # The run is over, so nothing can be killed or cancelled: the dialog is pushed by hand.
        app.push_screen(ConfirmKill(1, NASTY, JobState.QUEUED))
        await until(pilot, lambda: f"#1 {SHOWN}?" in screen_text(app))
        assert "\x1b" not in screen_text(app)


async def test_the_finished_screen_names_the_inputs_no_job_ran_for(workspace):
    """Missing inputs make the exit code 1 but have no row: the screen said 'No failures.'"""
    ws = workspace(["a.bin", "gone.bin", "b.bin"],
                   flags=["-c", FAILING, "{input_file}", "{output_file}"])
    (ws.root / "in" / "gone.bin").unlink()
    listing = ws.root / "inputs.txt"
    listing.write_text(listing.read_text(encoding="utf-8") + "in/never\x1b[2J.bin\n",
                       encoding="utf-8")
    app = make_app(ws.config, max_procs=1)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.controller.done, timeout=30)
        await until(pilot, lambda: "2 inputs never ran" in screen_text(app))
        text = screen_text(app)
        assert f"line 2  {ws.root / 'in' / 'gone.bin'}  missing" in text
        assert f"line 4  {ws.root / 'in' / 'never'}\\x1b[2J.bin  missing" in text
        assert "No failures." not in text and "\x1b" not in text
        await pilot.press("q")
    assert app.return_code == 1
