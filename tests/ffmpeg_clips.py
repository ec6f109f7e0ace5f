"""Realistic 1080p clips and a calibration run on a 1080p->720p transcode, shared by the real
ffmpeg calibration test and tests/bench/bench_calibration.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core.plan import load_plan
from tests.helpers import start_run


def make_1080p_clip(path: Path, seconds: int) -> Path:
    """A 1080p test pattern with temporal noise at about 16 Mbit/s, like a camera's file (a clean
    pattern compresses to almost nothing, and its output would be all headers); encoded with
    `ultrafast` to keep making it cheap."""
    subprocess.run([
        "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
        "testsrc2=size=1920x1080:rate=25", "-t",
        str(seconds), "-vf", "noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
        "-crf", "28", "-pix_fmt", "yuv420p",
        str(path)
    ],
                   check=True)
    return path


@dataclass(frozen=True)
class Calibrated:
    """What calibration estimated for one job, and what the job really wrote."""

    source: ev.LimitSource
    basis: ev.OutputBasis | None
    estimate: int
    real: int
    read_estimate: int | None  # what the read offset alone would have said (the old estimate)

    @property
    def error(self) -> float:
        """Relative error of the estimate (+0.05: 5% too large)."""
        return self.estimate / self.real - 1

    @property
    def read_error(self) -> float | None:
        """Relative error of the read-offset estimate."""
        return None if self.read_estimate is None else self.read_estimate / self.real - 1


async def calibrate_transcode(root: Path, clip: Path, window: float) -> Calibrated:
    """Run the orchestrator on one 1080p->720p transcode of `clip` with a stabilization window
    of `window` seconds; the calibrated output estimate against the real output's size."""
    root.mkdir(parents=True)
    (root / "inputs.txt").write_text(f"{clip}\n", encoding="utf-8")
    config = root / "config.json"
    config.write_text(json.dumps({
        "binary": {
            "path":
            shutil.which("ffmpeg"),
            "flags": [
                "-i", "{input_file}", "-vf", "scale=-2:720", "-c:v", "libx264", "-preset",
                "veryfast", "{output_file}"
            ]
        },
        "directories": {
            "input_file_list": str(root / "inputs.txt"),
            "output_dir": str(root / "out"),
            "output_suffix": "_720p"
        },
        "resources": {
            "stabilization_seconds": window
        },
    }),
                      encoding="utf-8")
    plan = load_plan(config)
    run = await start_run(plan)
    assert await run.result(timeout=300) == 0
    finished = run.recorder.of(ev.CalibrationFinished)[0]
    last = run.recorder.of(ev.CalibrationProgress)[-1]
    read = (int(last.output_bytes / last.read_fraction) if last.read_fraction else None)
    return Calibrated(finished.source, finished.output_basis, finished.profile.output_bytes,
                      plan.jobs[0].output_path.stat().st_size, read)
