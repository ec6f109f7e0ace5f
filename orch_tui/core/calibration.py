"""Turning samples of real jobs into a per-process profile: the seed's calibration run, continued.

`CalibrationMeter` watches the one calibration job through its stabilization window; when the
job ends inside the window it switches to whole-life figures. `ProfileLearner` keeps learning from
every finished job afterwards so the limit follows what the jobs really use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from orch_tui.core.events import JobState, LimitSource, OutputBasis, ProgressSource
from orch_tui.core.fsutil import file_size
from orch_tui.core.job import Job
from orch_tui.core.probes import Progress
from orch_tui.core.scaling import ProcessProfile, learn_profile, percentile

#: Below this read fraction the written/read extrapolation is too noisy to trust.
MIN_READ_FRACTION = 0.02
#: ffmpeg's writes are whole buffers, a multiple of this: a file seen growing by anything else was
#: caught in the middle of a write (the kernel extends it page by page) and teaches nothing.
WRITE_GRAIN = 4096
#: A running job's own extrapolation (projected disk use) waits for this much media done.
MIN_MEDIA_FRACTION = 0.1


def estimate_output_ratio(output_bytes: int, read_offset: int | None, input_size: int) -> float:
    """Expected final output size over input size, from the read offset of a job still running
    (the fallback for jobs whose probe knows no media time).

    Bytes written so far divided by the fraction of the input read so far; without a usable read
    offset, or with nothing written yet (a job that writes at its end: nothing to extrapolate),
    fall back to what is written against the whole input, but never below 1.0 (assume the
    output may be as large as its input) so the disk constraint errs on the safe side."""
    if input_size <= 0:
        return 1.0 if output_bytes == 0 else float(output_bytes)
    read = read_offset / input_size if read_offset is not None else 0.0
    if output_bytes > 0 and read >= MIN_READ_FRACTION:
        return output_bytes / min(1.0, read) / input_size
    return max(1.0, output_bytes / input_size)


def typical_input_size(sizes: Sequence[int]) -> int:
    """The input size the disk constraint plans for: the mean of the inputs still to run."""
    return int(sum(sizes) / len(sizes)) if sizes else 0


def expected_output(output_bytes: int, progress: Progress | None, fallback: int) -> int:
    """A running job's final output size: what it wrote over its media fraction done once ffmpeg
    says it is at least MIN_MEDIA_FRACTION through (early on, headers and the first keyframe
    weigh too much); `fallback` (the learned ratio times its input) otherwise."""
    if (progress is None or progress.source is not ProgressSource.FFMPEG
            or progress.fraction is None or progress.fraction < MIN_MEDIA_FRACTION):
        return fallback
    if (progress.written if progress.written is not None else output_bytes) <= 0:
        return fallback  # nothing muxed yet (a slow preset's lookahead): only headers on disk
    return int(output_bytes / progress.fraction)


@dataclass
# pylint: disable-next=too-many-instance-attributes  # the window's figures and the estimate's sums
class CalibrationMeter:
    """Accumulates one job's samples during the stabilization window.

    The output estimate pools ffmpeg's status lines: the sum of the sizes each says the file had
    at its `time=`, plus half a write each, over the sum of their media fractions. Size and time
    come from one instant of ffmpeg's, so the estimate does not depend on when a sweep looked.
    ffmpeg writes whole buffers (256 KiB with ffmpeg 5.1), so the file lags what was muxed by
    half a write on average; the write is learned as the greatest common divisor of the file's
    growths between sweeps. Measured on real 1080p->720p transcodes (traces at 1x to 4x
    realtime; tests/bench/bench_calibration.py in the orchestrator): pairing the file's size at
    the sweep after a status line with that line's time, as this did before, was off by +4% to
    +17% at a 2 s window at 4x realtime (a quarter-second sweep is a second of media there),
    this by +0% to +7%. Short windows on slow machines err high (+6% to +36% at 2 s at 2x to
    3x realtime): the first write holds the headers and the first keyframe, far more than their
    share of the media, and a 2 s window there sees one or two writes. A status line without
    `size=` falls back to the sweep's file size."""

    input_size: int
    cpu: list[float] = field(default_factory=list)
    peak_rss: int = 0
    output_bytes: int = 0
    read_offset: int | None = None
    media_bytes: int = 0  # sum of the bytes written at each new status line's `time=`
    media_done: float = 0.0  # sum of the media fractions of those status lines
    half_writes: int = 0  # how many of those sizes are ffmpeg's own (the file lags a write)
    write_unit: int = 0  # ffmpeg's write, learned from the file's growths between sweeps
    _headers: int = 0  # what the job wrote before any media time
    _progress: float | None = None
    #: ffmpeg told media time: then its file, not how far it read, says what it wrote (with
    #: -nostats it tells none, and the read offset is all there is).
    _told_time: bool = False

    def add(self,
            cpu_cores: float,
            rss_bytes: int,
            output_bytes: int,
            read_offset: int | None,
            progress: Progress | None = None) -> None:
        """Record one sample (the first CPU figure of a new process is 0 and is dropped).
        `progress` is what the job's probe says."""
        self.cpu.append(cpu_cores)
        self.peak_rss = max(self.peak_rss, rss_bytes)
        growth = output_bytes - self.output_bytes
        if self.output_bytes > 0 and growth > 0 and growth % WRITE_GRAIN == 0:
            self.write_unit = math.gcd(self.write_unit, growth)
        self.output_bytes = output_bytes
        if read_offset is not None:
            self.read_offset = read_offset
        if progress is None or progress.source is not ProgressSource.FFMPEG:
            return
        fraction = progress.fraction
        self._told_time = self._told_time or bool(fraction)
        written = output_bytes if progress.written is None else progress.written
        if not fraction:  # before any media time (x264's lookahead): what is written is headers
            self._headers = max(self._headers, written)
        elif fraction != self._progress and written > self._headers:
            # A status line new since the last sweep, and media written beyond the headers.
            self.media_bytes += written
            self.media_done += fraction
            self.half_writes += progress.written is not None
        self._progress = fraction

    def output_basis(self) -> OutputBasis:
        """What `output_ratio` extrapolates from: media time when ffmpeg told it, else the
        read offset when far enough into the input, else the input's own size."""
        if self.media_done > 0:
            return OutputBasis.MEDIA_TIME
        size = self.input_size
        read = self.read_offset
        if (not self._told_time and self.output_bytes > 0 and read is not None and size > 0
                and read / size >= MIN_READ_FRACTION):
            return OutputBasis.INPUT_READ
        return OutputBasis.INPUT_SIZE

    def cpu_cores(self) -> float:
        """Mean cores over the window, skipping the first sample (no previous ticks yet)."""
        figures = self.cpu[1:] if len(self.cpu) > 1 else self.cpu
        return sum(figures) / len(figures) if figures else 0.0

    def output_ratio(self) -> float:
        """Estimated final output size over this job's input size (see `output_basis`)."""
        if self.media_done > 0 and self.input_size > 0:
            written = self.media_bytes + self.half_writes * self.write_unit / 2
            return written / self.media_done / self.input_size
        # ffmpeg that muxed nothing past its headers in the window (a slow preset's lookahead)
        # told nothing of its output: its read offset would extrapolate the headers.
        read = None if self._told_time else self.read_offset
        return estimate_output_ratio(self.output_bytes, read, self.input_size)

    def output_estimate(self) -> int:
        """Estimated final output size of this job, in bytes."""
        return int(self.output_ratio() * self.input_size)

    def profile(self, typical_input: int) -> ProcessProfile:
        """The profile at the end of the window, for an input of `typical_input` bytes."""
        return ProcessProfile(cpu_cores=self.cpu_cores(),
                              rss_bytes=self.peak_rss,
                              output_bytes=int(self.output_ratio() * typical_input),
                              source="calibration")


# The six figures of one finished job.
# pylint: disable-next=too-many-arguments,too-many-positional-arguments
def whole_life_profile(cpu_seconds: float, wall_seconds: float, peak_rss: int, output_bytes: int,
                       input_size: int, typical_input: int) -> ProcessProfile:
    """The profile of a job that ended inside the window: CPU seconds over wall time, peak RSS,
    actual output size scaled to the typical input."""
    ratio = output_bytes / input_size if input_size > 0 else 1.0
    cores = cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0
    return ProcessProfile(cpu_cores=cores,
                          rss_bytes=peak_rss,
                          output_bytes=int(ratio * typical_input),
                          source="whole-life")


@dataclass
class ProfileLearner:
    """Per-process figures from every finished job: the 90th percentile of what they used.

    Output sizes are learned as ratios (output size over input size, each finished job's own),
    so they apply to each remaining input's real size. A ratio extrapolated by the calibration
    window is an estimate, not a measurement: it stands only until the first job's real one."""

    quantile: float = 90.0
    cpu: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    estimate: float | None = None  # the window's extrapolated ratio, until a real one

    def seed(self, profile: ProcessProfile, ratio: float, measured: bool = True) -> None:
        """Start from the calibration figures so one odd job cannot swing the limit alone;
        `measured` False: the ratio was extrapolated from a job still running."""
        self.cpu.append(profile.cpu_cores)
        self.rss.append(profile.rss_bytes)
        if measured:
            self.ratios.append(ratio)
        else:
            self.estimate = ratio

    def add(self, cpu_cores: float, peak_rss: int, output_ratio: float | None) -> None:
        """Record one finished job's whole-life figures."""
        self.cpu.append(cpu_cores)
        self.rss.append(peak_rss)
        if output_ratio is not None:
            self.ratios.append(output_ratio)

    @property
    def observations(self) -> int:
        """How many jobs (calibration included) the figures come from."""
        return len(self.rss)

    def ratio(self) -> float:
        """The learned output/input size ratio: the percentile of the real ones, the window's
        estimate before any, 1.0 before anything."""
        if not self.ratios:
            return 1.0 if self.estimate is None else self.estimate
        return percentile(self.ratios, self.quantile)

    def profile(self, typical_input: int) -> ProcessProfile | None:
        """The learned profile, or None before anything was observed."""
        if not self.rss:
            return None
        return learn_profile(self.rss,
                             self.cpu, [r * typical_input for r in self.ratios or [self.ratio()]],
                             q=self.quantile)


def calibrated_profile(job: Job, meter: CalibrationMeter, typical_input: int,
                       now: float) -> tuple[ProcessProfile, float, LimitSource] | None:
    """What the calibration job says once its window is over: the window's figures while it
    runs, its whole life when it succeeded inside the window, nothing when it failed (then the
    next job is measured). Returns (profile, output ratio, source)."""
    if job.state.active:
        return meter.profile(typical_input), meter.output_ratio(), LimitSource.WINDOW
    if job.state is not JobState.SUCCEEDED:
        return None
    size = job.spec.input_size
    output = file_size(job.spec.output_path)
    wall = (job.ended or now) - (job.started or now)
    profile = whole_life_profile(job.cpu_seconds, wall, job.peak_rss, output, size, typical_input)
    return profile, output / size if size else 1.0, LimitSource.WHOLE_LIFE
