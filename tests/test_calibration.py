"""Calibration arithmetic: output estimates, whole-life figures and continuous learning."""

from __future__ import annotations

import pytest

from orch_tui.core.calibration import (CalibrationMeter, ProfileLearner, estimate_output_ratio,
                                       typical_input_size, whole_life_profile)

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
