"""Commands to a live run from the shell: `orch-tui pause|resume|kill|requeue OUTPUT_DIR JOB...`,
`orch-tui limit OUTPUT_DIR N` and `orch-tui stop OUTPUT_DIR`, for scripts and cron.

Each goes over the run's control socket, as the TUI's keys do: the run carries it out and
answers in words (core/control/commands.py), one line per job. JOB words are matched against
the run's own jobs (its snapshot), all of them before anything is sent: a word naming no job
or several stops the command with nothing done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from orch_tui.core import wire
from orch_tui.core.control.client import ControlClient
from orch_tui.core.errors import OrchError
from orch_tui.core.jobmatch import JobMatchError, match_jobs
from orch_tui.core.snapshot import job_inputs
from orch_tui.core.textutil import printable
from orch_tui.subcommands.common import (EXIT_OK, EXIT_REFUSED, EXIT_USAGE, ShellError, connect,
                                         job_count, output_dir_of, subcommand_parser, where)

#: The commands on jobs, and what each does (the --help description).
JOB_COMMANDS = {
    "pause": "Pause running jobs (SIGSTOP to each one's process tree).",
    "resume": "Resume paused jobs (SIGCONT).",
    "kill": "Kill running or paused jobs; a queued one is cancelled.",
    "requeue": "Put failed, killed or cancelled jobs back in the queue.",
}
RUN_COMMANDS = {
    "limit": "Set how many jobs the run runs at once (as the TUI's +/- keys do).",
    "stop": "Stop the run, as SIGTERM does: no more launches, every job ended; the run "
    "exits 143.",
}
COMMANDS = (*JOB_COMMANDS, *RUN_COMMANDS)
EPILOG = ("JOB: a plain integer is the job's index (status shows it as #N); anything else must "
          "name exactly one input, by its path or its file name. Exit codes: 0 done; 1 some job "
          "was not in a state that allows it, or the run is over; 2 usage error, a JOB naming no "
          "job or several (they are listed), or a run speaking another protocol version; 3 no "
          "live run there (no journal, or the run finished or died).")


def command_parser(command: str) -> argparse.ArgumentParser:
    """The arguments of `orch-tui COMMAND`."""
    parser = subcommand_parser(command, {**JOB_COMMANDS, **RUN_COMMANDS}[command], EPILOG)
    if command in JOB_COMMANDS:
        parser.add_argument("jobs", metavar="JOB", nargs="+", help="a job's index, input or name")
    elif command == "limit":
        parser.add_argument("limit", metavar="N", type=job_count, help="jobs at once (1 or more)")
    return parser


def main(command: str, argv: Sequence[str]) -> int:
    """`orch-tui COMMAND` with its arguments: the run's answers, one a line."""
    assert command in COMMANDS
    args = command_parser(command).parse_args(list(argv))
    try:
        return asyncio.run(_command(command, args))
    except OrchError as exc:
        print(f"orch-tui {command}: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code


async def _command(command: str, args: argparse.Namespace) -> int:
    output_dir = output_dir_of(args.target)
    client = await connect(output_dir)
    try:
        return await _send_all(client, command, args, output_dir)
    finally:
        await client.close()


async def _send_all(client: ControlClient, command: str, args: argparse.Namespace,
                    output_dir: Path) -> int:
    """Send the command (once per job) and print each answer: what was done on stdout, what
    was refused on stderr."""
    assert client.snapshot is not None
    sends: list[tuple[int | None, int | None, str]]  # job, value, the job's name
    if command in JOB_COMMANDS:
        known = job_inputs(client.snapshot.jobs)
        inputs = {job_id: path for job_id, (_, path) in known.items()}
        try:
            sends = [(job, None, known[job][0]) for job in match_jobs(args.jobs, inputs)]
        except JobMatchError as exc:
            raise ShellError(f"{where(output_dir)}: {exc}", EXIT_USAGE) from None
    elif command == "limit":
        sends = [(None, args.limit, "")]
    else:
        sends = [(None, None, "")]
    code = EXIT_OK
    for job, value, name in sends:
        try:
            reply = wire.parse_reply(await client.send(_WIRE.get(command, command),
                                                       job=job,
                                                       value=value))
        except ConnectionError:
            raise ShellError(f"{where(output_dir)}: the run ended before it answered",
                             EXIT_REFUSED) from None
        what = printable(reply.message) + (f" ({printable(name)})" if name else "")
        if reply.ok:
            print(what)
        else:
            print(f"orch-tui {command}: {where(output_dir)}: {what}", file=sys.stderr)
            code = EXIT_REFUSED
    return code


#: Shell names that differ from the wire's command names.
_WIRE = {"limit": "set_limit"}
