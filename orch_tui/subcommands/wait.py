"""`orch-tui wait OUTPUT_DIR`: block until the run ends and exit with its exit code, for scripts
that started it with --detach.

A live run is followed on its control socket until its RunFinished event (its exit code is
that event's). When there is nothing to follow (no socket, or it went away without that event:
the run was `kill -9`ed), the journal has the verdict: the code a finished run recorded, 1 for
one that died with work left, as `status` says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.errors import OrchError
from orch_tui.core.runstatus import RunState, journal_status
from orch_tui.core.textutil import printable
from orch_tui.subcommands.common import (EXIT_NO_RUN, EXIT_TIMEOUT, ShellError, connect,
                                         output_dir_of, subcommand_parser, where)

#: How often the journal is read again while a run holds the folder but no socket answers
#: (none could be bound, or it closed an instant before the run's end was recorded).
POLL = 0.25
EPILOG = ("Exit codes: the run's own (0 all done; 1 some job failed, was killed or missing; "
          "130/143 it was stopped by SIGINT/SIGTERM or `orch-tui stop`); 1 the run died "
          "(kill -9) with work left; 2 usage error, or a run speaking another protocol "
          "version; 3 no run there; 124 --timeout ran out first (the run goes on); 130 wait itself "
          "was interrupted (Ctrl-C: the run goes on).")


def wait_parser() -> argparse.ArgumentParser:
    """`orch-tui wait`'s arguments."""
    parser = subcommand_parser(
        "wait", "Wait for the run in an output folder to end; exit with its exit code (at once "
        "for a run that already ended).", EPILOG)
    parser.add_argument("--timeout",
                        type=float,
                        metavar="SECONDS",
                        help="give up after SECONDS (exit 124), as timeout(1) does")
    return parser


def main(argv: Sequence[str]) -> int:
    """`orch-tui wait` with its arguments."""
    parser = wait_parser()
    args = parser.parse_args(list(argv))
    if args.timeout is not None and not args.timeout >= 0:  # NaN too
        parser.error(f"--timeout: expected seconds, at least 0, got {args.timeout}")
    output_dir = Path(args.target)
    try:
        output_dir = output_dir_of(args.target)
        return asyncio.run(asyncio.wait_for(wait_for_run(output_dir), args.timeout))
    except TimeoutError:
        print(
            f"orch-tui wait: {where(output_dir)}: the run is still going after "
            f"{args.timeout:g} s",
            file=sys.stderr)
        return EXIT_TIMEOUT
    except OrchError as exc:
        print(f"orch-tui wait: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code


async def wait_for_run(output_dir: Path) -> int:
    """The exit code of the run in `output_dir`, once it ends."""
    code = await _follow(output_dir)
    return code if code is not None else await _verdict(output_dir)


async def _follow(output_dir: Path) -> int | None:
    """The RunFinished exit code, from the socket; None when it went away without one."""
    try:
        client = await connect(output_dir)
    except ShellError as exc:
        if exc.exit_code == EXIT_NO_RUN:
            return None  # the journal says why
        raise
    try:
        assert client.snapshot is not None
        if client.snapshot.finished is not None:
            return client.snapshot.finished.exit_code
        async for message in client.events():
            payload = message.get("event")
            # Only the last event is decoded: the rest (samples of every job) are not needed.
            if isinstance(payload, dict) and payload.get("type") == ev.RunFinished.__name__:
                finished = wire.parse_event(message)
                assert isinstance(finished, ev.RunFinished)
                return finished.exit_code
        return None
    finally:
        with contextlib.suppress(OSError):
            await client.close()


async def _verdict(output_dir: Path) -> int:
    """The journal's exit code for the run, once no orch-tui holds the folder."""
    while True:
        status = journal_status(output_dir)
        if status is None:
            raise ShellError(f"no run in {where(output_dir)} (no journal)", EXIT_NO_RUN)
        code = status.run_code
        if code is not None:
            if status.state is RunState.DIED:
                pid = "" if status.pid is None else f" (pid {status.pid})"
                print(
                    f"orch-tui wait: the run in {where(output_dir)}{pid} died before it "
                    "recorded its end",
                    file=sys.stderr)
            return code
        await asyncio.sleep(POLL)
