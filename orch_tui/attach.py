"""`orch-tui attach OUTPUT_DIR|CONFIG`: the run screen on a run that lives in another process.

The app is a client of the run's control socket (core/control/remote.py): whatever happens to
this process (`d`, a closed terminal, SIGTERM, kill -9) the run goes on; only the quit dialog's
"stop the run" or "wait, then quit" reach it, as commands. Exit codes: 0 detached, the run's
own code when it ended while attached, 1 the connection was lost, 2 usage or another protocol
version, 3 no live run there."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orch_tui.core import wire
from orch_tui.core.control.location import find_socket
from orch_tui.core.control.remote import RemoteRun, RunUnreachable
from orch_tui.core.errors import OrchError
from orch_tui.core.plan import shell_quote
from orch_tui.core.textutil import printable
from orch_tui.subcommands.common import (EXIT_NO_RUN, EXIT_USAGE, output_dir_of, subcommand_parser)
from orch_tui.tui.settings import SettingsFile

if TYPE_CHECKING:
    from orch_tui.tui.app import OrchApp


def attach_parser() -> argparse.ArgumentParser:
    """`orch-tui attach`'s arguments."""
    parser = subcommand_parser(
        "attach",
        description="Open the run screen on the live run in an output folder (started in "
        "another terminal, detached, or left by a closed SSH session). d detaches: the run "
        "goes on.",
        epilog="Exit codes: 0 detached; the run's own exit code when it ends while attached; "
        "1 connection to the run lost; 2 usage error or another protocol version; 3 no live "
        "run there.")
    parser.add_argument("--quiet",
                        action="store_true",
                        help="no bell and no desktop notification when the run ends")
    return parser


def detached_line(pid: int | None, output_dir: Path) -> str:
    """What the terminal keeps after a detach: the run's pid and how to come back."""
    again = printable(shell_quote(["orch-tui", "attach", str(output_dir)]))
    return f"detached: the run goes on (pid {pid if pid is not None else '?'}); {again}"


def main(argv: Sequence[str]) -> int:
    """`orch-tui attach TARGET` (the word `attach` already taken off)."""
    args = attach_parser().parse_args(list(argv))
    try:
        output_dir = output_dir_of(args.target)
        socket = find_socket(output_dir)
    except OrchError as exc:
        print(f"orch-tui attach: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if socket is None:
        print(f"orch-tui attach: no live run in {printable(str(output_dir))}", file=sys.stderr)
        return EXIT_NO_RUN
    return asyncio.run(attach(output_dir, socket, quiet=args.quiet))


async def attach(output_dir: Path, socket: Path, *, quiet: bool = False) -> int:
    """Connect, run the app on the run, hang up; the exit code (see the module's docstring)."""
    try:
        remote = await RemoteRun.connect(socket)
    except RunUnreachable:
        print(
            f"orch-tui attach: no live run in {printable(str(output_dir))} (its socket does "
            "not answer)",
            file=sys.stderr)
        return EXIT_NO_RUN
    except wire.ProtocolError as exc:
        print(f"orch-tui attach: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return await _run_app(remote, output_dir, quiet=quiet)
    finally:
        await remote.close()


async def _run_app(remote: RemoteRun, output_dir: Path, *, quiet: bool) -> int:
    # pylint: disable-next=import-outside-toplevel  # textual only for the commands that draw
    from orch_tui.tui.app import OrchApp
    for name in ("COLUMNS", "LINES"):  # as cli.run_tui: they would freeze the layout
        os.environ.pop(name, None)
    app = OrchApp(remote, start_dir=Path.cwd(), settings=SettingsFile.default(), quiet=quiet)
    await run_screen(app)
    return report_end(app, remote.pid, output_dir)


async def run_screen(app: OrchApp) -> None:
    """Run the app until it exits; SIGHUP, SIGTERM and SIGINT mean this screen, never the run
    (the app's hang_up: a run that goes on is left running, one that is over ends the app)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, app.hang_up)
    try:
        await app.run_async()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def report_end(app: OrchApp, pid: int | None, output_dir: Path) -> int:
    """After an app on a run in another process closed: what the terminal keeps (the way back
    after a detach, why after a lost connection) and the exit code."""
    try:
        if app.lost is not None:
            print(f"orch-tui: {printable(app.lost)}", file=sys.stderr)
        elif app.detached or app.return_code is None:
            print(detached_line(pid, output_dir))
    except (OSError, ValueError):
        pass  # the terminal is gone (SIGHUP): nothing to tell
    return app.return_code if app.return_code is not None else 0
