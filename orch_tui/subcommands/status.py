"""`orch-tui status`: one screen on the latest run in an output folder, without the TUI.

A live run answers on its control socket: its snapshot gives the ETA, each active job's
progress and the limit now (source "live"); otherwise the journal alone tells (source
"journal": a finished or dead run, or a live one whose socket does not answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from orch_tui.core.errors import OrchError
from orch_tui.core.events import LimitSource, NodeState
from orch_tui.core.nodes import figure_cells
from orch_tui.core.runstatus import (RunState, RunStatus, StatusSource, journal_status,
                                     with_snapshot)
from orch_tui.core.snapshot import RunSnapshot
from orch_tui.core.textutil import printable
from orch_tui.subcommands.common import (EXIT_NO_RUN, EXIT_USAGE, ShellError, connect,
                                         output_dir_of, subcommand_parser, when, where)

EPILOG = ("Exit codes: 0 running or finished clean; 1 finished with failures, or died with work "
          "left; 2 usage error or unreadable journal; 3 no run there. --json (schema 1): schema, "
          "output_dir, state (running|finished|died), source (live: from the run's control "
          "socket; journal: its journal alone), pid, started, ended (epoch seconds), exit_code "
          "(this command's), run_exit_code (the run's, once recorded), counts (one per job "
          "state, and total), limit, limit_source, eta_seconds, eta_paused, paused_all (live "
          "only), jobs (the active ones: input, state, attempt, started, and from a live "
          "source progress 0..1, index, pid), nodes (name, state up|quarantined|lost, failures, "
          "cores, cpu_percent, memory_total, memory_available: from a live source; running: "
          "the jobs it holds).")


def status_parser() -> argparse.ArgumentParser:
    """`orch-tui status`'s arguments."""
    parser = subcommand_parser(
        "status", "One screen on the latest run in an output folder: running, finished or "
        "died, its counts, limit, ETA and active jobs (from the live run, else its journal).",
        EPILOG)
    parser.add_argument("--json", action="store_true", help="one JSON document (schema 1)")
    return parser


def live_status(output_dir: Path) -> RunStatus | None:
    """The journal's status, with the live run's figures when its control socket answers."""
    status = journal_status(output_dir)
    if status is None or status.state is not RunState.RUNNING:
        return status
    try:
        snap = asyncio.run(_snapshot(output_dir))
    except ShellError as exc:
        if exc.exit_code == EXIT_USAGE:  # another protocol: say why the figures are missing
            print(f"orch-tui status: warning: {exc}; from the journal alone", file=sys.stderr)
        return journal_status(output_dir)  # read again: the run may have ended meanwhile
    return with_snapshot(status, snap, epoch=time.time(), monotonic=time.monotonic())


async def _snapshot(output_dir: Path) -> RunSnapshot:
    client = await connect(output_dir)
    await client.close()
    assert client.snapshot is not None
    return client.snapshot


def main(argv: Sequence[str], *, source: StatusSource = live_status) -> int:
    """`orch-tui status` with its arguments."""
    args = status_parser().parse_args(list(argv))
    output_dir = Path(args.target)
    try:
        output_dir = output_dir_of(args.target)
        status = source(output_dir)
    except OrchError as exc:
        print(f"orch-tui status: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    if status is None:
        print(f"orch-tui status: no run in {where(output_dir)} (no journal)", file=sys.stderr)
        return EXIT_NO_RUN
    if args.json:
        json.dump(status.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_status(status, sys.stdout)
    return status.exit_code


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _cut(text: str, room: int) -> str:
    """`text` in `room` columns, its start cut (a path's end says the most)."""
    return text if len(text) <= room else "…" + text[-(room - 1):]


def _limit_words(source: str) -> str:
    """A limit's source in the words the run screen and headless use (`--jobs`, not the JSON's
    `max procs`); a value this version does not know (another version's journal) as it is."""
    try:
        return LimitSource(source).label
    except ValueError:
        return source


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
    ended = f"    ended {when(status.ended)}" if status.ended else ""
    lines = [
        f"run:      {what}",
        "folder:   " + _cut(printable(str(status.output_dir)), 70),
        f"pid:      {pid}    started {when(status.started)}{ended}",
        f"jobs:     {counts.ended}/{counts.total} ended, {counts.done} done "
        f"({counts.succeeded} succeeded, {counts.skipped} skipped)",
        f"          {counts.active} interrupted (no process: it died), {counts.queued} queued"
        if status.state is RunState.DIED else f"          {counts.running} running, "
        f"{counts.paused} paused, {counts.stopping} stopping, {counts.queued} queued",
        f"          {counts.failed} failed, {counts.killed} killed, "
        f"{counts.cancelled} cancelled, {counts.missing} missing",
    ]
    limit = "-" if status.limit is None else str(status.limit)
    if status.limit_source:
        limit += f" ({_limit_words(status.limit_source)})"
    if status.state is RunState.RUNNING:
        # From the journal alone there is no rate to go by: a live source fills it in.
        eta = "-" if status.eta_seconds is None else _duration(status.eta_seconds)
        limit += "    ETA " + ("paused" if status.eta_paused else eta)
        if status.paused_all:
            limit += "    launches paused"
    lines.append(f"limit:    {limit}")
    lines.extend(_job_lines(status, now))
    if len(status.nodes) > 1:  # a cluster run; a local run's one node is the machine itself
        lines.extend(node_lines(status))
    lines.append(f"exit:     {status.exit_code}")
    return lines


def _job_lines(status: RunStatus, now: float) -> list[str]:
    """The active jobs (a died run's: interrupted), one line each, with their start."""
    if not status.jobs:
        return []
    died = status.state is RunState.DIED
    # A died run's jobs ran until it died, at a time nobody recorded: when each started
    # is true, a time since then is not.
    lines = ["interrupted jobs (started at):" if died else "active jobs:"]
    for job in status.jobs:
        since = "-" if job.started is None else (time.strftime(
            "%H:%M:%S", time.localtime(job.started)) if died else _duration(now - job.started))
        progress = "" if job.progress is None else f" {job.progress:4.0%}"
        index = "" if job.index is None else f"#{job.index} "
        state = "interrupted" if died else job.state.value
        head = f"  {state:<8} {since:>8}{progress}  {index}"
        lines.append(head + _cut(printable(Path(job.input_path).name), 80 - len(head)))
    return lines


def node_lines(status: RunStatus) -> list[str]:
    """`nodes:` and one line per node: name, state, cores, CPU, memory used of total and the
    jobs it holds (from the journal alone: the jobs only), each within 80 columns."""
    nodes = status.nodes
    trouble = [
        f"{sum(1 for node in nodes if node.state is state)} {words}"
        for state, words in ((NodeState.QUARANTINED, "set aside"), (NodeState.LOST, "lost"))
        if any(node.state is state for node in nodes)
    ]
    lines = [f"nodes:    {len(nodes)}" + (f" ({', '.join(trouble)})" if trouble else "")]
    for node in nodes:
        cores, cpu, memory, jobs = figure_cells(node.cores, node.cpu_percent, node.memory_total,
                                                node.memory_available, node.running)
        name = printable(node.name)
        name = name if len(name) <= 14 else name[:13] + "…"
        lines.append(f"  {name:<14} {node.state_text:<26} {cores:>4} {cpu:>4} {memory:>11} "
                     f"{jobs:>8}")
    return lines


def write_status(status: RunStatus, out: TextIO) -> None:
    """The human summary on `out`."""
    out.write("".join(line + "\n" for line in status_lines(status)))
