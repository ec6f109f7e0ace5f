"""The seed's own example, end to end: real ffmpeg scaling real clips to 1280x720."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import JobState, ProgressSource
from orch_tui.core.plan import load_plan
from tests.helpers import not_a_video, start_run

pytestmark = pytest.mark.ffmpeg

if not (shutil.which("ffmpeg") and shutil.which("ffprobe")) and not os.environ.get("CI"):
    # .ci/run installs ffmpeg (and in CI this test must run); a developer machine is told why.
    pytest.skip("ffmpeg/ffprobe not installed (apt-get install ffmpeg)", allow_module_level=True)


def make_clip(path, seconds=1, size="320x240", rate=10):
    """A small test-pattern clip made by ffmpeg itself."""
    subprocess.run([
        "ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
        f"testsrc=duration={seconds}:size={size}:rate={rate}", "-pix_fmt", "yuv420p",
        str(path)
    ],
                   check=True)


def probe(path):
    """(width, height) of the first video stream, via ffprobe."""
    result = subprocess.run([
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
        "-of", "json",
        str(path)
    ],
                            capture_output=True,
                            text=True,
                            check=True)
    stream = json.loads(result.stdout)["streams"][0]
    return stream["width"], stream["height"]


def test_seed_example_scales_every_clip_to_720p(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    names = ["video1.mp4", "video2.mp4", "my holiday (2).mp4"]
    for name in names:
        make_clip(data / name)
    (tmp_path / "input_files.txt").write_text("".join(f"{data / n}\n" for n in names),
                                              encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"""
binary:
  path: ffmpeg
  flags:
    - "-i"
    - "{{input_file}}"
    - "-vf"
    - "scale=1280:720"
    - "{{output_file}}"
directories:
  input_file_list: {tmp_path / 'input_files.txt'}
  output_dir: {tmp_path / 'output'}
  output_suffix: _720p
resources:
  stabilization_seconds: 1
""",
                      encoding="utf-8")
    dry = subprocess.run([sys.executable, "-m", "orch_tui", "--config",
                          str(config), "--dry-run"],
                         capture_output=True,
                         text=True,
                         check=True)
    assert dry.stdout.splitlines()[0].endswith(
        f"-i {data / 'video1.mp4'} -vf scale=1280:720 {tmp_path / 'output' / 'video1_720p.mp4'}")
    result = subprocess.run([sys.executable, "-m", "orch_tui", "--config",
                             str(config)],
                            capture_output=True,
                            text=True,
                            timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    produced = sorted(p.name for p in (tmp_path / "output").iterdir() if p.is_file())
    assert produced == ["my holiday (2)_720p.mp4", "video1_720p.mp4", "video2_720p.mp4"]
    for name in produced:
        assert probe(tmp_path / "output" / name) == (1280, 720)
    logs = list((tmp_path / "output" / ".orch-tui" / "logs").rglob("*.log"))
    assert len(logs) == 3 and "Output #0" in logs[0].read_text(encoding="utf-8")


def transcode_config(tmp_path, names, extra_flags=()):
    """Clips of 6 s at 640x360, and a config scaling them to 720p with x264 (a few seconds of
    work each, long enough for several status lines and samples)."""
    data = tmp_path / "data"
    data.mkdir()
    for name in names:
        make_clip(data / name, seconds=6, size="640x360", rate=25)
    (tmp_path / "inputs.txt").write_text("".join(f"{data / n}\n" for n in names), encoding="utf-8")
    flags = [
        *extra_flags, "-i", "{input_file}", "-vf", "scale=1280:720", "-c:v", "libx264", "-preset",
        "fast", "{output_file}"
    ]
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "binary": {
            "path": shutil.which("ffmpeg"),
            "flags": flags
        },
        "directories": {
            "input_file_list": str(tmp_path / "inputs.txt"),
            "output_dir": str(tmp_path / "out"),
            "output_suffix": "_720p"
        },
        "resources": {
            "sample_interval": 0.2
        },
    }),
                      encoding="utf-8")
    return load_plan(config)


def samples_by_job(recorder):
    """Each job's JobSamples, and the time it ended, from the typed events."""
    ended = {e.job_id: e.time for e in recorder.of(ev.JobStateChanged) if e.state.finished}
    samples = {}
    for sample in recorder.of(ev.JobSample):
        samples.setdefault(sample.job_id, []).append(sample)
    return samples, ended


async def test_ffmpeg_progress_is_monotonic_ends_at_100_only_when_done_and_has_speed(tmp_path):
    plan = transcode_config(tmp_path, ["a.mp4", "b.mp4"])
    run = await start_run(plan, max_procs=2)
    assert await run.result(timeout=120) == 0
    samples, ended = samples_by_job(run.recorder)
    assert sorted(samples) == [1, 2]
    for job_id, seen in samples.items():
        assert all(s.progress_source is ProgressSource.FFMPEG for s in seen)
        known = [s for s in seen if s.progress is not None]
        progress = [s.progress for s in known]
        assert len(progress) >= 3, progress  # several status lines seen while it ran
        assert progress == sorted(progress), progress  # monotonic
        # Never 100% while running (every sample precedes the end), however far ffmpeg read.
        assert all(s.time <= ended[job_id] for s in seen) and max(progress) < 1.0
        # While x264 fills its lookahead ffmpeg says `time=-00:00:00.03 speed=N/A`; once media
        # time moves, every sample has its speed and fps.
        moving = [s for s in known if s.progress > 0]
        assert moving and all(s.speed is not None and s.fps is not None for s in moving), known
        assert known[-1].speed > 0 and known[-1].eta_seconds is not None
    rows = {e.job_id: e for e in run.recorder.of(ev.JobStateChanged) if e.state.finished}
    assert {row.state for row in rows.values()} == {JobState.SUCCEEDED}


async def test_ffmpeg_with_nostats_shows_no_progress_rather_than_a_guess(tmp_path):
    plan = transcode_config(tmp_path, ["a.mp4"], extra_flags=["-nostats"])
    run = await start_run(plan, max_procs=1)
    assert await run.result(timeout=120) == 0
    samples, _ended = samples_by_job(run.recorder)
    seen = samples[1]
    assert len(seen) >= 3
    assert [s.progress for s in seen[:-1]] == [None] * (len(seen) - 1)  # the read offset unused
    assert any(s.read_fraction for s in seen)  # ffmpeg was reading all along


async def test_a_calibrated_ffmpeg_run_with_a_corrupt_clip_reports_true_figures(tmp_path):
    """The issue's end-to-end check: clips of known duration and one corrupt file, calibrated
    (no fixed limit). Progress is monotonic and 100% only at the end, speed is present, the
    finished rows' sizes are the files' sizes, and the corrupt clip's reason is ffmpeg's own."""
    transcode_config(tmp_path, ["a.mp4", "b.mp4", "c.mp4"])
    bad = tmp_path / "data" / "bad.mp4"
    # As large as a good clip, so the calibrated figure (scaled to the typical input) is one
    # clip's output.
    bad.write_bytes(not_a_video((tmp_path / "data" / "a.mp4").stat().st_size))
    with open(tmp_path / "inputs.txt", "a", encoding="utf-8") as handle:
        handle.write(f"{bad}\n")
    plan = load_plan(tmp_path / "config.yaml")
    run = await start_run(plan)
    assert await run.result(timeout=180) == 1  # the corrupt clip failed
    samples, ended = samples_by_job(run.recorder)
    finals = {e.job_id: e for e in run.recorder.of(ev.JobStateChanged) if e.state.finished}
    assert [finals[i].state for i in (1, 2, 3, 4)] == [JobState.SUCCEEDED] * 3 + [JobState.FAILED]
    for job_id in (1, 2, 3):
        known = [s.progress for s in samples[job_id] if s.progress is not None]
        assert known == sorted(known) and max(known, default=0) < 1.0, known
        assert all(s.time <= ended[job_id] for s in samples[job_id])
        assert any(s.speed for s in samples[job_id]), samples[job_id]
        output = tmp_path / "out" / f"{'abc'[job_id - 1]}_720p.mp4"
        assert finals[job_id].output_bytes == output.stat().st_size
    outputs = [(tmp_path / "out" / f"{name}_720p.mp4").stat().st_size for name in "abc"]
    calibrated = run.recorder.of(ev.CalibrationFinished)[0].profile.output_bytes
    assert abs(calibrated / (sum(outputs) / 3) - 1) <= 0.10, (calibrated, outputs)
    assert "Invalid data found when processing input" in finals[4].detail, finals[4]
    assert "bad.mp4" in finals[4].detail
