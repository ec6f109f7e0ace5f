"""A job's resource history in fixed memory: a bounded number of points over its whole life.

A job is sampled about once a second for as long as it runs, hours for a long encode, and the
TUI keeps every job's history after it ends so the detail screen can chart a finished job. Keeping
every sample grows without bound; keeping the last N forgets how the job began. A `Series`
keeps at most `capacity` points covering everything since its first sample: each point
aggregates `stride` consecutive samples, and when the points fill up, adjacent pairs merge into
one and the stride doubles. Its memory is fixed at the first sample (an array of float32, 4
bytes a point) and its points stay evenly spaced in time.

No Textual here: the model and the tests use it without a screen.
"""

from __future__ import annotations

import enum
from array import array

#: Points kept per series: a detail sparkline is at most this wide on a 120-column terminal.
HISTORY_POINTS = 120


class Aggregate(enum.Enum):
    """What one point says about the samples it covers."""

    MEAN = "mean"
    MAX = "max"
    MIN = "min"


class Series:
    """Samples folded into at most `capacity` evenly spaced points (see the module docstring).

    A point is the exact mean, max or min (`aggregate`) of `stride` consecutive samples, up to
    float32 rounding: merging two full points of equal weight keeps it exact, (a + b) / 2 for a
    mean, max(a, b) for a max, min(a, b) for a min. The last point may cover fewer samples (the
    ones since the last full point); it is shown so a chart is current, and replaced as samples
    arrive.
    """

    __slots__ = ("_points", "_capacity", "_mean", "_pick", "_stride", "_count", "_acc")

    def __init__(self, aggregate: Aggregate, capacity: int = HISTORY_POINTS) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError(f"capacity must be even and at least 2, not {capacity}")
        self._points = array("f")
        self._capacity = capacity
        self._mean = aggregate is Aggregate.MEAN
        self._pick = min if aggregate is Aggregate.MIN else max
        self._stride = 1
        self._count = 0  # samples in the partial point
        self._acc = 0.0  # their sum (mean) or max (max)

    @property
    def stride(self) -> int:
        """Samples per full point (doubles each time the points fill up)."""
        return self._stride

    def add(self, value: float) -> None:
        """Fold one sample in (O(1) amortized; never allocates past `capacity` points)."""
        if self._mean:
            self._acc += value
        else:
            self._acc = value if self._count == 0 else self._pick(self._acc, value)
        self._count += 1
        if self._count < self._stride:
            return
        points = self._points
        points.append(self._acc / self._count if self._mean else self._acc)
        self._count, self._acc = 0, 0.0
        if len(points) == self._capacity:
            half = self._capacity // 2
            for i in range(half):  # in place: the buffer is never reallocated
                a, b = points[2 * i], points[2 * i + 1]
                points[i] = (a + b) / 2 if self._mean else self._pick(a, b)
            del points[half:]
            self._stride *= 2

    def values(self) -> list[float]:
        """The points, oldest first, the partial one last: at most `capacity` of them."""
        values = self._points.tolist()
        if self._count:
            values.append(self._acc / self._count if self._mean else self._acc)
        return values

    def tail(self, count: int) -> list[float]:
        """The last `count` points (a table's sparkline) without copying the rest."""
        if count <= 0:
            return []
        partial = 1 if self._count else 0
        points = self._points[max(0, len(self._points) - count + partial):].tolist()
        if partial:
            points.append(self._acc / self._count if self._mean else self._acc)
        return points

    def __len__(self) -> int:
        return len(self._points) + (1 if self._count else 0)


# pylint: disable-next=too-few-public-methods  # add() is its one command; series are read
class JobHistory:
    """One job's CPU and RSS, created at its first sample and kept after it ends.

    CPU points are means: cores used on average over the span is what a chart of load should
    show (a max would turn one busy second into a busy minute). RSS points are maxima: memory
    kills at its peak, so a spike must survive downsampling instead of being averaged away.
    """

    __slots__ = ("cpu", "rss", "first", "last")

    def __init__(self, capacity: int = HISTORY_POINTS) -> None:
        self.cpu = Series(Aggregate.MEAN, capacity)
        self.rss = Series(Aggregate.MAX, capacity)
        #: The times of the first and the latest sample: what a chart's time axis spans.
        self.first: float | None = None
        self.last: float | None = None

    def add(self, cpu_cores: float, rss_bytes: float, time: float | None = None) -> None:
        """Fold one sample of the job in (taken at `time`, when known)."""
        self.cpu.add(cpu_cores)
        self.rss.add(rss_bytes)
        if time is not None:
            self.first = time if self.first is None else self.first
            self.last = time


#: Points kept per system series: a resources chart is at most ~70 cells wide at 200 columns
#: (three side by side), and each point must stay one cell or less of it.
SYSTEM_POINTS = 256


# pylint: disable-next=too-few-public-methods  # add() is its one command; series are read
class SystemHistory:
    """The machine over the whole run, for the resources panel's charts: three series of at
    most SYSTEM_POINTS points each (3 KB in all, whatever the run's length), downsampled as a
    `Series` is (adjacent points merge, the stride doubles).

    CPU points are means (busy on average over the span). Available memory and disk headroom
    (free disk less the outputs still to be written) are minima: the reserve is crossed at the
    lowest point, so a dip must survive downsampling.
    """

    __slots__ = ("cpu", "memory", "disk", "first", "last")

    def __init__(self, capacity: int = SYSTEM_POINTS) -> None:
        self.cpu = Series(Aggregate.MEAN, capacity)
        self.memory = Series(Aggregate.MIN, capacity)
        self.disk = Series(Aggregate.MIN, capacity)
        self.first: float | None = None
        self.last: float | None = None

    def add(self, time: float, cpu_percent: float, available_memory: float,
            disk_headroom: float) -> None:
        """Fold one system sample in."""
        self.cpu.add(cpu_percent)
        self.memory.add(available_memory)
        self.disk.add(disk_headroom)
        self.first = time if self.first is None else self.first
        self.last = time
