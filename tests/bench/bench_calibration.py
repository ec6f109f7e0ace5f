"""Calibration's output estimate against the real output, on real ffmpeg (prints, never asserts).

    python tests/bench/bench_calibration.py [--seconds 30] [--runs 3] [--windows 5 2]

Makes one 1080p clip of --seconds (testsrc2 with temporal noise, ~16 Mbit/s), then for each
stabilization window runs the orchestrator --runs times on a 1080p->720p libx264 veryfast
transcode of it, and prints the calibrated output estimate, the real output size, the error,
and what the read offset alone would have estimated (the estimate before media time). Timing
matters here: on a loaded machine the window sees less of the job.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# pylint: disable-next=wrong-import-position  # after the path that makes tests importable
from tests.ffmpeg_clips import calibrate_transcode, make_1080p_clip


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


async def bench(seconds: int, runs: int, windows: list[float]) -> None:
    """Print one line per run and a summary per window."""
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        root = Path(tmp)
        clip = make_1080p_clip(root / "clip.mp4", seconds)
        print(f"clip: {seconds} s 1080p, {clip.stat().st_size / 1e6:.1f} MB")
        print(f"{'window':>6} {'run':>3} {'source':>10} {'basis':>10} {'estimate':>10} "
              f"{'real':>10} {'error':>7} {'read-offset est.':>16}")
        for window in windows:
            errors = []
            for run in range(1, runs + 1):
                result = await calibrate_transcode(root / f"w{window:g}-{run}", clip, window)
                errors.append(result.error)
                basis = result.basis.value if result.basis else "-"
                print(f"{window:>5g}s {run:>3} {result.source.value:>10} {basis:>10} "
                      f"{result.estimate:>10} {result.real:>10} {_pct(result.error):>7} "
                      f"{_pct(result.read_error):>16}")
            worst = max(errors, key=abs)
            print(f"{window:>5g}s mean error {_pct(statistics.mean(errors))}, "
                  f"worst {_pct(worst)}")


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--windows", type=float, nargs="+", default=[5.0, 2.0])
    args = parser.parse_args()
    asyncio.run(bench(args.seconds, args.runs, args.windows))


if __name__ == "__main__":
    main()
