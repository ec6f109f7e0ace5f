"""What the shell subcommands share: the folder a target names, the live run's control socket,
and failures as one line with their exit code (never a traceback)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path

from orch_tui.core import wire
from orch_tui.core.config import MAX_JOBS, config_output_dir
from orch_tui.core.control.client import ControlClient
from orch_tui.core.control.location import find_socket
from orch_tui.core.errors import OrchError
from orch_tui.core.runstatus import RunState, RunStatus, journal_status
from orch_tui.core.textutil import printable

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_RUN = 0, 1, 2, 3
#: `wait --timeout` ran out, as timeout(1) says it.
EXIT_TIMEOUT = 124
#: A live run answers its socket at once, but its snapshot of 100,000 jobs takes seconds to
#: read on a busy machine; one that has not answered within this is treated as gone.
CONNECT_TIMEOUT = 30.0
#: Targets: what every subcommand's OUTPUT_DIR argument accepts.
TARGET_HELP = "the run's output folder, or its config file"


def job_count(text: str) -> int:
    """argparse type of a number of jobs at once (`--jobs N`, `limit N`): ASCII digits from 1
    to MAX_JOBS, so the command line and the shell command refuse the same words alike."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_JOBS}, got "
                                         f"{text!r}")
    return int(text)


class ShellError(OrchError):
    """A subcommand's failure: one line on stderr and `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def subcommand_parser(name: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """The parser of `orch-tui NAME`, with its OUTPUT_DIR argument (a config file too)."""
    parser = argparse.ArgumentParser(prog=f"orch-tui {name}",
                                     description=description,
                                     epilog=epilog)
    parser.add_argument("target", metavar="OUTPUT_DIR", help=TARGET_HELP)
    return parser


def output_dir_of(target: str) -> Path:
    """The output folder `target` names: itself, or a config file's directories.output_dir."""
    path = Path(target)
    if path.is_file():
        return config_output_dir(path)
    return path.absolute()


def where(output_dir: Path) -> str:
    """The folder in a message (printable: it is the operator's data)."""
    return printable(str(output_dir))


def when(epoch: float | None) -> str:
    """Local time of `epoch`, to the second ('-' when unknown)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def no_live_run(output_dir: Path, status: RunStatus | None) -> ShellError:
    """Why no run answers in `output_dir` (exit 3), from what its journal says."""
    folder = where(output_dir)
    if status is None:
        return ShellError(f"no run in {folder} (no journal)", EXIT_NO_RUN)
    pid = "" if status.pid is None else f"pid {status.pid}, "
    if status.state is RunState.FINISHED:
        return ShellError(
            f"no active run in {folder}: it finished at {when(status.ended)} "
            f"(exit {status.run_code})", EXIT_NO_RUN)
    if status.state is RunState.DIED:
        return ShellError(
            f"no active run in {folder}: it died ({pid}started {when(status.started)}; "
            "its end was never recorded)", EXIT_NO_RUN)
    holder = "" if status.pid is None else f" (pid {status.pid})"
    return ShellError(f"the run in {folder}{holder} serves no control socket", EXIT_NO_RUN)


async def connect(output_dir: Path) -> ControlClient:
    """An open client of the live run in `output_dir` (close it after). ShellError: 3 when
    no live run answers there (no socket, or its server gone: ECONNREFUSED, ENOENT, a hang-up
    by a run that just ended); 2 when the run speaks another protocol or refuses us."""
    path = find_socket(output_dir)
    if path is None:
        raise no_live_run(output_dir, journal_status(output_dir))
    client = ControlClient.connect(path)
    try:
        await asyncio.wait_for(client.open(), CONNECT_TIMEOUT)
    except (OSError, TimeoutError, wire.ProtocolError) as exc:
        with contextlib.suppress(OSError):
            await client.close()
        raise _connect_error(output_dir, exc) from None
    return client


def _connect_error(output_dir: Path, exc: Exception) -> ShellError:
    status = journal_status(output_dir)
    folder = where(output_dir)
    if status is not None and status.state is not RunState.RUNNING:
        return no_live_run(output_dir, status)  # it ended (or died) as we knocked
    if isinstance(exc, wire.ProtocolError):
        return ShellError(f"the run in {folder}: {printable(str(exc))}", EXIT_USAGE)
    if status is None:
        return no_live_run(output_dir, status)
    if isinstance(exc, TimeoutError):
        return ShellError(f"the run in {folder} did not answer within {CONNECT_TIMEOUT:g} s",
                          EXIT_NO_RUN)
    assert isinstance(exc, OSError)
    return ShellError(f"cannot reach the run in {folder}: {printable(exc.strerror or str(exc))}",
                      EXIT_NO_RUN)
