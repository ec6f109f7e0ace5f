"""Subcommands that look at a run from the shell, without the TUI: `orch-tui status`.

They take the run's output folder, or the config file that names it. `cli.py` hands them
their arguments when the first one is a subcommand name (a config file of that name is given
with `--config`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from orch_tui.core.config import load_config
from orch_tui.core.errors import OrchError
from orch_tui.core.runstatus import RunState, RunStatus, StatusSource, journal_status
from orch_tui.core.textutil import printable

#: The subcommands this version runs (cli.py dispatches on these names).
SUBCOMMANDS = ("status", )
EXIT_NO_RUN, EXIT_USAGE = 3, 2


def status_parser() -> argparse.ArgumentParser:
    """`orch-tui status`'s arguments."""
    parser = argparse.ArgumentParser(
        prog="orch-tui status",
        description="One screen on the latest run in an output folder: running, finished or "
        "died, its counts, limit and running jobs (read from its journal).",
        epilog="Exit codes: 0 running or finished clean; 1 finished with failures, or died "
        "with work left; 2 usage error or unreadable journal; 3 no run there.")
    parser.add_argument("target",
                        metavar="OUTPUT_DIR",
                        help="the run's output folder, or its config file")
    parser.add_argument("--json", action="store_true", help="one JSON document (schema 1)")
    return parser


def output_dir_of(target: str) -> Path:
    """The output folder `target` names: itself, or a config file's directories.output_dir."""
    path = Path(target)
    if path.is_file():
        return load_config(path).directories.output_dir
    return path.absolute()


def main(command: str, argv: Sequence[str], *, source: StatusSource = journal_status) -> int:
    """Run subcommand `command` with its arguments (the name already taken off)."""
    assert command in SUBCOMMANDS
    args = status_parser().parse_args(list(argv))
    try:
        output_dir = output_dir_of(args.target)
        status = source(output_dir)
    except OrchError as exc:
        print(f"orch-tui status: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    if status is None:
        print(f"orch-tui status: no run in {printable(str(output_dir))} (no journal)",
              file=sys.stderr)
        return EXIT_NO_RUN
    if args.json:
        json.dump(status.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_status(status, sys.stdout)
    return status.exit_code


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _cut(text: str, room: int) -> str:
    """`text` in `room` columns, its start cut (a path's end says the most)."""
    return text if len(text) <= room else "…" + text[-(room - 1):]


def status_lines(status: RunStatus, *, now: float | None = None) -> list[str]:
    """The human summary, a string a line, each within 80 columns (input names are cut and
    made printable: they are data)."""
    now = time.time() if now is None else now
    counts = status.counts
    what = {
        RunState.RUNNING: "running",
        RunState.FINISHED: "finished",
        RunState.DIED: "died: no orch-tui holds it, its end was never recorded",
    }[status.state]
    pid = "-" if status.pid is None else str(status.pid)
    ended = f"    ended {_when(status.ended)}" if status.ended else ""
    lines = [
        f"run:      {what}",
        "folder:   " + _cut(printable(str(status.output_dir)), 70),
        f"pid:      {pid}    started {_when(status.started)}{ended}",
        f"jobs:     {counts.ended}/{counts.total} ended, {counts.done} done "
        f"({counts.succeeded} succeeded, {counts.skipped} skipped)",
        f"          {counts.running} running, {counts.paused} paused, "
        f"{counts.stopping} stopping, {counts.queued} queued",
        f"          {counts.failed} failed, {counts.killed} killed, "
        f"{counts.cancelled} cancelled, {counts.missing} missing",
    ]
    limit = "-" if status.limit is None else str(status.limit)
    if status.limit_source:
        limit += f" ({status.limit_source})"
    if status.state is RunState.RUNNING:
        # From the journal alone there is no rate to go by: a live source fills it in.
        limit += "    ETA " + ("-" if status.eta_seconds is None else _duration(status.eta_seconds))
    lines.append(f"limit:    {limit}")
    if status.jobs:
        lines.append("interrupted jobs:" if status.state is RunState.DIED else "active jobs:")
        for job in status.jobs:
            since = "-" if job.started is None else _duration(now - job.started)
            progress = "" if job.progress is None else f" {job.progress:4.0%}"
            head = f"  {job.state.value:<8} {since:>8}{progress}  "
            lines.append(head + _cut(printable(Path(job.input_path).name), 80 - len(head)))
    lines.append(f"exit:     {status.exit_code}")
    return lines


def write_status(status: RunStatus, out: TextIO) -> None:
    """The human summary on `out`."""
    out.write("".join(line + "\n" for line in status_lines(status)))
