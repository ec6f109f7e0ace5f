"""Calibration against real ffmpeg: the output estimate of a 1080p->720p transcode, taken while
the job runs, is within 10% of the file it really writes, at a 5 s and a 2 s window.

The issue's figure is for 30 s clips; the test uses them too (one clip, made once per session,
about 12 s to make and 13 s per transcode on 2 cores): a shorter clip could end inside the 5 s
window on a fast machine, and then the whole-life figure, not the estimate, would be tested.
tests/bench/bench_calibration.py prints the same figures for several runs."""

from __future__ import annotations

import os
import shutil

import pytest

from orch_tui.core import events as ev
from tests.ffmpeg_clips import calibrate_transcode, make_1080p_clip

pytestmark = pytest.mark.ffmpeg

if not shutil.which("ffmpeg") and not os.environ.get("CI"):
    # .ci/run installs ffmpeg (and in CI this test must run); a developer machine is told why.
    pytest.skip("ffmpeg not installed (apt-get install ffmpeg)", allow_module_level=True)


@pytest.fixture(scope="session", name="clip_1080p")
def fixture_clip_1080p(tmp_path_factory):
    """One 30 s 1080p clip for the whole session."""
    return make_1080p_clip(tmp_path_factory.mktemp("clips") / "noise1080p.mp4", seconds=30)


@pytest.mark.parametrize("window", [5.0, 2.0])
async def test_calibrated_output_of_a_real_transcode_is_within_10_percent(
        clip_1080p, tmp_path, window):
    """The estimate taken in the window against the file the job really wrote."""
    result = await calibrate_transcode(tmp_path / "run", clip_1080p, window)
    # Measured in the window, from ffmpeg's media time (not the read offset, nor the end).
    assert result.source is ev.LimitSource.WINDOW, result
    assert result.basis is ev.OutputBasis.MEDIA_TIME, result
    assert abs(result.error) <= 0.10, result
