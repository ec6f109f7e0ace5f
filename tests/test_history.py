"""Unit tests of the downsampled job history: bounded, whole life, true aggregates."""
# pylint: disable=missing-function-docstring

from __future__ import annotations

import random
from array import array
import sys

import pytest

from orch_tui.tui.history import HISTORY_POINTS, Aggregate, JobHistory, Series


def reference(samples: list[float], stride: int, aggregate: Aggregate) -> list[float]:
    """What the points must be: the samples cut into runs of `stride`, each aggregated."""
    chunks = [samples[i:i + stride] for i in range(0, len(samples), stride)]
    if aggregate is Aggregate.MEAN:
        return [sum(chunk) / len(chunk) for chunk in chunks]
    if aggregate is Aggregate.MIN:
        return [min(chunk) for chunk in chunks]
    return [max(chunk) for chunk in chunks]


@pytest.mark.parametrize("count", [0, 1, 2, 119, 120, 121, 239, 240, 241, 1000, 86_400])
def test_length_is_bounded_and_never_collapses(count):
    series = Series(Aggregate.MEAN)
    for value in range(count):
        series.add(float(value))
    assert len(series) == len(series.values()) <= HISTORY_POINTS
    if count >= HISTORY_POINTS:
        assert len(series) >= HISTORY_POINTS // 2
    else:
        assert len(series) == count  # nothing downsampled before it is needed


@pytest.mark.parametrize("aggregate", list(Aggregate))
@pytest.mark.parametrize("count", [7, 120, 500, 3601])
def test_points_are_true_aggregates_of_the_whole_life(aggregate, count):
    rng = random.Random(count)
    samples = [rng.uniform(0, 16) for _ in range(count)]
    series = Series(aggregate)
    for value in samples:
        series.add(value)
    stride = series.stride
    # The points cover every sample from the first: nothing at the start is forgotten.
    assert (len(series) - 1) * stride < count <= len(series) * stride
    assert series.values() == pytest.approx(reference(samples, stride, aggregate), rel=1e-6)


def test_a_spike_survives_in_the_max_and_is_averaged_in_the_mean():
    history = JobHistory()
    for second in range(3600):
        spike = second == 1234
        history.add(8.0 if spike else 1.0, 4e9 if spike else 1e8)
    assert max(history.rss.values()) == pytest.approx(4e9)
    assert max(history.cpu.values()) < 2.0  # one busy second is not a busy minute
    assert min(history.cpu.values()) == pytest.approx(1.0)


def test_tail_is_the_end_of_the_values():
    series = Series(Aggregate.MAX, capacity=8)
    for value in range(37):
        series.add(float(value))
        for count in (0, 1, 3, 8, 20):
            expected = series.values()[-count:] if count else []
            assert series.tail(count) == expected


def test_memory_is_bounded_from_the_first_sample():
    series = Series(Aggregate.MEAN)
    # The exact array of `capacity` float32s, plus CPython's over-allocation on append.
    bound = sys.getsizeof(array("f", bytes(4 * HISTORY_POINTS))) + 4 * (HISTORY_POINTS // 8 + 8)
    largest = 0
    for value in range(100_000):
        series.add(float(value))
        # pylint: disable-next=protected-access  # the storage is the point of this test
        largest = max(largest, sys.getsizeof(series._points))
    assert largest <= bound


def test_capacity_must_be_even():
    with pytest.raises(ValueError):
        Series(Aggregate.MEAN, capacity=7)
