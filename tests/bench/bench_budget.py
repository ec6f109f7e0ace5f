"""What a dispatch target leaves per job, and what containment alone costs (prints, asserts
nothing).

    python tests/bench/bench_budget.py [--jobs 2000] [--procs 2] [--ratio 1.5] [--moves 500]

On a small machine `xargs -P` over `true` keeps every core busy with the jobs themselves, so a
target of R x xargs' wall time is a CPU budget: R x wall x cores, less the jobs' own CPU and the
orchestrator's fixed start and end, shared by the jobs. This prints that budget per job next to
the kernel cost of a cgroup v2 group per job (mkdir, move in, move out, membership read, rmdir),
measured the way CgroupContainment does it, in a group of its own that it removes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orch_tui.core.containment.base import read_all, write_to
from orch_tui.core.containment.cgroup import find_cgroup2

TRUE = shutil.which("true") or "/bin/true"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], stdin: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of it and everything it started)."""
    cpu0 = _children_cpu()
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as source:
        subprocess.run(argv, stdin=source, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start, _children_cpu() - cpu0


def orch_fixed(workdir: Path) -> tuple[float, float]:
    """orch-tui headless over one `true` job: its start and end, logs, journal and all."""
    (workdir / "one").write_bytes(b"")
    (workdir / "one.txt").write_text(f"{workdir / 'one'}\n", encoding="utf-8")
    config = workdir / "config.yaml"
    config.write_text(
        f'binary: {{path: "{TRUE}", flags: ["{{input_file}}"]}}\n'
        f'directories: {{input_file_list: "{workdir / "one.txt"}", '
        f'output_dir: "{workdir / "out"}"}}\n',
        encoding="utf-8")
    shutil.rmtree(workdir / "out", ignore_errors=True)
    return timed([sys.executable, "-m", "orch_tui", str(config), "--headless", "--max-procs", "1"])


def cgroup_costs(moves: int) -> dict[str, float]:
    """Microseconds per job of each cgroup step, in a group under our own."""
    mount, own_path = find_cgroup2()
    own = mount / own_path.lstrip("/")
    base = own / f"orch-budget-{os.getpid()}"
    os.mkdir(base)
    pid = str(os.getpid()).encode()
    spent = dict.fromkeys(("mkdir", "move in", "move out", "read members", "rmdir"), 0.0)
    try:
        for index in range(moves):
            group = base / f"job-{index}"
            steps = (("mkdir", lambda g=group: os.mkdir(g)),
                     ("move in", lambda g=group: write_to(g / "cgroup.procs", pid)),
                     ("move out", lambda: write_to(own / "cgroup.procs", pid)),
                     ("read members", lambda g=group: read_all(g / "cgroup.procs")),
                     ("rmdir", lambda g=group: os.rmdir(g)))
            for name, step in steps:
                start = time.perf_counter()
                step()
                spent[name] += time.perf_counter() - start
    finally:
        os.rmdir(base)
    return {name: seconds / moves * 1e6 for name, seconds in spent.items()}


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--ratio", type=float, default=1.5)
    parser.add_argument("--moves", type=int, default=500)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="budget-") as tmp:
        workdir = Path(tmp)
        items = workdir / "items.txt"
        items.write_text("".join(f"{workdir}/i{n}\n" for n in range(args.jobs)), encoding="utf-8")
        wall, cpu = timed(["xargs", "-P", str(args.procs), "-n", "1", TRUE], items)
        fixed_wall, fixed_cpu = orch_fixed(workdir)
    costs = cgroup_costs(args.moves)
    budget = args.ratio * wall * cores - cpu - fixed_cpu
    print(f"load {os.getloadavg()[0]:.2f}, {cores} cores")
    print(f"xargs: {args.jobs} true jobs, {args.procs} at a time: {wall:.3f} s wall, "
          f"{cpu:.3f} CPU-s ({cpu / wall / cores:.0%} of the cores)")
    print(f"orch-tui over one job (start and end): {fixed_wall:.3f} s wall, {fixed_cpu:.3f} CPU-s")
    print(f"{args.ratio}x xargs leaves {budget:.3f} CPU-s for the orchestrator's "
          f"{args.jobs} jobs: {budget / args.jobs * 1e6:.0f} us per job")
    print("cgroup v2 group per job, us: " + ", ".join(f"{k} {v:.0f}" for k, v in costs.items()) +
          f"; total {sum(costs.values()):.0f}")
    print(f"budget_us={budget / args.jobs * 1e6:.0f} cgroup_us={sum(costs.values()):.0f} "
          f"xargs_s={wall:.3f} xargs_cpu_s={cpu:.3f} fixed_cpu_s={fixed_cpu:.3f}")


if __name__ == "__main__":
    main()
