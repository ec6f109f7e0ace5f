"""ConfigScreen: picker, located config errors, the preflight summary, start/edit/reload keys."""

# Test names state what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import ContentSwitcher, Input, Static, TextArea

from orch_tui.core.lock import held_by
from orch_tui.core.plan import load_plan
from orch_tui.tui.screens.config import (ConfigScreen, YamlTree, edit_argv, editor_command,
                                         summary_rows)
from tests.helpers import screen_text
from tests.test_tui_app import until

SIZES = [(80, 24), (120, 40)]


class Host(App):
    """A bare app that shows one ConfigScreen and records the plans it is asked to start."""

    def __init__(self, screen: ConfigScreen) -> None:
        super().__init__()
        self.config_screen = screen
        self.started: list = []

    def on_mount(self) -> None:
        self.push_screen(self.config_screen)

    def on_config_screen_start(self, message: ConfigScreen.Start) -> None:
        self.started.append(message.plan)


def config_text(extra: str = "") -> str:
    return f"""\
binary:
  path: {json.dumps(sys.executable)}
  flags:
    - "-c"
    - "pass"
    - "{{input_file}}"
    - "{{output_file}}"
directories:
  input_file_list: inputs.txt
  output_dir: out
  output_suffix: _out
{extra}"""


def write_config(root: Path,
                 names: tuple[str, ...] = ("a.bin", "b.bin"),
                 *,
                 listed: list[str] | None = None,
                 text: str | None = None) -> Path:
    """Real inputs under root/in, root/inputs.txt (default: the inputs) and root/config.yaml."""
    (root / "in").mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / "in" / name).write_bytes(b"x" * 1024)
    if listed is None:
        listed = [f"in/{name}" for name in names]
    (root / "inputs.txt").write_text("\n".join(listed) + "\n", encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(config_text() if text is None else text, encoding="utf-8")
    return config


def summary_text(screen: ConfigScreen) -> str:
    """The summary rows the screen shows, as plain text."""
    assert screen.plan is not None
    return "\n".join(f"{label} {text.plain}" for label, text in summary_rows(screen.plan))


async def settle(pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
async def test_valid_config_shows_summary(tmp_path: Path, size: tuple[int, int]) -> None:
    config = write_config(tmp_path, listed=["in/a.bin", "in/b.bin", "in/gone.bin", "in/a.bin"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_out.bin").write_bytes(b"done")
    screen = ConfigScreen(config, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert screen.error is None and screen.plan is not None
        assert len(screen.plan.jobs) == 2
        assert screen.query_one(ContentSwitcher).current == "summary-view"
        text = summary_text(screen)
        assert "2 valid, 1 missing or unusable, 1 duplicated" in text
        assert "line 3: missing" in text and str(tmp_path / "in" / "gone.bin") in text
        assert "line 4: duplicate of line 1" in text
        assert "found, executable" in text
        assert "2.00 KiB in total" in text
        assert f"{tmp_path / 'out'}  exists" in text
        assert "free" in text
        assert "1 of 2 jobs already have their output" in text and "--overwrite" in text
        example = f"{sys.executable} -c pass {tmp_path}/in/a.bin {tmp_path}/out/a_out.bin"
        assert example in text
        shown = screen_text(app)
        assert "Ready" in shown and "found, executable" in shown
        assert "Start" in shown and "Edit" in shown and "Back" not in shown
        assert screen.check_action("start", ()) is True


async def test_problem_list_is_capped(tmp_path: Path) -> None:
    listed = ["in/a.bin"] + [f"in/missing{i:02d}.bin" for i in range(14)]
    config = write_config(tmp_path, ("a.bin", ), listed=listed)
    text = "\n".join(text.plain for _, text in summary_rows(load_plan(config)))
    assert "line 2: missing" in text and "line 11: missing" in text
    assert "line 12:" not in text
    assert "and 4 more" in text
    assert "will be created" in text  # out/ does not exist yet
    assert "no job has an output yet" in text


@pytest.mark.parametrize("size", SIZES)
async def test_unknown_key_selects_offending_line(tmp_path: Path, size: tuple[int, int]) -> None:
    config = write_config(tmp_path, text=config_text("jobs:\n  retries: 1\n  colour: blue\n"))
    screen = ConfigScreen(config, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert screen.plan is None and screen.error is not None
        assert screen.error.line == 14
        message = str(screen.query_one("#error-message", Static).render())
        assert "unknown key 'colour'" in message and f"{config}:14:3" in message
        area = screen.query_one("#config-yaml", TextArea)
        assert area.display and area.read_only and area.show_line_numbers
        assert area.selection.start[0] == 13 and area.selection.end[0] == 13
        assert area.selected_text == "  colour: blue"
        assert "unknown key 'colour'" in screen_text(app)
        assert "colour: blue" in screen_text(app)  # scrolled into view even at 80x24


async def test_yaml_syntax_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, text=config_text("jobs:\n  retries: 1\n   timeout: 3\n"))
    screen = ConfigScreen(config, start_dir=tmp_path)
    async with Host(screen).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert screen.error is not None and "invalid YAML" in str(screen.error)
        assert screen.error.line == 14
        area = screen.query_one("#config-yaml", TextArea)
        assert area.display and area.selected_text == "   timeout: 3"


async def test_error_past_the_last_line_selects_the_last_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, text=config_text("jobs:\n  retries: [1, 2"))
    screen = ConfigScreen(config, start_dir=tmp_path)
    async with Host(screen).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert screen.error is not None and screen.error.line is not None
        area = screen.query_one("#config-yaml", TextArea)
        assert area.selection.start[0] == min(screen.error.line, area.document.line_count) - 1


async def test_missing_config_file_shows_only_the_message(tmp_path: Path) -> None:
    screen = ConfigScreen(tmp_path / "nope.yaml", start_dir=tmp_path)
    async with Host(screen).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert screen.error is not None and screen.plan is None
        assert "config file not found" in str(screen.query_one("#error-message", Static).render())
        assert not screen.query_one("#config-yaml", TextArea).display


async def test_error_without_line_shows_yaml_without_selection(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "inputs.txt").unlink()
    screen = ConfigScreen(config, start_dir=tmp_path)
    async with Host(screen).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert screen.error is not None and "input list not found" in str(screen.error)
        area = screen.query_one("#config-yaml", TextArea)
        assert area.display and "input_file_list" in area.text
        assert area.selection.start == area.selection.end


async def wait_for_tree(pilot, tree: YamlTree) -> None:
    """The directory tree has loaded (a worker fills it)."""
    await until(pilot, lambda: bool(tree.root.children))


async def test_picker_lists_yaml_and_folders_and_loads_choice(tmp_path: Path) -> None:
    write_config(tmp_path / "proj")
    (tmp_path / "other.yml").write_text("binary: {}\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("hi\n", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".secret.yaml").write_text("x: 1\n", encoding="utf-8")
    screen = ConfigScreen(None, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        tree = screen.query_one("#picker-tree", YamlTree)
        await wait_for_tree(pilot, tree)
        assert screen.focused is tree
        names = sorted(str(node.label) for node in tree.root.children)
        assert names == ["other.yml", "proj"]
        shown = screen_text(app)
        assert "+ proj" in shown and "notes.txt" not in shown
        assert not screen.check_action("back", ())
        proj = next(node for node in tree.root.children if str(node.label) == "proj")
        tree.move_cursor(proj)
        await pilot.press("enter")  # expands the folder
        await until(pilot, lambda: bool(proj.children))
        labels = sorted(str(node.label) for node in proj.children)
        assert labels == ["config.yaml", "in"]  # inputs.txt is hidden
        chosen = next(node for node in proj.children if str(node.label) == "config.yaml")
        tree.move_cursor(chosen)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.plan is not None
        assert screen.path == tmp_path / "proj" / "config.yaml"
        assert screen.query_one(ContentSwitcher).current == "summary-view"
        await pilot.press("escape")
        await settle(pilot)
        assert screen.query_one(ContentSwitcher).current == "picker"
        assert screen.plan is None and screen.focused is tree


async def test_picker_input_loads_typed_path(tmp_path: Path) -> None:
    write_config(tmp_path / "proj")
    screen = ConfigScreen(None, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen.query_one("#picker-input").focus()
        await pilot.press(*"proj/config.yaml", "enter")
        await settle(pilot)
        assert screen.plan is not None and screen.error is None
        await pilot.press("escape")
        await settle(pilot)
        screen.query_one("#picker-input", Input).value = ""
        screen.query_one("#picker-input").focus()
        await pilot.press(*"typo.yaml", "enter")
        await settle(pilot)
        assert screen.error is not None and "config file not found" in str(screen.error)
        await pilot.press("q")  # the hidden Input must not swallow it
        await settle(pilot)
    assert app.return_code == 0


async def test_enter_starts_only_a_valid_plan(tmp_path: Path) -> None:
    good = write_config(tmp_path / "good")
    screen = ConfigScreen(good, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.started == [screen.plan] and screen.plan is not None

    bad = write_config(tmp_path / "bad", text=config_text("bogus: 1\n"))
    screen = ConfigScreen(bad, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # Not offered on an error (issue 9 changed this: it was shown greyed out).
        assert screen.check_action("start", ()) is False
        await pilot.press("enter")
        await settle(pilot)
        assert not app.started


def write_editor(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-editor"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return script


async def test_edit_runs_editor_then_revalidates(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, text=config_text("bogus: 1\n"))
    editor = write_editor(
        tmp_path, "path = sys.argv[-1]\n"
        "text = open(path).read().replace('bogus: 1\\n', '')\n"
        "open(path, 'w').write(text)\n"
        "open(path + '.argv', 'w').write(repr(sys.argv[1:]))")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{editor} --wait")
    screen = ConfigScreen(config, start_dir=tmp_path)
    async with Host(screen).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert screen.plan is None
        assert isinstance(screen.focused, TextArea)  # letter keys must still reach the screen
        await pilot.press("e")  # headless: App.suspend is unsupported, so it runs unsuspended
        await settle(pilot)
        assert screen.error is None and screen.plan is not None
        assert (tmp_path / "config.yaml.argv").read_text() == repr(["--wait", str(config)])


async def test_reload_picks_up_changes_and_failed_editor_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    screen = ConfigScreen(config, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert screen.plan is not None
        config.write_text(config_text("bogus: 1\n"), encoding="utf-8")
        await pilot.press("r")
        await settle(pilot)
        assert screen.plan is None and "bogus" in str(screen.error)
        await pilot.press("e")
        await settle(pilot)
        assert any("cannot start editor" in str(n.message) for n in app._notifications)  # pylint: disable=protected-access
        assert screen.error is not None
        await pilot.press("q")
        await settle(pilot)
    assert app.return_code == 0


async def test_edit_opens_a_known_editor_at_the_error_line(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`e` runs $VISUAL (before $EDITOR) as `vim +14 config.yaml`, then shows the fixed
    config's summary."""
    config = write_config(tmp_path, text=config_text("jobs:\n  retries: 1\n  colour: blue\n"))
    (tmp_path / "bin").mkdir()
    editor = write_editor(
        tmp_path, "path = sys.argv[-1]\n"
        "text = open(path).read().replace('  colour: blue\\n', '')\n"
        "open(path, 'w').write(text)\n"
        "open(path + '.argv', 'w').write(repr(sys.argv[1:]))").rename(tmp_path / "bin" / "vim")
    monkeypatch.setenv("VISUAL", f"'{editor}'")
    monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    screen = ConfigScreen(config, start_dir=tmp_path)
    async with Host(screen).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert screen.error is not None and screen.error.line == 14
        await pilot.press("e")
        await settle(pilot)
        assert (tmp_path / "config.yaml.argv").read_text() == repr(["+14", str(config)])
        assert screen.error is None and screen.plan is not None
        assert screen.query_one(ContentSwitcher).current == "summary-view"


def test_edit_argv_gives_the_line_only_to_editors_that_take_it() -> None:
    config = Path("/cfg/config.yaml")
    for name in ("vi", "vim", "nvim", "nano", "emacs", "micro", "/usr/bin/vim"):
        assert edit_argv([name], config, 7) == [name, "+7", "/cfg/config.yaml"]
    assert edit_argv(["emacs", "-nw"], config, 7) == ["emacs", "-nw", "+7", "/cfg/config.yaml"]
    assert edit_argv(["code", "-w"], config, 7) == ["code", "-w", "/cfg/config.yaml"]
    assert edit_argv(["vim"], config, None) == ["vim", "/cfg/config.yaml"]


async def test_the_footer_offers_only_what_works(tmp_path: Path) -> None:
    bad = write_config(tmp_path / "bad", text=config_text("bogus: 1\n"))
    good = write_config(tmp_path / "good")
    screen = ConfigScreen(None, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "Refresh" in footer and "Revalidate" not in footer, footer
        assert "Start" not in footer and "Edit" not in footer and "Back" not in footer, footer
        screen.load(bad)
        await settle(pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "Start" not in footer and "Refresh" not in footer, footer
        assert all(word in footer for word in ("Edit", "Revalidate", "Back", "Quit")), footer
        screen.load(good)
        await settle(pilot)
        footer = screen_text(app).splitlines()[-1]
        assert all(word in footer for word in ("Start", "Edit", "Revalidate", "Back")), footer
        await pilot.press("escape")
        await settle(pilot)
        (tmp_path / "new.yaml").write_text("x: 1\n", encoding="utf-8")
        await pilot.press("r")  # in the picker: rescans the tree
        tree = screen.query_one("#picker-tree", YamlTree)
        await until(pilot,
                    lambda: any(str(node.label) == "new.yaml" for node in tree.root.children))


# The other orchestrator: a process holding the folder and its lock file as a run does.
HOLDER = """
import sys
from pathlib import Path
from orch_tui.core.lock import RunLock
from orch_tui.core.statedir import StateDir
lock = RunLock(Path(sys.argv[1]))
lock.acquire_folder()
lock.acquire_file(StateDir.open(Path(sys.argv[1])))
print("held", flush=True)
sys.stdin.read()
"""


async def test_a_folder_another_orchestrator_holds_is_named_before_enter(tmp_path: Path) -> None:
    """The preflight says who holds the output folder; looking takes no lock, so the holder
    keeps it and, once it is gone, `r` shows the folder free."""
    config = write_config(tmp_path)
    output = tmp_path / "out"
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(output)],
                          stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE,
                          text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        screen = ConfigScreen(config, start_dir=tmp_path)
        app = Host(screen)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            said = f"held by another orch-tui (pid {holder.pid})"
            assert said in summary_text(screen) and said in screen_text(app)
            assert holder.poll() is None and held_by(output) == holder.pid  # still held
            holder.communicate("")  # the other run ends: its locks go with it
            await pilot.press("r")
            await settle(pilot)
            assert "held by another" not in summary_text(screen)


def test_editor_command_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "code -w")
    assert editor_command() == ["code", "-w"]
    monkeypatch.delenv("EDITOR")
    monkeypatch.setenv("VISUAL", "'my editor' --flag")
    assert editor_command() == ["my editor", "--flag"]
    monkeypatch.delenv("VISUAL")
    assert editor_command() == ["vi"]
    monkeypatch.setenv("EDITOR", "  ")
    assert editor_command() == ["vi"]
    monkeypatch.setenv("EDITOR", "'unbalanced")
    with pytest.raises(ValueError):
        editor_command()
    monkeypatch.setenv("VISUAL", "nano")
    assert editor_command() == ["nano"]  # $VISUAL first, as git and crontab read them


@pytest.mark.parametrize("size", SIZES)
async def test_untrusted_paths_render_literally(tmp_path: Path, size: tuple[int, int]) -> None:
    root = tmp_path / "[red]x"
    config = write_config(root, ("[bold]clip.bin", ))
    screen = ConfigScreen(config, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert screen.plan is not None
        shown = screen_text(app)
        assert "[red]x" in shown
        assert "[bold]clip" in summary_text(screen)

    bad = write_config(tmp_path / "[red]y", text=config_text('"[oops]": 1\n'))
    screen = ConfigScreen(bad, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert screen.error is not None
        assert "[red]y" in screen_text(app)
        assert "[oops]" in str(screen.query_one("#error-message", Static).render())


async def test_picker_names_and_a_config_s_text_show_their_escapes_never_send_them(
        tmp_path: Path) -> None:
    """An OSC in a file name retitled the terminal and a newline cut the name; a config whose
    text holds one did the same from the error view."""
    nasty = "x\x1b]0;PWNED\x07\nline.yaml"
    (tmp_path / nasty).write_text("# \x1b]0;FROMCONTENT\x07 comment\nbinary: 3\n", encoding="utf-8")
    screen = ConfigScreen(None, start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(100, 30)) as pilot:
        tree = screen.query_one("#picker-tree", YamlTree)
        await wait_for_tree(pilot, tree)
        assert "x\\x1b]0;PWNED\\x07\\nline.yaml" in screen_text(app)
        assert "\x1b" not in screen_text(app) and "\x07" not in screen_text(app)
        (node, ) = tree.root.children
        tree.move_cursor(node)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.error is not None
        area = screen.query_one("#config-yaml", TextArea)
        assert area.text.startswith("# \\x1b]0;FROMCONTENT\\x07 comment\n")
        assert "\x1b" not in screen_text(app) and "\x07" not in screen_text(app)


async def test_choosing_a_fifo_named_yaml_says_so_and_never_blocks_the_screen(
        tmp_path: Path) -> None:
    """Its error view read the file to show it: open() of a FIFO waits for a writer."""
    os.mkfifo(tmp_path / "fifo.yaml")
    screen = ConfigScreen(tmp_path / "fifo.yaml", start_dir=tmp_path)
    app = Host(screen)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: screen.error is not None, timeout=10)
        assert "not a regular file" in str(screen.error)
        assert not screen.query_one("#config-yaml", TextArea).display
