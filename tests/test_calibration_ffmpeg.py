"""Calibration against real ffmpeg: the output estimate of a 1080p->720p transcode, taken while
the job runs, is within 10% of the file it really writes at a 5 s window, and comes from media
time at a 2 s window (where the 10% figure is the benchmark's: it depends on the machine's speed).

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


async def test_calibrated_output_of_a_real_transcode_is_within_10_percent_at_5_s(
        clip_1080p, tmp_path):
    """The estimate taken in a 5 s window against the file the job really wrote."""
    result = await calibrate_transcode(tmp_path / "run", clip_1080p, 5.0)
    # Measured in the window, from ffmpeg's media time (not the read offset, nor the end).
    assert result.source is ev.LimitSource.WINDOW, result
    assert result.basis is ev.OutputBasis.MEDIA_TIME, result
    assert abs(result.error) <= 0.10, result


async def test_a_2_s_window_estimates_from_media_time_and_beats_the_read_offset(
        clip_1080p, tmp_path):
    """At a 2 s window the estimate rests on a few seconds of media and a few of ffmpeg's 256 KiB
    writes, so how close it gets depends on how fast the machine encodes (bench_calibration.py:
    +0% to +7% at 4x realtime, the read offset -12% to -20%; with a busy loop taking one of the
    two cores, +6% to +36%, the read offset -44% to -52%). Here: it comes from media time, is
    closer than the read offset, and within 40%, the busy machine's worst with some room (25%
    failed once at +26%, with another test suite running beside this one: the machines are
    shared, and a loaded one must not turn this red)."""
    result = await calibrate_transcode(tmp_path / "run", clip_1080p, 2.0)
    assert result.source is ev.LimitSource.WINDOW, result
    assert result.basis is ev.OutputBasis.MEDIA_TIME, result
    assert result.read_error is not None and abs(result.error) < abs(result.read_error), result
    assert abs(result.error) <= 0.40, result
