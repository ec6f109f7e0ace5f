"""Progress probes: how far a job is, from what the job itself says, chosen per job.

The read offset on the input is a poor measure for ffmpeg, which reads ahead (demuxer buffers,
x264's lookahead) and so sits at 100% for its last seconds. ffmpeg already tells how far it is:
the input's `Duration:` in its header, then a status line about twice a second
(`frame= fps= size= time= bitrate= speed=`, ended by `\\r`). The ffmpeg probe reads that from the
job's log, incrementally (only the bytes new since the last sweep, at most LOG_CHUNK of them),
through a descriptor opened in the private logs folder (never by a path that could be a
symlink).

Every other job gets the generic probe: the read offset, capped at RUNNING_CAP until the job ends
(only success shows 100%). A probe that cannot tell gives None, never a guess: ffmpeg run with
`-nostats` or `-v quiet` prints no status line, so its progress stays None.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from orch_tui.core.events import ProgressSource
from orch_tui.core.plan import JobSpec

#: Running jobs show at most this: 100% means the job ended well, and only the end says so.
RUNNING_CAP = 0.99
#: Bytes of a job's log read per sweep at most: a chatty job costs the sweep a bounded read.
LOG_CHUNK = 64 * 1024
#: A line longer than this is no status line: it is dropped rather than buffered.
LINE_LIMIT = 4096
#: A job not called ffmpeg is watched for ffmpeg's banner over this much of its log, then left.
BANNER_WINDOW = 64 * 1024

_BANNER = b"ffmpeg version"
_CLOCK = rb"(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)"
_DURATION = re.compile(rb"^\s*Duration:\s*" + _CLOCK)
_TIME = re.compile(rb"(?:^|\s)time=\s*" + _CLOCK)
_FPS = re.compile(rb"(?:^|\s)fps=\s*(\d+(?:\.\d+)?)")
#: `size=` of the output so far (`Lsize=` on the last line), in KiB: `kB` until ffmpeg 6.0, `KiB`
#: since; `N/A` without a file.
_SIZE = re.compile(rb"(?:^|\s)L?size=\s*(\d+)(?:kB|KiB)")
_SPEED = re.compile(rb"(?:^|\s)speed=\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)x")
_SEPARATORS = re.compile(rb"[\r\n]")


@dataclass(frozen=True, slots=True)
class Progress:
    """What a probe knows about one job now; None where it cannot tell."""

    source: ProgressSource
    fraction: float | None = None
    fps: float | None = None
    speed: float | None = None  # times realtime
    eta_seconds: float | None = None
    # What ffmpeg's status line says its output file holds at `time=` (its size on disk then:
    # what ffmpeg still buffers is not counted), in bytes.
    written: int | None = None


NO_PROGRESS = Progress(ProgressSource.NONE)


def is_ffmpeg_binary(path: str) -> bool:
    """True for `ffmpeg`, `/opt/bin/ffmpeg-6.1`, `ffmpeg.exe` (not for ffprobe or ffplay)."""
    name = os.path.basename(path).lower()
    name = name.removesuffix(".exe")
    return name == "ffmpeg" or name.startswith(("ffmpeg-", "ffmpeg_"))


def _seconds(match: re.Match[bytes]) -> float:
    sign, hours, minutes, seconds = match.groups()
    value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return -value if sign else value


def generic(read_offset: int | None, input_size: int) -> Progress:
    """The read offset as a fraction of the input, at most RUNNING_CAP while the job runs."""
    if read_offset is None or input_size <= 0:
        return NO_PROGRESS
    return Progress(ProgressSource.READ_OFFSET, min(RUNNING_CAP, max(0.0,
                                                                     read_offset / input_size)))


# The parser's state: what the header said, the last status line, when it was first seen.
# pylint: disable-next=too-many-instance-attributes
class FfmpegLog:
    """ffmpeg's stderr, fed in pieces of any size (a status line may be cut anywhere)."""

    def __init__(self) -> None:
        self.banner = False
        self.duration: float | None = None
        self.time: float | None = None
        self.fps: float | None = None
        self.speed: float | None = None
        self.written: int | None = None
        self._first: tuple[float, float] | None = None  # (wall, media) of the first status
        self._last: tuple[float, float] | None = None
        self._partial = b""
        self._skipping = False  # the rest of an over-long (or cut) line is coming

    def resync(self) -> None:
        """Bytes were skipped: what is buffered, and the line the next bytes end, are not
        whole lines."""
        self._partial = b""
        self._skipping = True

    def feed(self, data: bytes, now: float) -> None:
        """Parse the complete lines of `data` (after what was left of the last piece)."""
        lines = _SEPARATORS.split(self._partial + data)
        self._partial = lines.pop()
        if len(self._partial) > LINE_LIMIT:
            self.resync()
        for line in lines:
            if self._skipping:
                self._skipping = False
                continue
            self._line(line, now)

    def _line(self, line: bytes, now: float) -> None:
        if line.startswith(_BANNER):
            self.banner = True
            return
        if self.duration is None:
            duration = _DURATION.match(line)
            if duration is not None:
                seconds = _seconds(duration)
                self.duration = seconds if seconds > 0 else None
                return
        if b"time=" not in line:
            return
        found = _TIME.search(line)
        if found is None:
            return  # time=N/A: nothing encoded yet
        self.time = _seconds(found)
        fps, speed, size = _FPS.search(line), _SPEED.search(line), _SIZE.search(line)
        self.fps = float(fps.group(1)) if fps else None
        self.speed = float(speed.group(1)) if speed else None
        self.written = int(size.group(1)) * 1024 if size else None
        self._last = (now, self.time)
        if self._first is None:
            self._first = self._last

    def progress(self) -> Progress:
        """Media time done over the input's duration, the latest fps, speed and size written,
        and the time left: media left at ffmpeg's speed, or at the media rate seen over wall
        time."""
        done, duration = self.time, self.duration
        if done is None or duration is None:
            return Progress(ProgressSource.FFMPEG, None, self.fps, self.speed, None, self.written)
        fraction = min(RUNNING_CAP, max(0.0, done / duration))
        left = max(0.0, duration - done)
        rate = self.speed
        if not rate and self._first is not None and self._last is not None:
            (wall0, media0), (wall1, media1) = self._first, self._last
            if wall1 > wall0 and media1 > media0:
                rate = (media1 - media0) / (wall1 - wall0)
        eta = left / rate if rate else None
        return Progress(ProgressSource.FFMPEG, fraction, self.fps, self.speed, eta, self.written)


class JobProbe:
    """One attempt's log, read incrementally through a descriptor of its own."""

    def __init__(self, fd: int | None, ffmpeg: bool) -> None:
        self._fd = fd
        self._ffmpeg = ffmpeg
        self.log = FfmpegLog()
        # The log is appended to by every attempt: this one's text starts at its end now.
        self.log_start = self._offset = os.fstat(fd).st_size if fd is not None else 0

    @classmethod
    def over(cls, fd: int, spec: JobSpec) -> JobProbe:
        """The probe of a job about to start reading `fd`, its log as the runner opened it (read
        and write), which the probe owns from now on: closed with it."""
        return cls(fd, is_ffmpeg_binary(spec.layout.binary))

    @property
    def ffmpeg(self) -> bool:
        """True once the job is known to be ffmpeg (by its binary's name or its banner)."""
        return self._ffmpeg or self.log.banner

    def read(self, now: float) -> Progress | None:
        """Read what the log gained; ffmpeg's progress, or None when the job is not ffmpeg
        (the generic probe applies)."""
        fd = self._fd
        if fd is None:
            return self.log.progress() if self._ffmpeg else None
        try:
            size = os.fstat(fd).st_size
            if size - self._offset > LOG_CHUNK and self._offset > self.log_start:
                # Far behind (a sweep missed, a chatty job): only the newest status matters.
                self._offset = size - LOG_CHUNK
                self.log.resync()
            data = os.pread(fd, min(LOG_CHUNK, size - self._offset), self._offset)
        except OSError:
            data = b""
        self._offset += len(data)
        if data:
            self.log.feed(data, now)
        if not self.ffmpeg:
            if self._offset - self.log_start >= BANNER_WINDOW:
                self.close()  # not ffmpeg: the generic probe, without a descriptor held
            return None
        return self.log.progress()

    def close(self) -> None:
        """Release the descriptor (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
