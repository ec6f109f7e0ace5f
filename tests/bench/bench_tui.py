"""How the run screen copes with many jobs (prints figures, never asserts).

    PYTHONPATH=. python tests/bench/bench_tui.py [--jobs 100000] [--running 1000] [--ticks 20]

Builds a model of N jobs with R of them running, opens the real run screen headless, and per tick
applies one sample to every running job (as the core's sampler would each second) then times the
screen's coalesced refresh (batch_update, dirty rows only) and a scroll to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.snapshot import JobView
from orch_tui.tui.app import OrchApp
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.widgets.job_table import JobTable
from tests.fake_controller import FakeController


def build(jobs: int, running: int, clock) -> FakeController:
    """A fake host of `jobs` jobs, the first `running` of them running: commands go nowhere,
    only folding and rendering are measured."""
    views = [
        JobView(job_id=i,
                name=f"clip{i:06d}.mp4",
                input_size=1 << 20,
                argv=("ffmpeg", ),
                log_path=Path(f"/tmp/{i}.log"),
                output_path=Path(f"/tmp/{i}.mp4"),
                state=JobState.RUNNING if i <= running else JobState.QUEUED,
                attempt=1 if i <= running else 0,
                pid=10000 + i if i <= running else None,
                started=0.0 if i <= running else None) for i in range(1, jobs + 1)
    ]
    return FakeController(views, clock=clock)


async def main(jobs: int, running: int, ticks: int) -> None:
    """Open the run screen and time refreshes."""
    now = [1000.0]
    host = build(jobs, running, lambda: now[0])
    app = OrchApp(host)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        listener = host.listeners[0]  # the app's listener: samples reach its model as in a run
        screen = app.screen
        assert isinstance(screen, RunScreen)
        costs = []
        apply_costs = []
        for tick in range(ticks):
            now[0] += 1
            start = time.perf_counter()
            for i in range(1, running + 1):
                listener(
                    ev.JobSample(time=now[0],
                                 job_id=i,
                                 node="n",
                                 pid=10000 + i,
                                 cpu_cores=(i + tick) % 10 / 10,
                                 rss_bytes=(i % 50) << 20,
                                 processes=1,
                                 read_fraction=tick / ticks,
                                 output_bytes=tick << 16,
                                 elapsed=float(tick)))
            apply_costs.append(time.perf_counter() - start)
            start = time.perf_counter()
            screen.refresh_view()
            await pilot.pause()
            costs.append(time.perf_counter() - start)
        table = screen.query_one(JobTable)
        start = time.perf_counter()
        await pilot.press("end")
        await pilot.pause()
        scroll = time.perf_counter() - start
        assert table.selected_job_id == jobs
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    costs.sort()
    print(f"{jobs} jobs, {running} running, {ticks} ticks of one sample per running job")
    print(f"fold samples into the model: {sum(apply_costs) / ticks * 1000:.1f} ms per tick")
    print(f"screen refresh + paint:      median {costs[len(costs) // 2] * 1000:.1f} ms, "
          f"max {costs[-1] * 1000:.1f} ms per tick (budget: the 500 ms refresh interval)")
    print(f"jump to the last row:        {scroll * 1000:.1f} ms")
    print(f"peak RSS of the process:     {rss:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--running", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.running, args.ticks))
