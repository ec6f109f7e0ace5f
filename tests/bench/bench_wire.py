"""What the control socket's codec costs (prints, never asserts).

    python tests/bench/bench_wire.py [--jobs 2000] [--samples 20000]

Encode (to_wire + JSON line) and decode (line + from_wire) of one JobSample event, the message
a client gets most often (one per running job per sweep), and of one snapshot of `--jobs` jobs
in mixed states (what a client gets when it attaches). CPU time per message, best of 5 rounds;
on a loaded machine the figures are noisy: say so with them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.events import JobState
from orch_tui.core.snapshot import JobView, RunSnapshot
from orch_tui.core.tally import Counts

STATES = (JobState.SUCCEEDED, JobState.RUNNING, JobState.QUEUED, JobState.QUEUED, JobState.FAILED)


def per_call(func: Callable[[], object], count: int) -> float:
    """CPU seconds per call of `func`, best of 5 rounds of `count` calls."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(count):
            func()
        best = min(best, (time.process_time() - start) / count)
    return best


def sample() -> ev.JobSample:
    """A running ffmpeg job's sample, every figure set."""
    return ev.JobSample(1234.5,
                        17,
                        "render-01",
                        40123,
                        1.93,
                        412 * 2**20,
                        3,
                        0.41,
                        88 * 2**20,
                        73.2,
                        progress=0.4,
                        fps=59.94,
                        speed=2.4,
                        eta_seconds=109.0,
                        progress_source=ev.ProgressSource.FFMPEG)


def snapshot(jobs: int) -> RunSnapshot:
    """A run of `jobs` jobs of realistic path lengths, in mixed states."""
    views = []
    for job_id in range(1, jobs + 1):
        name = f"shoot_2024-03-{job_id % 28 + 1:02d}_camera-B_take{job_id:05d}.mov"
        out = Path("/srv/render/out") / name.replace(".mov", "_h264.mp4")
        state = STATES[job_id % len(STATES)]
        done = state is JobState.SUCCEEDED
        views.append(
            JobView(job_id,
                    name,
                    out,
                    Path("/srv/render/out/.orch-tui/logs") / f"{job_id}.log",
                    ("ffmpeg", "-hide_banner", "-i", f"/srv/render/in/{name}", "-c:v", "libx264",
                     "-crf", "20", str(out)),
                    2 * 10**9 + job_id,
                    state=state,
                    attempt=int(state is not JobState.QUEUED),
                    node="render-01",
                    pid=40000 + job_id if state is JobState.RUNNING else None,
                    exit_code=0 if done else None,
                    started=100.0 + job_id if done else None,
                    ended=160.0 + job_id if done else None,
                    output_bytes=9 * 10**8 if done else 0))
    return RunSnapshot(jobs=tuple(views), counts=Counts.of(view.state for view in views), limit=4)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args()

    event = sample()
    line = wire.encode(wire.event_message(event))
    encode = per_call(lambda: wire.encode(wire.event_message(event)), args.samples)
    decode = per_call(lambda: wire.parse_event(wire.decode(line)), args.samples)
    print(f"JobSample: {len(line)} bytes a line, encode {encode * 1e6:.1f} us, "
          f"decode {decode * 1e6:.1f} us, together {(encode + decode) * 1e6:.1f} us")

    snap = snapshot(args.jobs)
    line = wire.encode(wire.snapshot_message(snap))
    assert wire.parse_snapshot(wire.decode(line, limit=None)) == snap
    rounds = max(1, 20000 // args.jobs)
    encode = per_call(lambda: wire.encode(wire.snapshot_message(snap)), rounds)
    decode = per_call(lambda: wire.parse_snapshot(wire.decode(line, limit=None)), rounds)
    print(f"snapshot of {args.jobs} jobs: {len(line) / 2**20:.2f} MiB a line, "
          f"encode {encode * 1e3:.1f} ms, decode {decode * 1e3:.1f} ms, "
          f"together {(encode + decode) * 1e3:.1f} ms ({(encode + decode) / args.jobs * 1e6:.1f} "
          "us a job)")


if __name__ == "__main__":
    main()
