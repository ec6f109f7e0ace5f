"""A run in a process of its own, which a terminal closing never touches.

The TUI starts every run this way and then attaches to it; `orch-tui --detach` starts one and
returns. The parent starts `python -m orch_tui --headless --ready-fd N ... CONFIG` in a new
session with stdin and stdout on /dev/null; that process forks once more and exits, so the run
is no session leader (it can never acquire a controlling terminal) and is nobody's child but
init's. The run says on descriptor N, in one JSON line, whether it started (its pid, control
socket and what starting it said) or why it refused (the message and exit code an OrchError
would have given), then closes N and sends stderr to run.log. The parent returns on that line;
a run that dies before it is told by the pipe closing, with its stderr as the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from orch_tui.core.controller import Launch, Spawned
from orch_tui.core.errors import OrchError
from orch_tui.core.plan import shell_quote
from orch_tui.core.statedir import StateDir
from orch_tui.core.textutil import printable

_T = TypeVar("_T")

#: The most a run's report or its dying words may take (a line, a traceback's tail).
_REPORT_LIMIT = 64 * 1024


class RunRefused(OrchError):
    """The run process refused to start (the folder is held, the journal is unusable, ...):
    its own message and exit code, as if it had run in the foreground."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _read_to_end(fd: int) -> bytes:
    """Everything written to the pipe `fd` until every writer closed it (then close it)."""
    chunks, size = [], 0
    try:
        while chunk := os.read(fd, 65536):
            if size < _REPORT_LIMIT:
                chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)[:_REPORT_LIMIT]


def _parse_report(line: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(line.decode("utf-8", "replace").strip() or "null")
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


#: Called (from a reader thread) with the lines of the input list read so far and their total.
Progress = Callable[[int, int], None]


def _read_report(fd: int, progress: Progress | None) -> dict[str, Any] | None:
    """The run's report from the pipe `fd`: its loading lines go to `progress` as they come,
    the last line is the report (None if the run died without one). Closes `fd`."""
    with os.fdopen(fd, "rb") as pipe:
        report = None
        for line in pipe:
            report = _parse_report(line[:_REPORT_LIMIT])
            if report is not None and "loading" in report:
                if progress is not None:
                    progress(int(report["loading"]), int(report.get("of", 0)))
                report = None
    return report


def _last_line(text: bytes) -> str:
    lines = [line for line in text.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].removeprefix("orch-tui: error: ") if lines else ""


def spawn_run(config: Path,
              flags: Sequence[str] = (),
              progress: Progress | None = None) -> Coroutine[Any, Any, Spawned]:
    """Start the run of `config` (with command-line `flags`) in a process of its own, at once;
    await the result to know it started: it returns once the control socket is bound, and
    raises RunRefused when the run would not start. Started before the first await, so the
    caller's own work (the TUI importing Textual) overlaps the run loading its list, whose
    progress goes to `progress` (from a thread)."""
    ready_r, ready_w = os.pipe()
    err_r, err_w = os.pipe()
    argv = [
        sys.executable, "-m", "orch_tui", "--headless", f"--ready-fd={ready_w}", *flags,
        str(Path(config).absolute())
    ]
    try:
        # pylint: disable-next=consider-using-with  # reaped by _started, which owns it
        process = subprocess.Popen(argv,
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL,
                                   stderr=err_w,
                                   pass_fds=(ready_w, ),
                                   start_new_session=True)
    except OSError:
        for fd in (ready_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(ready_w)
        os.close(err_w)
    return _started(process, ready_r, err_r, progress)


def _in_daemon_thread(function: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
    """`function(*args)` in a daemon thread: unlike asyncio.to_thread, whose executor the end
    of `asyncio.run` waits for, a TUI closed while its run is still loading (`q` on the
    starting screen) exits at once; the run goes on and reports to nobody."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def succeed(result: _T) -> None:
        if not future.done():
            future.set_result(result)

    def fail(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def work() -> None:
        try:
            try:
                result = function(*args)
            except BaseException as exc:  # pylint: disable=broad-exception-caught  # handed over
                loop.call_soon_threadsafe(fail, exc)
            else:
                loop.call_soon_threadsafe(succeed, result)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    threading.Thread(target=work, name="orch-tui run report", daemon=True).start()
    return future


async def _started(process: subprocess.Popen[bytes], ready_r: int, err_r: int,
                   progress: Progress | None) -> Spawned:
    report: dict[str, Any] | None = None
    try:
        report = await _in_daemon_thread(_read_report, ready_r, progress)
        if report is None:  # it died before it could say: its stderr says why
            why = _last_line(await asyncio.to_thread(_read_to_end, err_r))
            raise RunRefused(f"the run process ended before it started: {why or 'no reason given'}",
                             1)
    finally:
        if report is not None:
            os.close(err_r)
        await asyncio.to_thread(process.wait)  # the intermediate process exits at once
    return _spawned(report)


def _spawned(report: dict[str, Any]) -> Spawned:
    if not report.get("ok"):
        code = report.get("code")
        raise RunRefused(str(report.get("message")), code if isinstance(code, int) else 1)
    socket = report.get("socket")
    pid = int(report["pid"])
    if not isinstance(socket, str):
        raise RunRefused(
            f"the run started (pid {pid}) but serves no control socket: "
            f"{report.get('why') or 'see run.log'}; orch-tui status and wait still work", 1)
    return Spawned(pid=pid,
                   socket=Path(socket),
                   launch=Launch(notice=report.get("notice"),
                                 resume=report.get("resume"),
                                 where=report.get("where")))


def leave_terminal() -> None:
    """In the run process: a new session if not in one yet, then fork and let the first child
    exit, so the run is not a session leader and can never get a controlling terminal."""
    if os.getsid(0) != os.getpid():
        os.setsid()
    if os.fork() > 0:
        os._exit(0)  # pylint: disable=protected-access  # the intermediate: nothing to clean up


class ReadyPipe:
    """The run process's side of the report: one JSON line on `fd`, then closed."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        try:
            os.set_inheritable(fd, False)  # never into a job
        except OSError:
            self.fd = None  # not open: started by hand, nobody to tell

    def _send(self, message: dict[str, Any]) -> None:
        if self.fd is None:
            return
        data = (json.dumps(message) + "\n").encode()
        try:
            os.write(self.fd, data)
        except OSError:
            pass  # the parent went away: the run goes on regardless
        finally:
            os.close(self.fd)
            self.fd = None

    def loading(self, done: int, total: int) -> None:
        """How far loading the input list is (lines read, of all): a line before the report."""
        if self.fd is None:
            return
        try:
            os.write(self.fd, f'{{"loading": {done}, "of": {total}}}\n'.encode())
        except OSError:
            pass  # the parent went away: the report will say the same

    def refused(self, exc: OrchError) -> None:
        """The run will not start: why, and its exit code."""
        self._send({"ok": False, "message": str(exc), "code": exc.exit_code})

    def started(self, launch: Launch, socket: Path | None, why: str | None = None) -> None:
        """The run is going (its socket bound, or `why` not)."""
        self._send({
            "ok": True,
            "pid": os.getpid(),
            "socket": None if socket is None else str(socket),
            "why": why,
            "notice": launch.notice,
            "resume": launch.resume,
            "where": launch.where,
        })


def stderr_to_run_log(state: StateDir) -> None:
    """Once started, whatever the run writes to stderr (a warning, a crash's traceback) goes to
    run.log, not to the parent's pipe; /dev/null if run.log cannot be opened."""
    try:
        fd = state.open_file("run.log", os.O_WRONLY | os.O_APPEND)
    except (OSError, OrchError):
        fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 2)
    os.close(fd)


def detached_message(spawned: Spawned, output_dir: Path) -> str:
    """What `--detach` prints: the pid and how to find the run again."""
    folder = printable(shell_quote([str(output_dir)]))
    return (f"orch-tui: running in the background, pid {spawned.pid}\n"
            f"  watch:    orch-tui attach {folder}\n"
            f"  status:   orch-tui status {folder}\n"
            f"  wait:     orch-tui wait {folder}\n"
            f"  stop:     orch-tui stop {folder}\n"
            f"  progress: {printable(str(output_dir / '.orch-tui' / 'run.log'))}\n")
