"""Dispatch cost per job on a loopback Dask cluster against the local runner (prints, never
asserts).

    python tests/bench/bench_cluster.py [--jobs 200,1000] [--procs 8] [--runs 3]

For each job count N: N `/bin/true` jobs, --jobs P at a time, headless, once with the local runner
and once on a cluster of `dask scheduler` and two `orch-tui node` workers on 127.0.0.1 (the test
fixture's, tests/cluster_fixture.py, started once for the whole benchmark). Each figure is the
median wall time of `--runs` runs, each with a fresh output folder. The cost per job is the
slope between the two job counts (what one more job costs, without the fixed start: connecting,
waiting for each node's first figures); the fixed cost is what is left at the smaller count.
Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# pylint: disable-next=wrong-import-position  # after the checkout is on the path
from tests.cluster_fixture import Cluster  # noqa: E402

from bench_dispatch import make_items, orch_config  # noqa: E402  # pylint: disable=wrong-import-position,wrong-import-order  # beside this file


def workspace(root: Path, count: int) -> Path:
    """`count` empty inputs under `root` and the dispatch benchmark's `true` config over them
    (bench_dispatch.py: the same jobs as its xargs and orch-tui runs); returns the config."""
    root.mkdir(parents=True)
    return orch_config(root, make_items(root, count))


def timed_run(config: Path, procs: int, *extra: str) -> float:
    """Wall seconds of one headless run from a fresh output folder; exits on a failed run (its
    time would mean nothing)."""
    shutil.rmtree(config.parent / "out", ignore_errors=True)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "orch_tui",
         str(config), "--headless", "--jobs",
         str(procs), *extra],
        capture_output=True,
        text=True,
        check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(
            f"run failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return wall


def main() -> None:
    """Measure both runners at each job count and print the medians, the per-job slope and the
    key=value line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="200,1000", help="two job counts, comma-separated")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    small, large = sorted(int(word) for word in args.jobs.split(","))
    os.environ["PYTHONPATH"] = str(ROOT)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="orch-cluster-bench-") as folder:
        cluster = Cluster(Path(folder) / "cluster")
        cluster.start()
        try:
            for count in (small, large):
                config = workspace(cluster.shared / f"n{count}", count)
                for label, extra in (("local", ()), ("cluster", ("--cluster", cluster.address))):
                    walls = [timed_run(config, args.procs, *extra) for _ in range(args.runs)]
                    figures[f"{label}_{count}_s"] = statistics.median(walls)
                    print(f"{count:>6} jobs, {label:<8} {statistics.median(walls):7.2f} s  "
                          f"({', '.join(f'{wall:.2f}' for wall in walls)})")
        finally:
            cluster.stop()
    for label in ("local", "cluster"):
        slope = (figures[f"{label}_{large}_s"] - figures[f"{label}_{small}_s"]) / (large - small)
        figures[f"{label}_ms_per_job"] = slope * 1000
        figures[f"{label}_fixed_s"] = figures[f"{label}_{small}_s"] - slope * small
        print(
            f"{label:<8} {slope * 1000:6.2f} ms per job, {figures[f'{label}_fixed_s']:.2f} s fixed")
    figures["ratio_per_job"] = figures["cluster_ms_per_job"] / figures["local_ms_per_job"]
    figures["load1_after"] = os.getloadavg()[0]
    print(" ".join(f"{key}={value:.3f}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
