"""`orch-tui node SCHEDULER_ADDRESS`: this machine joins a Dask cluster as one worker process.

Its resources are the seed's 80% rules applied on the node: `CPU` = cpu_fraction x its cores,
`MEM` = memory_fraction x its available memory, both as tight as its cgroup makes them; jobs
declare what one of them needs and Dask packs them by it. The worker carries the orch-tui plugin
(cluster/worker.py), which runs jobs with the same rules as a local run. No nanny: one process
per machine, and the guardian of each run kills its jobs if this process is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import sys
from collections.abc import Sequence

from distributed import Worker
from distributed.security import Security

from orch_tui.cluster.worker import OrchPlugin
from orch_tui.core import cgroupfs
from orch_tui.core.config import ResourcesConfig, address_problem
from orch_tui.core.local_runner import machine_stats
from orch_tui.core.textutil import format_bytes, printable

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The node command's arguments."""
    defaults = ResourcesConfig()
    parser = argparse.ArgumentParser(
        prog="orch-tui node",
        description="Join the Dask cluster whose scheduler is at SCHEDULER_ADDRESS (start one with "
        "`dask scheduler`) as one worker that runs orch-tui jobs. Run it as the operator's user "
        "on every machine, with the output folder mounted at the same path on all of them.")
    parser.add_argument("address", metavar="SCHEDULER_ADDRESS", help="e.g. tcp://render1:8786")
    parser.add_argument("--name", help="the node's name in the run screen (default: hostname)")
    parser.add_argument("--cpu",
                        type=_positive_float,
                        metavar="N",
                        help=f"cores jobs may use here (default: {defaults.cpu_fraction:g} x "
                        "this machine's cores, cgroup-aware)")
    parser.add_argument("--memory",
                        type=_positive_float,
                        metavar="BYTES",
                        help=f"memory jobs may use here (default: {defaults.memory_fraction:g} x "
                        "the available memory, cgroup-aware)")
    parser.add_argument("--nthreads",
                        type=int,
                        metavar="N",
                        help="most jobs at once here, whatever they need (default: 4 x cores)")
    parser.add_argument("--death-timeout",
                        type=_positive_float,
                        default=60.0,
                        metavar="S",
                        help="at start, wait S seconds for the scheduler before giving up "
                        "(default 60); a scheduler lost later ends the node at once, killing "
                        "its jobs")
    parser.add_argument("--tls-ca-file", metavar="FILE", help="TLS: the cluster's CA certificate")
    parser.add_argument("--tls-cert", metavar="FILE", help="TLS: this node's certificate")
    parser.add_argument("--tls-key", metavar="FILE", help="TLS: this node's private key")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def resources(cpu: float | None, memory: float | None) -> dict[str, float]:
    """`CPU` and `MEM` for this machine: given, or the 80% rules on its (cgroup's) figures."""
    defaults = ResourcesConfig()
    stats = machine_stats("", len(os.sched_getaffinity(0)), cgroupfs.find_groups(), None)
    return {
        "CPU": cpu if cpu is not None else defaults.cpu_fraction * stats.logical_cores,
        "MEM": memory if memory is not None else defaults.memory_fraction * stats.available_memory,
    }


def security(args: argparse.Namespace) -> Security | None:
    """TLS from the flags (all three, or none: then Dask's own configuration applies)."""
    files = (args.tls_ca_file, args.tls_cert, args.tls_key)
    if not any(files):
        return None
    if not all(files):
        raise ValueError("TLS needs --tls-ca-file, --tls-cert and --tls-key together")
    for path in files:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: not found")
    return Security(tls_ca_file=args.tls_ca_file,
                    tls_worker_cert=args.tls_cert,
                    tls_worker_key=args.tls_key,
                    require_encryption=True)


async def serve(args: argparse.Namespace, given: dict[str, float], tls: Security | None) -> int:
    """Run the worker until it is told to stop (SIGTERM, SIGINT) or the scheduler is gone."""
    name = args.name or socket.gethostname()
    threads = args.nthreads or 4 * len(os.sched_getaffinity(0))
    worker = Worker(args.address,
                    name=name,
                    nthreads=threads,
                    resources=given,
                    plugins=(OrchPlugin(), ),
                    security=tls,
                    death_timeout=args.death_timeout,
                    dashboard=False)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(worker.close()))
    try:
        await worker
    except (OSError, TimeoutError) as exc:
        print(
            f"orch-tui node: error: cannot join the scheduler at {printable(args.address)}: "
            f"{printable(str(exc) or type(exc).__name__)}",
            file=sys.stderr)
        return EXIT_USAGE
    print(
        f"orch-tui node {printable(name)}: joined {printable(args.address)} as "
        f"{worker.address} with CPU={given['CPU']:g} MEM={format_bytes(given['MEM'])}, "
        f"{threads} threads",
        flush=True)
    await worker.finished()
    return 0


def main(argv: Sequence[str]) -> int:
    """`orch-tui node ...`: one line and exit 2 for a bad address or flag, no traceback."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    problem = address_problem(args.address)
    if problem:
        parser.error(problem)
    if args.nthreads is not None and args.nthreads < 1:
        parser.error(f"--nthreads must be at least 1, got {args.nthreads}")
    try:
        tls = security(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return asyncio.run(serve(args, resources(args.cpu, args.memory), tls))
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
