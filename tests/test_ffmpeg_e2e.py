"""The seed's own example, end to end: real ffmpeg scaling real clips to 1280x720."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ffmpeg

if not (shutil.which("ffmpeg") and shutil.which("ffprobe")) and not os.environ.get("CI"):
    # .ci/run installs ffmpeg (and in CI this test must run); a developer machine is told why.
    pytest.skip("ffmpeg/ffprobe not installed (apt-get install ffmpeg)", allow_module_level=True)


def make_clip(path, seconds=1):
    """A small test-pattern clip made by ffmpeg itself."""
    subprocess.run([
        "ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
        f"testsrc=duration={seconds}:size=320x240:rate=10", "-pix_fmt", "yuv420p",
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
    logs = list((tmp_path / "output" / ".orch-tui" / "logs").iterdir())
    assert len(logs) == 3 and "Output #0" in logs[0].read_text(encoding="utf-8")
