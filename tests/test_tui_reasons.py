"""The TUI says why a job failed (finished and detail screens) and its log tail follows like
`less +F`, against real subprocess jobs driven by Textual's pilot."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

from textual.widgets import Log

from orch_tui.core.events import JobState
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
