"""A real terminal for end-to-end TUI tests: one tmux server per test, on its own socket.

The program under test runs in a tmux pane exactly as an operator would start it; tests read the
screen with `capture-pane` and type with `send-keys`. Every wait polls the screen or the file
system until a condition holds, with a timeout whose failure message shows the last screen.

Run as a script, this module is a subreaper: it starts tmux, then reaps every process orphaned
below it and records each one's exit status. That is how a test learns the exit code of a
program whose terminal (the tmux server) is gone: it is re-parented to the subreaper, not to
init, when its pane dies.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

TMUX = "/usr/bin/tmux"
PR_SET_CHILD_SUBREAPER = 36
T = TypeVar("T")
#: Never inherited by the terminal: a fixed COLUMNS/LINES would pin the app's size (Textual asks
#: shutil.get_terminal_size, which prefers them to the tty), and the rest is the outer session's.
SCRUBBED = ("COLUMNS", "LINES", "NO_COLOR", "COLORTERM", "TEXTUAL", "TMUX", "TMUX_PANE")


def clean_environment() -> dict[str, str]:
    """The test's environment without what would leak the outer terminal into the pane."""
    return {key: value for key, value in os.environ.items() if key not in SCRUBBED}


def wait_until(predicate: Callable[[], T],
               timeout: float = 15.0,
               what: str = "condition",
               detail: Callable[[], str] | None = None) -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` (and `detail()`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{extra}")
        time.sleep(0.05)


def read_int(path: Path) -> int | None:
    """An integer a shell wrote to `path`, None until it is there in full."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") and text.strip() else None


class Terminal:
    """One tmux server with one session of `width` x `height` running `command`."""

    def __init__(self, workdir: Path, *, width: int = 80, height: int = 24) -> None:
        self.workdir = workdir
        self.width = width
        self.height = height
        self.socket = f"orch-tui-test-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.reaper: subprocess.Popen | None = None
        self.reaped = workdir / "reaped.txt"

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one tmux client command against this test's server."""
        return subprocess.run([TMUX, "-u", "-L", self.socket, "-f", "/dev/null", *args],
                              check=check,
                              capture_output=True,
                              text=True,
                              env=clean_environment(),
                              timeout=10)

    def start(self, command: str, *, cwd: Path, reap: bool = False) -> None:
        """Open the session running `command` (one shell string); with `reap`, under the
        subreaper so orphans' exit statuses land in `self.reaped`."""
        argv = [
            TMUX, "-u", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x",
            str(self.width), "-y",
            str(self.height), "-c",
            str(cwd), command
        ]
        if not reap:
            subprocess.run(argv, check=True, timeout=10, env=clean_environment())
            return
        self.reaper = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, __file__, str(self.reaped), *argv],
            env=clean_environment())
        wait_until(lambda: self.tmux("has-session", "-t", "t", check=False).returncode == 0, 10,
                   "the tmux session")

    def screen(self) -> str:
        """The pane's text now, one line per row, trailing blanks dropped."""
        result = self.tmux("capture-pane", "-p", "-t", "t", check=False)
        return result.stdout if result.returncode == 0 else f"(no screen: {result.stderr})"

    def styled_screen(self) -> str:
        """The pane with its SGR escape sequences (to check attributes such as reverse)."""
        return self.tmux("capture-pane", "-p", "-e", "-t", "t").stdout

    def wait_for(self,
                 check: str | Callable[[str], bool],
                 timeout: float = 10.0,
                 what: str | None = None) -> str:
        """Poll the screen until it contains `check` (or `check(screen)` holds); the screen."""
        if isinstance(check, str):
            text = check
            test: Callable[[str], bool] = lambda screen: text in screen
            what = what or repr(text)
        else:
            test = check
        seen: list[str] = [""]

        def probe() -> str | None:
            seen[0] = self.screen()
            return seen[0] if test(seen[0]) else None

        screen = wait_until(probe, timeout, f"{what} on screen", lambda: "last screen:\n" + seen[0])
        assert screen is not None
        return screen

    def send(self, *keys: str) -> None:
        """Type keys (tmux key names: Space, Escape, Enter, or literal characters)."""
        self.tmux("send-keys", "-t", "t", *keys)

    def resize(self, width: int, height: int) -> None:
        """Resize the window as a terminal emulator would (the program gets SIGWINCH)."""
        self.tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))
        self.width, self.height = width, height

    def kill_server(self) -> None:
        """Close every pane: the programs in them lose their terminal (SIGHUP)."""
        self.tmux("kill-server", check=False)

    def exit_status(self, pid: int, timeout: float, detail: Callable[[], str] | None = None) -> int:
        """The exit code of `pid`, an orphan reaped by the subreaper (-N for signal N)."""

        def find() -> str | None:
            try:
                lines = self.reaped.read_text(encoding="ascii").splitlines()
            except FileNotFoundError:
                return None
            return next((line for line in lines if line.split()[0] == str(pid)), None)

        line = wait_until(find, timeout, f"pid {pid} to exit", detail)
        return int(line.split()[1])

    def close(self) -> None:
        """Kill the server and stop the subreaper: nothing of this test survives it."""
        self.kill_server()
        if self.reaper is not None:
            try:
                self.reaper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.reaper.kill()
                self.reaper.wait()


def orch_command(args: list[str],
                 *,
                 env: dict[str, str],
                 rc_file: Path | None = None,
                 pid_file: Path | None = None) -> str:
    """A shell line running `python -m orch_tui ARGS` with `env` (TERM, NO_COLOR...).

    With `pid_file` the shell writes its pid and execs the program (so that pid is the
    program's, and it is the session leader the kernel sends SIGHUP to); with `rc_file` the
    shell writes the exit code there."""
    program = shlex.join([sys.executable, "-m", "orch_tui", *args])
    if pid_file is not None:
        script = f"echo $$ > {shlex.quote(str(pid_file))}; exec {program}"
    elif rc_file is not None:
        script = f"{program}; echo $? > {shlex.quote(str(rc_file))}"
    else:
        script = f"exec {program}"
    unset = [option for key in SCRUBBED for option in ("-u", key)]
    assignments = [f"{key}={value}" for key, value in env.items()]
    return shlex.join(["env", *unset, *assignments, "sh", "-c", script])


def _reap(record: Path, argv: list[str]) -> int:
    """Become a subreaper, run `argv` (tmux), then reap orphans until none is left."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with subprocess.Popen(argv) as client:
        client.wait()
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        with open(record, "a", encoding="ascii") as handle:
            handle.write(f"{pid} {os.waitstatus_to_exitcode(status)}\n")


if __name__ == "__main__":
    sys.exit(_reap(Path(sys.argv[1]), sys.argv[2:]))
