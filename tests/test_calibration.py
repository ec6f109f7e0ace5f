"""Calibration arithmetic: output estimates, whole-life figures and continuous learning."""

from __future__ import annotations

import pytest

from orch_tui.core import events as ev
from orch_tui.core.calibration import (MIN_MEDIA_FRACTION, CalibrationMeter, ProfileLearner,
                                       estimate_output_ratio, expected_output, typical_input_size,
                                       whole_life_profile)
from orch_tui.core.events import JobState, OutputBasis, ProgressSource
from orch_tui.core.probes import Progress
from orch_tui.core.scaling import ProcessProfile
from tests.fake_runner import Script, start_fake_run

MB = 1024 * 1024


def test_output_is_extrapolated_from_the_read_offset():
    # 25 MB written after reading a quarter of a 400 MB input: 100 MB expected, ratio 0.25.
    assert estimate_output_ratio(25 * MB, 100 * MB, 400 * MB) == pytest.approx(0.25)


def test_without_a_read_offset_the_output_is_assumed_at_least_as_large_as_the_input():
    assert estimate_output_ratio(10 * MB, None, 400 * MB) == 1.0
    assert estimate_output_ratio(800 * MB, None, 400 * MB) == 2.0
    # A read offset too small to extrapolate from falls back the same way.
    assert estimate_output_ratio(MB, 1024, 400 * MB) == 1.0


def test_meter_skips_the_first_cpu_sample_and_keeps_the_peak_rss():
    meter = CalibrationMeter(input_size=100 * MB)
    for cpu, rss, out, offset in [(0.0, 10 * MB, 0, None), (1.0, 50 * MB, MB, 10 * MB),
                                  (0.8, 40 * MB, 2 * MB, 20 * MB)]:
        meter.add(cpu, rss, out, offset)
    assert meter.cpu_cores() == pytest.approx(0.9)
    assert meter.peak_rss == 50 * MB
    assert meter.output_ratio() == pytest.approx(0.1)
    profile = meter.profile(typical_input=200 * MB)
    assert profile.output_bytes == 20 * MB and profile.source == "calibration"


def test_whole_life_profile_is_cpu_seconds_over_wall_time():
    profile = whole_life_profile(cpu_seconds=3.0,
                                 wall_seconds=2.0,
                                 peak_rss=64 * MB,
                                 output_bytes=5 * MB,
                                 input_size=10 * MB,
                                 typical_input=20 * MB)
    assert profile.cpu_cores == pytest.approx(1.5)
    assert profile.output_bytes == 10 * MB and profile.source == "whole-life"


def test_learner_takes_the_90th_percentile_of_every_job():
    learner = ProfileLearner()
    assert learner.profile(MB) is None and learner.ratio() == 1.0
    for i in range(1, 11):
        learner.add(cpu_cores=i / 10, peak_rss=i * MB, output_ratio=i / 100)
    profile = learner.profile(typical_input=100 * MB)
    assert profile.rss_bytes == 9 * MB
    assert profile.cpu_cores == pytest.approx(0.9)
    assert learner.ratio() == pytest.approx(0.09)
    assert profile.output_bytes == pytest.approx(9 * MB, rel=0.01)
    assert learner.observations == 10


def test_typical_input_is_the_mean_of_what_remains():
    assert typical_input_size([MB, 3 * MB]) == 2 * MB
    assert typical_input_size([]) == 0


# --- the output estimate from media time (ffmpeg's probe), the read offset as a fallback

#: ffmpeg 5.1's write, as traced on real transcodes (the file grows 256 KiB at a time).
WRITE = 256 * 1024


def ffmpeg(fraction: float | None, written: int | None = None) -> Progress:
    """ffmpeg's probe after a status line at `fraction` of the media that said `size=written`."""
    return Progress(ProgressSource.FFMPEG, fraction, written=written)


def test_media_time_pools_each_status_lines_own_size_plus_half_a_write():
    meter = CalibrationMeter(input_size=100 * MB)
    samples = [  # the bytes on disk at the sweep, then what the latest status line said
        (0, None),  # nothing printed yet
        (48, ffmpeg(0.0, 0)),  # time=-00:00:00.03, x264 fills its lookahead: only headers
        (48, ffmpeg(0.01, 0)),  # media time moved, but nothing is written: tells nothing
        # A new status line: its own size counts, not the file's a moment later at the sweep.
        (48 + 8 * WRITE, ffmpeg(0.1, 7 * WRITE)),
        (48 + 9 * WRITE, ffmpeg(0.1, 7 * WRITE)),  # the same status line at a later sweep
        (48 + 25 * WRITE, ffmpeg(0.3, 24 * WRITE)),  # counted
    ]
    for on_disk, progress in samples:
        meter.add(1.0, MB, on_disk, 90 * MB, progress)
    # The file grew by 8, 1 and 16 writes between sweeps: ffmpeg writes 256 KiB at a time, and
    # holds half of that on average. (7 + 24 + 2 * 0.5) writes over (0.1 + 0.3) of the media:
    # 8 MB over 0.4, 20 MB expected of a 100 MB input.
    assert meter.write_unit == WRITE
    assert meter.output_basis() is OutputBasis.MEDIA_TIME
    assert meter.output_ratio() == pytest.approx(0.2)
    assert meter.output_estimate() == pytest.approx(20 * MB, rel=1e-6)


def test_the_write_is_learned_from_whole_writes_only():
    meter = CalibrationMeter(input_size=100 * MB)
    # 48 -> 65536 is a write of 256 KiB caught half way (the kernel extends the file page by
    # page), and so is the growth after it: neither is a number of writes.
    for on_disk in [48, 65536, 48 + WRITE, 48 + 2 * WRITE, 48 + 4 * WRITE]:
        meter.add(1.0, MB, on_disk, None)
    assert meter.write_unit == WRITE


def test_a_status_line_without_a_size_pairs_its_time_with_the_file_at_the_sweep():
    meter = CalibrationMeter(input_size=100 * MB)
    for on_disk, fraction in [(48, 0.0), (2 * MB, 0.1), (6 * MB, 0.3)]:
        meter.add(1.0, MB, on_disk, 90 * MB, ffmpeg(fraction))  # size=N/A
    # (2 + 6) MB over (0.1 + 0.3) of the media, with no half write: that size is the file's.
    assert meter.output_basis() is OutputBasis.MEDIA_TIME
    assert meter.output_ratio() == pytest.approx(0.2)


def test_ffmpeg_that_cannot_tell_falls_back_to_the_read_offset_then_to_the_input_size():
    meter = CalibrationMeter(input_size=100 * MB)
    meter.add(1.0, MB, 0, None, ffmpeg(None))
    assert meter.output_basis() is OutputBasis.INPUT_SIZE and meter.output_ratio() == 1.0
    meter.add(1.0, MB, 10 * MB, 50 * MB, ffmpeg(None))  # -nostats: no time=
    assert meter.output_basis() is OutputBasis.INPUT_READ
    assert meter.output_ratio() == pytest.approx(0.2)


def test_the_generic_probe_extrapolates_from_the_read_offset_never_from_its_fraction():
    meter = CalibrationMeter(input_size=100 * MB)
    for written, offset in [(MB, 10 * MB), (2 * MB, 20 * MB)]:
        meter.add(1.0, MB, written, offset, Progress(ProgressSource.READ_OFFSET,
                                                     offset / (100 * MB)))
    assert meter.output_basis() is OutputBasis.INPUT_READ
    assert meter.output_ratio() == pytest.approx(0.1) and meter.media_done == 0


def test_a_running_jobs_own_extrapolation_waits_for_enough_media():
    ffmpeg = Progress(ProgressSource.FFMPEG, 0.5)
    assert expected_output(30 * MB, ffmpeg, fallback=99) == 60 * MB
    early = Progress(ProgressSource.FFMPEG, MIN_MEDIA_FRACTION / 2)
    assert expected_output(MB, early, fallback=99) == 99
    assert expected_output(MB, Progress(ProgressSource.READ_OFFSET, 0.5), fallback=99) == 99
    assert expected_output(MB, None, fallback=99) == 99


def test_the_windows_estimated_ratio_stands_only_until_the_first_real_one():
    learner = ProfileLearner()
    learner.seed(ProcessProfile(1.0, MB, 100 * MB), 1.0, measured=False)
    assert learner.ratio() == 1.0 and learner.profile(100 * MB).output_bytes == 100 * MB
    learner.add(cpu_cores=1.0, peak_rss=MB, output_ratio=0.2)
    assert learner.ratio() == pytest.approx(0.2)
    assert learner.profile(100 * MB).output_bytes == 20 * MB
    assert learner.observations == 2  # the window's CPU and memory still count


def test_a_measured_seed_ratio_is_one_observation_among_the_others():
    """A whole-life or previous run's ratio is real: it stays among the observations."""
    learner = ProfileLearner()
    learner.seed(ProcessProfile(1.0, MB, 100 * MB), 1.0)
    learner.add(cpu_cores=1.0, peak_rss=MB, output_ratio=0.2)
    assert learner.ratio() == 1.0  # the 90th percentile of two real jobs is the larger


# --- on the fake runner: what calibration publishes, and learning while the run goes on


async def test_calibration_of_ffmpeg_estimates_from_media_time_although_reads_run_ahead(workspace):
    """ffmpeg's media fraction, not its read offset (half the input ahead), drives the estimate."""
    ws = workspace(3, size=4 * MB, resources={"stabilization_seconds": 2.0})
    script = Script(seconds=8, output_ratio=0.3, ffmpeg=True, read_ahead=0.5)
    run = await start_fake_run(ws.plan(), script)
    assert await run.result() == 0
    progress = run.recorder.of(ev.CalibrationProgress)
    assert progress[-1].output_basis is OutputBasis.MEDIA_TIME
    assert progress[-1].output_estimate == pytest.approx(0.3 * 4 * MB, rel=0.01)
    finished = run.recorder.of(ev.CalibrationFinished)[0]
    assert finished.source is ev.LimitSource.WINDOW
    assert finished.output_basis is OutputBasis.MEDIA_TIME
    assert finished.profile.output_bytes == pytest.approx(0.3 * 4 * MB, rel=0.01)


async def test_calibration_of_a_generic_job_says_it_extrapolated_from_the_input_read(workspace):
    """Without media time the read offset is the fallback, and the event says so."""
    ws = workspace(2, size=4 * MB, resources={"stabilization_seconds": 2.0})
    run = await start_fake_run(ws.plan(), Script(seconds=8, output_ratio=0.3, read_ahead=0.25))
    assert await run.result() == 0
    finished = run.recorder.of(ev.CalibrationFinished)[0]
    assert finished.output_basis is OutputBasis.INPUT_READ
    # A quarter of the work done, half of the input read: half the real size (why ffmpeg's
    # media time is preferred when there is one).
    assert finished.profile.output_bytes == pytest.approx(0.15 * 4 * MB, rel=0.05)


async def test_every_finished_job_teaches_the_ratio_applied_to_each_remaining_input(workspace):
    """The projected disk use: the first real ratio, applied to each remaining input's size."""
    ws = workspace(6, size=MB, resources={"stabilization_seconds": 0.5, "max_processes": 1})
    for i, path in enumerate(ws.inputs):  # inputs of 1 to 6 MB: a typical size would be wrong
        path.write_bytes(b"x" * (i + 1) * MB)
    # A window too short to extrapolate from (under 2% read): the estimate is the input's size.
    script = Script(seconds=40, output_ratio=0.25)
    run = await start_fake_run(ws.plan(), script)
    orch = run.orchestrator

    def first_done() -> bool:
        return orch.jobs[1].state is JobState.SUCCEEDED

    await run.wait_for(lambda: orch.jobs[2].state is JobState.RUNNING and first_done())
    assert run.recorder.of(ev.CalibrationFinished)[0].output_basis is OutputBasis.INPUT_SIZE
    # 1 MB of output per 4 MB of input, learned from job 1 (not the window's 1.0): the queued
    # jobs' 3..6 MB at that ratio, and job 2's 2 MB less what it wrote.
    written = orch.jobs[2].last.output_bytes if orch.jobs[2].last else 0
    expected = int(0.25 * (3 + 4 + 5 + 6) * MB) + int(0.25 * 2 * MB) - written
    assert orch.projected_disk_use() == pytest.approx(expected, abs=2)
    assert await run.result() == 0


def test_ffmpeg_that_muxed_nothing_in_the_window_is_planned_at_the_input_size():
    """A slow x264 preset holds its frames in lookahead: every status line of the window says
    `size=0kB` with media time going on, and the file holds only its 48-byte header. The read
    offset would extrapolate the header (a 1 MB output planned as 124 B: the disk limit off)."""
    meter = CalibrationMeter(input_size=100 * MB)
    for fraction, offset in [(0.0, 20 * MB), (0.05, 40 * MB), (0.1, 50 * MB)]:
        meter.add(1.0, MB, 48, offset, Progress(ProgressSource.FFMPEG, fraction, written=0))
    assert meter.output_basis() is OutputBasis.INPUT_SIZE and meter.output_ratio() == 1.0
    # The same for a running job's projection, and for a job of any kind that writes its
    # output only at its end (nothing written: nothing to extrapolate from its read offset).
    lookahead = Progress(ProgressSource.FFMPEG, 0.25, written=0)
    assert expected_output(48, lookahead, fallback=99 * MB) == 99 * MB
    generic = CalibrationMeter(input_size=100 * MB)
    generic.add(1.0, MB, 0, 50 * MB, Progress(ProgressSource.READ_OFFSET, 0.5))
    assert generic.output_basis() is OutputBasis.INPUT_SIZE and generic.output_ratio() == 1.0
