"""Subcommands that look at and command a run from the shell, without the TUI: `status`,
`wait`, and the commands `pause`, `resume`, `kill`, `requeue`, `limit`, `stop`.

They take the run's output folder, or the config file that names it. `cli.py` hands them
their arguments when the first one is a subcommand name (a config file of that name is given
with `--config`). One module per job: status.py, wait.py, jobs.py (the commands), and
common.py (finding and reaching the live run, exit codes).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

from orch_tui.core.runstatus import StatusSource
from orch_tui.core.textutil import printable
from orch_tui.subcommands import jobs, status, wait
from orch_tui.subcommands.common import EXIT_USAGE, output_dir_of
from orch_tui.subcommands.status import status_lines, write_status

#: The subcommands this version runs (cli.py dispatches on these names).
SUBCOMMANDS = ("status", "wait", *jobs.COMMANDS)

__all__ = ["SUBCOMMANDS", "main", "output_dir_of", "status_lines", "write_status"]


def main(command: str, argv: Sequence[str], *, source: StatusSource | None = None) -> int:
    """Run subcommand `command` with its arguments (the name already taken off); `source`
    replaces where `status` learns the run's state. Whatever happens, one line and an exit
    code, never a traceback: Ctrl-C is 130, a pipe closed early (`| head -1`) 141."""
    assert command in SUBCOMMANDS
    try:
        if command == "status":
            return status.main(argv) if source is None else status.main(argv, source=source)
        if command == "wait":
            return wait.main(argv)
        return jobs.main(command, argv)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())  # the exit-time flush must not fail again
        os.close(null)
        return 128 + signal.SIGPIPE
    except OSError as exc:  # the unexpected ones (EMFILE...): one line still
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"orch-tui {command}: error: {printable(where)}{exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
