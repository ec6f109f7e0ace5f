"""How well the ETA predicts the real finish, with real ffmpeg (prints, never asserts).

    python tests/bench/bench_eta.py [--clips 10] [--jobs 2] [--keep DIR]

Makes `--clips` testsrc2 clips of varying durations (3 to 14 s, 640x360), then transcodes them
to 1280x720 x264 `--jobs` at a time through the core API (RunHost, as headless does) with a
listener holding the same Tally the headless reporter and the TUI read. When the work done (the
ETA model's own measure: input bytes weighted by ffmpeg's media progress) first reaches 25% and
50%, it notes the ETA; at the end it prints each prediction against the real finish, as the
error in % of the time that was really left (target: within 20%). Timing on a loaded machine is
noisy: say so with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core.host import RunHost
from orch_tui.core.plan import load_plan
from orch_tui.core.session import RunOptions
from orch_tui.core.tally import Tally

DURATIONS = (6, 3, 11, 8, 14, 4, 9, 12, 5, 10, 7, 13)
MARKS = (0.25, 0.50)


def make_clips(folder: Path, count: int) -> list[Path]:
    """`count` test-pattern clips, durations cycling through DURATIONS."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for index in range(count):
        seconds = DURATIONS[index % len(DURATIONS)]
        path = folder / f"clip{index:02d}_{seconds}s.mp4"
        subprocess.run([
            "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
            f"testsrc2=duration={seconds}:size=640x360:rate=25", "-pix_fmt", "yuv420p", "-preset",
            "ultrafast",
            str(path)
        ],
                       check=True)
        clips.append(path)
    return clips


def write_config(root: Path, clips: list[Path]) -> Path:
    """The orch-tui config scaling every clip to 720p."""
    (root / "inputs.txt").write_text("".join(f"{clip}\n" for clip in clips), encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(f"""
binary:
  path: ffmpeg
  flags: ["-i", "{{input_file}}", "-vf", "scale=1280:720", "-c:v", "libx264",
          "-preset", "faster", "{{output_file}}"]
directories:
  input_file_list: {root / 'inputs.txt'}
  output_dir: {root / 'output'}
  output_suffix: _720p
""",
                      encoding="utf-8")
    return config


class Watcher:
    """A listener with the observers' Tally: notes the ETA when the work done crosses a mark."""

    def __init__(self, tally: Tally, clock) -> None:
        self.tally, self.clock = tally, clock
        self.total = tally.work.remaining()
        self.marks: dict[float, tuple[float, float | None]] = {}  # mark -> (time, eta)
        self.start: float | None = None

    def __call__(self, event: ev.Event) -> None:
        self.tally.apply(event)
        now = self.clock()
        if self.start is None and isinstance(event, ev.JobStateChanged):
            self.start = now
        done = 1.0 - self.tally.work.remaining() / self.total if self.total else 0.0
        for mark in MARKS:
            if mark not in self.marks and done >= mark:
                self.marks[mark] = (now, self.tally.eta(now).seconds)


async def run(config: Path, jobs: int) -> tuple[Watcher, float, int]:
    """Transcode the clips; the watcher and the finish time."""
    plan = load_plan(config)
    host = RunHost(RunOptions(max_procs=jobs, fresh=True))
    host.start(plan)
    watcher = Watcher(Tally(), host.clock)
    snapshot = host.attach(watcher)
    watcher.tally = snapshot.tally()
    watcher.total = watcher.tally.work.remaining()
    try:
        code = await host.wait()
    finally:
        host.close()
    return watcher, host.clock(), code


def main() -> None:
    """Make the clips, run, print the predictions against the real finish."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("ffmpeg is not installed")
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-eta-"))
    try:
        clips = make_clips(root / "clips", args.clips)
        media = sum(DURATIONS[i % len(DURATIONS)] for i in range(args.clips))
        print(f"{len(clips)} clips, {media} s of media, -j {args.jobs}")
        watcher, finish, code = asyncio.run(run(write_config(root, clips), args.jobs))
        start = watcher.start if watcher.start is not None else finish
        print(f"run: {finish - start:.1f} s wall (exit {code})")
        for mark in MARKS:
            if mark not in watcher.marks:
                print(f"{mark:.0%} done: never reached")
                continue
            when, eta = watcher.marks[mark]
            left = finish - when
            if eta is None:
                print(f"{mark:.0%} done at {when - start:6.1f} s: no ETA yet, real {left:.1f} s")
                continue
            error = (eta - left) / left * 100 if left > 0 else float("nan")
            print(f"{mark:.0%} done at {when - start:6.1f} s: ETA {eta:6.1f} s, real left "
                  f"{left:6.1f} s, error {error:+.1f}% of the time left "
                  f"({(eta - left) / (finish - start) * 100:+.1f}% of the run)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
