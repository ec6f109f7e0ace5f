"""Makespan of `--adaptive` against the seed's rule and `parallel -j N` on real ffmpeg (prints,
never asserts).

    python tests/bench/bench_adaptive.py [--seconds 30] [--clips 6] [--runs 3] [--max-n 4]

Makes one 1080p clip of --seconds, links it as --clips inputs, and times in one run, --runs
times each: GNU parallel -j 1..--max-n on the same 1080p->720p libx264 veryfast command, then
orch-tui headless with the seed's rule and with --adaptive. Prints medians, each against the
best parallel, the load average, and one line of key=value figures. A shared machine makes the
figures noisy: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# pylint: disable-next=wrong-import-position  # after the path that makes tests importable
from tests.ffmpeg_clips import make_1080p_clip

FLAGS = ["-i", "{input_file}", "-vf", "scale=-2:720", "-c:v", "libx264", "-preset", "veryfast"]


def _workspace(root: Path, clip: Path, clips: int) -> list[Path]:
    (root / "in").mkdir()
    inputs = []
    for i in range(clips):
        path = root / "in" / f"clip{i}.mp4"
        os.link(clip, path)
        inputs.append(path)
    (root / "inputs.txt").write_text("".join(f"{p}\n" for p in inputs), encoding="utf-8")
    flags = ", ".join(f'"{flag}"' for flag in [*FLAGS, "{output_file}"])
    (root / "config.yaml").write_text(
        f"binary:\n  path: ffmpeg\n  flags: [{flags}]\n"
        f"directories:\n  input_file_list: inputs.txt\n  output_dir: out\n"
        f"  output_suffix: _720p\n",
        encoding="utf-8")
    return inputs


def _timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _parallel(root: Path, jobs: int) -> float:
    out = root / f"par{jobs}"
    out.mkdir(exist_ok=True)
    command = shlex.join(["ffmpeg", "-v", "error", "-nostdin", "-y", *FLAGS[:-1]]).replace(
        "{input_file}", "{}") + f" {shlex.quote(FLAGS[-1])} {out}/{{/.}}_720p.mp4"
    command = command.replace("'{}'", "{}")
    return _timed(["parallel", "-j", str(jobs), command, ":::", *map(str, root.glob("in/*"))], root)


def _orch(root: Path, *extra: str) -> float:
    subprocess.run(["rm", "-rf", str(root / "out")], check=True)
    return _timed(
        [sys.executable, "-m", "orch_tui", "--headless", "--fresh", *extra, "config.yaml"], root)


def makespans(seconds: int,
              clips: int,
              runs: int,
              max_n: int = 4,
              base: Path | None = None) -> dict[str, float]:
    """Median makespans in seconds, `runs` times each in turn: parallel_jN for N = 1..max_n,
    then orch_default and orch_adaptive, on `clips` links of one 1080p clip of `seconds` (in a
    temporary folder under `base`)."""
    with tempfile.TemporaryDirectory(prefix="bench-adaptive-", dir=base) as tmp:
        root = Path(tmp)
        clip = make_1080p_clip(root / "clip.mp4", seconds)
        _workspace(root, clip, clips)
        times: dict[str, list[float]] = {}
        for _ in range(runs):
            for jobs in range(1, max_n + 1):
                times.setdefault(f"parallel_j{jobs}", []).append(_parallel(root, jobs))
            times.setdefault("orch_default", []).append(_orch(root))
            times.setdefault("orch_adaptive", []).append(_orch(root, "--adaptive"))
    return {name: statistics.median(values) for name, values in times.items()}


def best_parallel(medians: dict[str, float]) -> float:
    """The shortest makespan of any `parallel -j N`: what the ratios are taken against."""
    return min(value for name, value in medians.items() if name.startswith("parallel"))


def main() -> None:
    """Run every contender --runs times; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-n", type=int, default=4)
    args = parser.parse_args()
    medians = makespans(args.seconds, args.clips, args.runs, args.max_n)
    best = best_parallel(medians)
    print(f"{args.clips} clips of {args.seconds} s, {args.runs} runs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, value in medians.items():
        print(f"{name:>16} {value:7.2f} s  {value / best:5.2f}x best parallel")
    print(" ".join(f"{name}={value:.2f}" for name, value in medians.items()) +
          f" adaptive_ratio={medians['orch_adaptive'] / best:.3f}"
          f" default_ratio={medians['orch_default'] / best:.3f}")


if __name__ == "__main__":
    main()
