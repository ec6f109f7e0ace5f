"""Subcommands that look at and command a run from the shell, without the TUI: `status`,
`wait`, and the commands `pause`, `resume`, `kill`, `requeue`, `limit`, `stop`.

They take the run's output folder, or the config file that names it. `cli.py` hands them
their arguments when the first one is a subcommand name (a config file of that name is given
with `--config`). One module per job: status.py, wait.py, jobs.py (the commands), and
common.py (finding and reaching the live run, exit codes).
"""

from __future__ import annotations

from collections.abc import Sequence

from orch_tui.core.runstatus import StatusSource
from orch_tui.subcommands import jobs, status, wait
from orch_tui.subcommands.common import output_dir_of
from orch_tui.subcommands.status import status_lines, write_status

#: The subcommands this version runs (cli.py dispatches on these names).
SUBCOMMANDS = ("status", "wait", *jobs.COMMANDS)

__all__ = ["SUBCOMMANDS", "main", "output_dir_of", "status_lines", "write_status"]


def main(command: str, argv: Sequence[str], *, source: StatusSource | None = None) -> int:
    """Run subcommand `command` with its arguments (the name already taken off); `source`
    replaces where `status` learns the run's state."""
    assert command in SUBCOMMANDS
    if command == "status":
        return status.main(argv) if source is None else status.main(argv, source=source)
    if command == "wait":
        return wait.main(argv)
    return jobs.main(command, argv)
