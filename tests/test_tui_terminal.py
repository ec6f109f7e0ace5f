"""The real program in a real terminal: `python -m orch_tui` in a tmux pane.

Textual's pilot proves the screens; this proves what only a terminal shows: that the app draws
in 80x24 with TERM=xterm-256color, TERM=screen and NO_COLOR, that keys typed on a tty reach it,
that it survives SIGWINCH, that a dead terminal (SIGHUP) closes the screen and leaves the run,
in a process of its own, going to the end, and that jobs never hold the terminal. Every wait
polls the screen, a file or /proc."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring
from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orch_tui.core.lock import held_by
from tests.helpers import (Workspace, alive, kill_quietly, process_runs, process_state,
                           write_workspace)
from tests.tmux import Terminal, orch_command, read_int, wait_until

COLOR = {"TERM": "xterm-256color"}
NAMES = ("clip01.bin", "clip02.bin", "clip03.bin", "clip04.bin")


@pytest.fixture(name="terminal")
def terminal_fixture(tmp_path: Path) -> Iterator[Terminal]:
    """An 80x24 tmux terminal of its own; the server is killed whatever the test's outcome."""
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


@pytest.fixture(name="cleanup")
def cleanup_fixture() -> Iterator[list[int]]:
    """Pids to SIGKILL at the end if a failing test left them behind."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        kill_quietly(pids)


def job_pids(pidfile: Path,
             count: int,
             timeout: float = 10.0,
             detail: Callable[[], str] | None = None) -> dict[str, int]:
    """Wait until `count` workers wrote their pid (tests/workers/job.py --pidfile); map each
    input name (from the worker's command line) to its pid."""

    def read() -> list[int]:
        try:
            text = pidfile.read_text(encoding="ascii")
        except FileNotFoundError:
            return []
        return [int(line.split()[0]) for line in text.splitlines() if line.strip()]

    pids = wait_until(lambda: len(read()) >= count and read(), timeout,
                      f"{count} worker pid(s) in {pidfile}", detail)
    names = {}
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        inputs = [arg.decode() for arg in argv if b"/in/" in arg]
        if inputs:
            names[Path(inputs[0]).name] = pid
    return names


def row_of(screen: str, name: str) -> str:
    """The table line showing input `name`."""
    for line in screen.splitlines():
        if f" {name} " in line:
            return line
    raise AssertionError(f"{name} not in the table:\n{screen}")


def unboxed(screen: str) -> list[str]:
    """The screen's lines without the run screen's panel borders at their sides."""
    return [line.strip().strip("│").strip() for line in screen.rstrip("\n").splitlines()]


def progress_line(lines: list[str]) -> str:
    """The header panel's progress line (done/total, the limit), or ''."""
    return next((line for line in lines if "/" in line and "limit" in line), "")


def run_screen(*states: tuple[str, str], names: tuple[str, ...] = ()):
    """A screen predicate for a whole run screen (it is drawn in several frames): the progress
    line, the table header, a row for each of `names`, each (name, state) of `states` and the
    footer on the last line."""

    def check(screen: str) -> bool:
        lines = unboxed(screen)
        if not lines or not progress_line(lines):
            return False
        if not any(line.lstrip().startswith("# input") for line in lines):
            return False
        if "Pause" not in lines[-1] or "Quit" not in lines[-1]:
            return False
        rows = [line for line in lines if re.match(r"\s*●?\s*\d+ ", line)]
        if not all(any(f" {name} " in row for row in rows) for name in names):
            return False
        return all(
            any(f" {name} " in row and f" {state} " in row for row in rows)
            for name, state in states)

    return check


def hues(styled: str) -> set[str]:
    """The non-grey colours set by SGR sequences: 256-colour indexes, 24-bit triples and the
    basic red...cyan (30-36, 40-46, 90-96, 100-106)."""
    found = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", styled):
        codes = [int(code) for code in params.split(";") if code]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code in (38, 48) and codes[i + 1:i + 2] == [5]:
                if not _grey_index(codes[i + 2]):
                    found.add(f"{code};5;{codes[i + 2]}")
                i += 3
            elif code in (38, 48) and codes[i + 1:i + 2] == [2]:
                red, green, blue = codes[i + 2:i + 5]
                if not red == green == blue:
                    found.add(f"{code};2;{red};{green};{blue}")
                i += 5
            else:
                if code % 10 in range(1, 7) and code // 10 in (3, 4, 9, 10):
                    found.add(str(code))
                i += 1
    return found


def style_at(styled_line: str, word: str) -> tuple[int | None, bool]:
    """(256-colour foreground index, bold) in effect where `word` starts in a line captured
    with its SGR sequences (tmux writes them as 38;5;N)."""
    foreground: int | None = None
    bold = False
    for piece in re.split(r"(\x1b\[[0-9;]*m)", styled_line):
        match = re.fullmatch(r"\x1b\[([0-9;]*)m", piece)
        if match is None:
            if word in piece:
                return foreground, bold
            continue
        codes = [int(code) for code in match.group(1).split(";") if code] or [0]
        i = 0
        while i < len(codes):
            if codes[i] == 0:
                foreground, bold = None, False
            elif codes[i] == 1:
                bold = True
            elif codes[i] == 38 and codes[i + 1:i + 2] == [5]:
                foreground = codes[i + 2]
                i += 2
            elif codes[i] in (38, 48) and codes[i + 1:i + 2] == [2]:
                i += 4
            elif codes[i] == 48 and codes[i + 1:i + 2] == [5]:
                i += 2
            i += 1
    raise AssertionError(f"{word!r} not in {styled_line!r}")


def _grey_index(index: int) -> bool:
    """Whether a 256-colour index is black, white or a grey."""
    if index in (0, 7, 8, 15) or index >= 232:
        return True
    if 16 <= index <= 231:
        red, rest = divmod(index - 16, 36)
        green, blue = divmod(rest, 6)
        return red == green == blue
    return False


def make_workspace(tmp_path: Path, count: int, seconds: float) -> tuple[Workspace, Path]:
    """`count` jobs of `seconds` each whose workers append their pid to a pidfile."""
    pidfile = tmp_path / "workers.pid"
    ws = write_workspace(tmp_path / "ws",
                         count,
                         worker_args=["--seconds",
                                      str(seconds), "--pidfile",
                                      str(pidfile)])
    return ws, pidfile


def start_run(terminal: Terminal,
              ws: Workspace,
              env: dict[str, str],
              *,
              max_procs: int = 2) -> Path:
    """`orch-tui config.yaml --yes --max-procs N` in the pane; the file its exit code goes to."""
    rc_file = terminal.workdir / "rc"
    command = orch_command(["config.yaml", "--yes", "--max-procs",
                            str(max_procs)],
                           env=env,
                           rc_file=rc_file)
    terminal.start(command, cwd=ws.root)
    return rc_file


def exit_code(rc_file: Path, timeout: float = 10.0) -> int:
    """The exit code the pane's shell wrote once the program ended."""
    wait_until(lambda: read_int(rc_file) is not None, timeout, "the program to exit")
    code = read_int(rc_file)
    assert code is not None
    return code


@pytest.mark.parametrize("env", [
    pytest.param(COLOR, id="xterm-256color"),
    pytest.param({"TERM": "screen"}, id="screen"),
    pytest.param({
        "TERM": "xterm-256color",
        "NO_COLOR": "1"
    }, id="no-color"),
])
def test_run_screen_fits_80x24_then_finishes_and_q_exits_0(tmp_path, terminal, env):
    ws, _pidfile = make_workspace(tmp_path, 3, 2)
    rc_file = start_run(terminal, ws, env)

    screen = terminal.wait_for(run_screen(("clip01.bin", "running"), names=NAMES[:3]),
                               what="the run screen with job 1 running")
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen
    # The header panel: a progress bar with done/total, the limit and why.
    progress = progress_line(unboxed(screen))
    assert re.search(r"\b[0-3]/3\b", progress) and "limit 2" in progress, screen
    assert "CPU" in screen and "MEM" in screen and "DISK" in screen, screen
    # The table: its header, every job with its full name and state.
    header = next(line for line in unboxed(screen) if line.lstrip().startswith("# input"))
    for column in ("state", "elapsed", "prog", "cpu", "rss", "out"):
        assert column in header.split(), header
    for name in ("clip01.bin", "clip02.bin", "clip03.bin"):
        assert re.search(r"(running|queued|succeeded)", row_of(screen, name)), screen
    assert "queued" in row_of(screen, "clip03.bin"), screen
    # The footer, on the last line, shows every run key including the ones that matter most.
    footer = lines[-1]
    for label in ("Pause", "Kill", "Requeue", "All", "Detail", "Filter", "Help", "Quit"):
        assert label in footer, f"{label!r} not in the footer: {footer!r}"
    if "NO_COLOR" in env:
        # No colour, but the selected row must still stand out: reverse video on job 1's line.
        styled = terminal.styled_screen().splitlines()
        row = next(line for line in styled if "clip01.bin" in line)
        assert re.search(r"\x1b\[(?:[0-9]+;)*7(?:;[0-9]+)*m", row), repr(row)
        # Textual renders NO_COLOR in shades of grey: no hue anywhere on the screen.
        assert not hues("\n".join(styled)), hues("\n".join(styled))
        # A running job's state is light and bold, not the dark grey $primary turns into.
        running = next(line for line in styled if "clip02.bin" in line and "running" in line)
        foreground, bold = style_at(running, "running")
        assert bold and foreground is not None and foreground >= 250, repr(running)

    screen = terminal.wait_for(
        lambda s: "Finished: exit code 0" in s and "No failures." in s and "Quit" in s,
        timeout=15,
        what="the finished screen")
    assert re.search(r"succeeded\s+3", screen), screen
    terminal.send("q")
    assert exit_code(rc_file) == 0
    outputs = sorted(path.name for path in ws.output_dir.iterdir() if path.is_file())
    assert outputs == ["clip01_out.bin", "clip02_out.bin", "clip03_out.bin"]


def test_space_pauses_and_resumes_then_quit_modal_escape_and_q_k_stops(tmp_path, terminal, cleanup):
    ws, pidfile = make_workspace(tmp_path, 3, 12)
    rc_file = start_run(terminal, ws, COLOR)
    pids = job_pids(pidfile, 2)
    cleanup.extend(pids.values())
    first = pids["clip01.bin"]
    terminal.wait_for(run_screen(("clip01.bin", "running"), ("clip02.bin", "running")),
                      what="jobs 1 and 2 running")

    # The cursor starts on job 1: space stops its process, space again lets it go on.
    terminal.send("Space")
    terminal.wait_for(run_screen(("clip01.bin", "paused")), what="job 1 paused")
    wait_until(lambda: process_state(first) == "T", 5, f"pid {first} in state T")
    assert process_runs(pids["clip02.bin"]), "space must pause only job 1"
    terminal.send("Space")
    terminal.wait_for(run_screen(("clip01.bin", "running")), what="job 1 running again")
    wait_until(lambda: process_runs(first), 5, f"pid {first} running again")

    # q asks; escape changes nothing.
    terminal.send("q")
    terminal.wait_for("Leave the run?")
    terminal.send("Escape")
    terminal.wait_for(lambda s: "Leave the run?" not in s and run_screen(("clip01.bin", "running"))
                      (s),
                      what="the run screen back")
    assert all(alive(pid) for pid in pids.values())
    assert read_int(rc_file) is None, "escape must not quit"

    # q k: stop the run (its jobs killed), as `orch-tui stop` does: 143.
    terminal.send("q")
    terminal.wait_for("Leave the run?")
    terminal.send("k")
    assert exit_code(rc_file) == 143
    for pid in pids.values():
        wait_until(lambda pid=pid: not alive(pid), 5, f"worker {pid} gone")
    assert len(pidfile.read_text(encoding="ascii").splitlines()) == 2, "job 3 must not start"
    assert not any(path.is_file() for path in ws.output_dir.iterdir()), "no partial output kept"


def test_x_asks_n_keeps_the_job_y_kills_it(tmp_path, terminal, cleanup):
    ws, pidfile = make_workspace(tmp_path, 2, 12)
    rc_file = start_run(terminal, ws, COLOR)
    pids = job_pids(pidfile, 2)
    cleanup.extend(pids.values())
    terminal.wait_for(run_screen(("clip01.bin", "running")), what="job 1 running")

    terminal.send("x")
    terminal.wait_for("Kill job #1 clip01.bin?")
    terminal.send("n")
    terminal.wait_for(lambda s: "Kill job" not in s and run_screen(("clip01.bin", "running"))(s),
                      what="the dialog gone")
    assert alive(pids["clip01.bin"])

    terminal.send("x")
    terminal.wait_for("Kill job #1 clip01.bin?")
    terminal.send("y")
    terminal.wait_for(run_screen(("clip01.bin", "killed"), ("clip02.bin", "running")),
                      what="job 1 killed")
    wait_until(lambda: not alive(pids["clip01.bin"]), 5, "job 1's process gone")
    assert alive(pids["clip02.bin"]), "x must kill only the selected job"

    terminal.send("q")
    terminal.wait_for("Leave the run?")
    terminal.send("k")
    assert exit_code(rc_file) == 143
    wait_until(lambda: not alive(pids["clip02.bin"]), 5, "job 2's process gone")


def test_resize_to_120x40_and_back_redraws_and_adds_the_node_column(tmp_path, terminal, cleanup):
    ws, pidfile = make_workspace(tmp_path, 3, 12)
    rc_file = start_run(terminal, ws, COLOR)
    cleanup.extend(job_pids(pidfile, 2).values())
    screen = terminal.wait_for(run_screen(("clip02.bin", "running"), names=NAMES[:3]),
                               what="job 2 running")
    assert "node/pid" not in screen, "80 columns have no room for node/pid"

    terminal.resize(120, 40)
    screen = terminal.wait_for(
        lambda s: "node/pid" in s and len(s.splitlines()) == 40 and run_screen(names=NAMES[:3])(s),
        what="the whole table with its node/pid column at 120x40")
    lines = screen.splitlines()
    assert any(len(line) > 80 for line in lines), "the app must use the wider terminal"
    assert all(len(line) <= 120 for line in lines)
    # node/pid shows where each job runs: host:pid (the pid may be cut on a long host name).
    assert re.search(r"running\s+\S+:\d*", row_of(screen, "clip01.bin")), screen

    terminal.resize(80, 24)
    screen = terminal.wait_for(
        lambda s: "node/pid" not in s and len(s.splitlines()) == 24 and run_screen(
            ("clip01.bin", "running"), names=NAMES[:3])(s),
        what="the 80-column table again")
    lines = screen.splitlines()
    assert all(len(line) <= 80 for line in lines) and "Kill" in lines[-1], screen
    assert read_int(rc_file) is None, "the app must survive the resizes"

    terminal.send("q")
    terminal.wait_for("Leave the run?")
    terminal.send("k")
    assert exit_code(rc_file) == 143


def program_report(pid: int, ws: Workspace, pidfile: Path, reaped: Path) -> str:
    """What to show when the program misbehaves after SIGHUP: its state, where it sleeps, its
    fds, run.log and who exited with what."""
    parts = [f"program {pid}: state {process_state(pid)}"]
    try:
        for task in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            wchan = Path(f"/proc/{pid}/task/{task}/wchan").read_text(encoding="ascii")
            parts.append(f"thread {task}: state {process_state(int(task))}, in {wchan or '-'}")
    except OSError as exc:
        parts.append(f"threads: {exc}")
    try:
        parts.append("fds: " + ", ".join(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}"
                                         for fd in os.listdir(f"/proc/{pid}/fd")))
    except OSError as exc:
        parts.append(f"fds: {exc}")
    for label, path in (("run.log", ws.output_dir / ".orch-tui" / "run.log"), ("workers", pidfile),
                        ("reaped (pid exit)", reaped)):
        text = path.read_text(encoding="utf-8") if path.exists() else "(none)"
        parts.append(f"--- {label}:\n{text}")
    return "\n".join(parts)


def start_reaped(terminal: Terminal, ws: Workspace, pid_file: Path) -> int:
    """`orch-tui config.yaml --yes --max-procs 2` in the pane under the subreaper (once tmux is
    gone the program is its orphan, so its exit code is seen); the program's pid."""
    command = orch_command(["config.yaml", "--yes", "--max-procs", "2"],
                           env=COLOR,
                           pid_file=pid_file)
    terminal.start(command, cwd=ws.root, reap=True)
    pid = wait_until(lambda: read_int(pid_file), 10, "the program's pid")
    assert pid is not None  # wait_until returns a true value or raises
    return pid


def test_sighup_closes_the_screen_and_the_run_in_its_own_process_goes_on_to_the_end(
        tmp_path, terminal, cleanup):
    ws, pidfile = make_workspace(tmp_path, 4, 3)
    pid = start_reaped(terminal, ws, tmp_path / "orch.pid")
    cleanup.append(pid)
    terminal.wait_for(run_screen(("clip02.bin", "running")), what="job 2 running")
    started = job_pids(pidfile, 2)
    cleanup.extend(started.values())
    assert set(started) == {"clip01.bin", "clip02.bin"}
    # The run is a process of its own, in a session of its own, with no terminal.
    run_pid = _run_pid(ws)
    cleanup.append(run_pid)
    assert run_pid != pid
    run_stat = Path(f"/proc/{run_pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    assert run_stat[3] != str(os.getsid(pid)) and run_stat[4] == "0", run_stat

    def diagnose() -> str:
        return program_report(run_pid, ws, pidfile, terminal.reaped)

    terminal.kill_server()  # the pane's terminal is gone: the kernel sends SIGHUP (and SIGCONT)
    # The screen goes (it leaves the run, as `d` does: 0); the run never noticed.
    assert terminal.exit_status(pid, timeout=15, detail=diagnose) == 0
    assert alive(run_pid), "the run must survive the terminal\n" + diagnose()
    # Jobs 3 and 4 start after the hangup: the run goes on, it is not just draining.
    cleanup.extend(job_pids(pidfile, 4, timeout=10, detail=diagnose).values())
    wait_until(lambda: not alive(run_pid), 30, "the run to end by itself", diagnose)

    log = (ws.output_dir / ".orch-tui" / "run.log").read_text(encoding="utf-8")
    final = log.strip().splitlines()[-1].split(" ", 1)[1]  # after run.log's timestamp
    assert final.startswith("done: 4 succeeded, 0 failed, 0 killed"), log
    assert final.endswith("(exit 0)"), log
    for source in ws.inputs:
        output = ws.output_dir / source.name.replace(".bin", "_out.bin")
        assert output.read_bytes() == source.read_bytes(), f"{output} incomplete"
    assert sorted(p.name for p in ws.output_dir.iterdir() if p.is_file()) == [
        "clip01_out.bin", "clip02_out.bin", "clip03_out.bin", "clip04_out.bin"
    ]
    assert len(pidfile.read_text(encoding="ascii").splitlines()) == 4, "each job ran once"


def test_sighup_on_the_finished_screen_ends_the_screen_with_the_run_s_code(tmp_path, terminal):
    """Nothing is left to detach from: the screen must not outlive its terminal (it did, once
    a detach refused a finished run), and it ends as `q` would, with the run's exit code."""
    ws = write_workspace(tmp_path / "ws", 2, worker_args=["--exit", "4"])
    pid = start_reaped(terminal, ws, tmp_path / "orch.pid")
    terminal.wait_for(lambda s: "Finished: exit code 1" in s and "Quit" in s,
                      what="the finished screen")
    terminal.kill_server()  # SIGHUP (and SIGCONT) to the program
    assert terminal.exit_status(pid, timeout=15) == 1


def _run_pid(ws: Workspace) -> int:
    """The pid of the run holding the workspace's output folder (its lock's holder)."""
    return wait_until(lambda: held_by(ws.output_dir), 10, "the run's pid")


def test_jobs_never_hold_the_terminal(tmp_path, terminal, cleanup):
    ws, pidfile = make_workspace(tmp_path, 2, 12)
    rc_file = start_run(terminal, ws, COLOR)
    pids = job_pids(pidfile, 2)
    cleanup.extend(pids.values())
    terminal.wait_for(run_screen(("clip02.bin", "running")), what="job 2 running")
    pane_tty = terminal.tmux("display-message", "-p", "-t", "t", "#{pane_tty}").stdout.strip()
    assert pane_tty.startswith("/dev/pts/")

    logs = ws.output_dir / ".orch-tui" / "logs"
    for name, pid in pids.items():
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert fds[0] == os.devnull, (name, fds)
        for fd in (1, 2):
            assert Path(fds[fd]).parent == logs / "000", (name, fds)
        assert not any(
            target.startswith("/dev/pts") or target == "/dev/tty"
            for target in fds.values()), (name, fds)
        # No controlling terminal at all (tty_nr, field 7 of /proc/PID/stat, is 0).
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        assert stat[4] == "0", (name, stat)

    terminal.send("q")
    terminal.wait_for("Leave the run?")
    terminal.send("k")
    assert exit_code(rc_file) == 143


def test_no_config_argument_opens_the_picker_on_the_current_folder(tmp_path, terminal):
    ws = write_workspace(tmp_path / "ws", 1)
    rc_file = terminal.workdir / "rc"
    terminal.start(orch_command([], env=COLOR, rc_file=rc_file), cwd=ws.root)

    def listed(screen: str, pattern: str) -> bool:
        return any(re.fullmatch(pattern, line.strip()) for line in screen.splitlines())

    # The screen is drawn in several frames: wait for the whole of it.
    screen = terminal.wait_for(lambda s: "Choose a config" in s and "Pick a config" in s and "Quit"
                               in s and listed(s, r"\W*config\.yaml") and listed(s, r"\W*\+ in"),
                               what="the picker listing config.yaml")
    assert "inputs.txt" not in screen, "only folders and YAML files are listed"
    assert len(screen.splitlines()) <= 24 and "Quit" in screen.splitlines()[-1], screen
    terminal.send("q")
    assert exit_code(rc_file) == 0


# A stand-in for vim: it says where it was asked to go, on the terminal the TUI handed over,
# waits for a key there, then deletes the bad line (as an operator would) and exits.
FAKE_VIM = """
import sys
with open(sys.argv[-1] + ".argv", "w") as record:
    record.write(repr(sys.argv[1:]))
print("fake vim at", sys.argv[1], "tty" if sys.stdin.isatty() else "no tty", flush=True)
sys.stdin.readline()
path = sys.argv[-1]
text = open(path).read().replace("bogus: 1\\n", "")
open(path, "w").write(text)
"""


def test_e_suspends_the_tui_for_the_editor_at_the_error_line_then_revalidates(tmp_path, terminal):
    ws = write_workspace(tmp_path / "ws", 1)
    config = ws.root / "config.yaml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write("bogus: 1\n")
    line = len(config.read_text(encoding="utf-8").splitlines())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    editor = bin_dir / "vim"
    editor.write_text(f"#!{sys.executable}\n{FAKE_VIM}", encoding="utf-8")
    editor.chmod(0o755)
    rc_file = terminal.workdir / "rc"
    env = {**COLOR, "VISUAL": shlex.quote(str(editor)), "EDITOR": "no-such-editor"}
    terminal.start(orch_command(["config.yaml"], env=env, rc_file=rc_file), cwd=ws.root)
    terminal.wait_for(lambda s: "Config error" in s and "Edit" in s.splitlines()[-1],
                      what="the config error with Edit in the footer")
    terminal.send("e")
    # The TUI is suspended: the editor owns the terminal, at the error's line.
    terminal.wait_for(f"fake vim at +{line} tty", what="the editor on the terminal")
    assert Path(f"{config}.argv").read_text(encoding="utf-8") == repr([f"+{line}", str(config)])
    terminal.send("Enter")
    screen = terminal.wait_for(lambda s: "Ready" in s and "Start" in s.splitlines()[-1],
                               what="the summary of the fixed config")
    assert "fake vim" not in screen, screen
    terminal.send("q")
    assert exit_code(rc_file) == 0
