"""The console's keys at 100,000 jobs (prints, never asserts).

    python tests/bench/bench_console.py

On the run screen of a snapshot of 100,000 jobs (100 running): the time of G, s, S, f, /, a
search keystroke, n and M through Textual's pilot (a key and a frame, pilot overhead included),
then a live sort's refresh that puts 100 sampled rows back in place, against a full sort. A
shared machine makes the figures noisy: the load average is printed with them.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from orch_tui.core.events import JobState
from orch_tui.tui.app import OrchApp
from orch_tui.tui.screens.run import RunScreen
from orch_tui.tui.widgets import job_table
from orch_tui.tui.widgets.job_table import JobTable
from tests.fake_controller import FakeController, job_views
from tests.test_tui_widgets import sample

JOBS = 100_000
RUNNING = range(1, JOBS + 1, 1000)
KEYS = ["G", "g", "s", "s", "S", "f", "F", "slash", "7", "7", "7", "enter", "n", "M", "escape"]


async def main() -> None:
    """Time the keys, then the live re-sort."""
    states = [JobState.QUEUED] * JOBS
    for job_id in RUNNING:
        states[job_id - 1] = JobState.RUNNING
    app = OrchApp(FakeController(job_views(states), clock=lambda: 0.0))
    async with app.run_test(size=(80, 24)) as pilot:
        while not isinstance(app.screen, RunScreen):
            await pilot.pause(0.05)
        table = app.screen.query_one(JobTable)
        for key in KEYS:
            start = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            print(f"{key:7} {1000 * (time.perf_counter() - start):6.1f} ms")
        await pilot.press("escape", "g")
        job_table.RESORT_INTERVAL = 0.0
        table.set_sort("cpu", True)
        times = []
        for round_ in range(11):
            for job_id in RUNNING:
                sample(app.model, job_id, cpu=((job_id * 7 + round_ * 13) % 100) / 25)
            start = time.perf_counter()
            table.refresh_from_model()
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        app.model.visible("all", "cpu", reverse=True)
        full = time.perf_counter() - start
        print(f"live sort refresh, {len(RUNNING)} rows moved: "
              f"median {1000 * statistics.median(times):.1f} ms; full sort {1000 * full:.1f} ms")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
