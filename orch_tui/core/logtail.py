"""Why a job failed, in its own words: the last meaningful line of its log.

`exit 1` tells an operator nothing; ffmpeg's last words (`bad.mp4: Invalid data found when
processing input`) tell what to fix. Only the log's tail is read (a bounded read from its end,
never through a symlink), and what ffmpeg prints on every run whatever went wrong (status lines
ending in \\r, `Conversion failed!`, the encoder's statistics) is passed over, as are the notes
orch-tui itself appends.
"""

from __future__ import annotations

import os
import re
import stat

#: Bytes read from the end of the log: the last words are near the end, and a log of gigabytes
#: must cost no more than this.
TAIL_BYTES = 64 * 1024
#: Longest reason kept (characters): one line of a table or a headless line, not a wall of text.
MAX_DETAIL = 200

# CSI and OSC sequences, then the two-character escapes: colours and cursor moves.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# ffmpeg's periodic status line (`frame=  25 fps=0.0 ... time=00:00:01.00 ... speed=2x`), the
# audio-only form starting at `size=`, and the -progress key=value block.
_STATUS = re.compile(r"^(?:frame|size)=.*\btime=|^(?:progress|out_time\w*|total_size)=")
# Lines ffmpeg prints whatever the cause: they say that it failed or stopped, never why.
_TRAILERS = re.compile(
    r"^(?:Conversion failed!|Exiting normally, received signal \d+\.|"
    r"Received signal \d+: terminating\.|Received > 3 system signals, hard exiting\.|"
    r"Press \[q\] to stop, \[\?\] for help|"
    # the size summary: `video:12kB audio:0kB ...` (`[out#0/mp4 @ 0x..] video:...` from 6.1)
    r"(?:\[out#\d+/\w+ @ 0x[0-9a-f]+\] )?video:\S+ audio:\S+ subtitle:|"
    # an encoder's end-of-stream statistics: `[libx264 @ 0x..] frame I:1 Avg QP:...`
    r"\[lib\w+ @ 0x[0-9a-f]+\] (?:frame [IPB]|mb [IPB]|8x8|coded y|i16|i8|i4|Weighted|"
    r"ref [PB]|kb/s|consecutive|final ratefactor|direct mvs)|"
    # x265's: `x265 [info]: frame I: ...`, `encoded 25 frames in 1.20s (20.83 fps), ...`
    r"x265 \[info\]: (?:frame [IPB]|consecutive|Weighted)|encoded \d+ frames in |"
    r"orch-tui: )")


def last_meaningful_line(data: bytes) -> str:
    """The last line of `data` (a log's tail) that says something: blank lines, status lines
    and generic trailers skipped, escapes and control characters removed, at most MAX_DETAIL
    characters; '' when there is none."""
    text = data.decode("utf-8", errors="replace")
    for raw in reversed(re.split(r"\r\n|\r|\n", text)):
        line = _clean(raw)
        if line and not _STATUS.match(line) and not _TRAILERS.match(line):
            return line if len(line) <= MAX_DETAIL else line[:MAX_DETAIL - 3] + "..."
    return ""


def _clean(raw: str) -> str:
    """One line without escape sequences or control characters, spaces trimmed."""
    line = _ANSI.sub("", raw)
    if not line.isprintable():
        line = "".join(ch if ch.isprintable() else " " for ch in line)
    return line.strip()


def read_tail(fd: int, start: int = 0, limit: int = TAIL_BYTES) -> bytes:
    """At most `limit` bytes from the end of an open plain file, none before `start` (where this
    attempt's output begins in a log every attempt appends to); b'' for anything else."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b""  # a FIFO would block, a device would never end
        begin = max(start, info.st_size - limit, 0)
        data = os.pread(fd, max(0, info.st_size - begin), begin)
    except OSError:
        return b""
    if begin > start:  # cut into a line (and maybe a character): drop its end
        cut = min((i for i in (data.find(b"\n"), data.find(b"\r")) if i != -1), default=-1)
        data = data[cut + 1:] if cut != -1 else data
    return data


def log_size(path: os.PathLike[str] | str, dir_fd: int | None = None) -> int:
    """Where the next attempt's output will begin in the log (its size now; 0 if none)."""
    try:
        return os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_size
    except (OSError, ValueError):
        return 0


def _open_log(path: os.PathLike[str] | str, dir_fd: int | None) -> int | None:
    """A log opened for reading, never through a symlink (it could point anywhere) nor
    blocking on a FIFO; None when it cannot be opened."""
    try:
        return os.open(path,
                       os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                       dir_fd=dir_fd)
    except (OSError, ValueError):
        return None


def log_detail(path: os.PathLike[str] | str, start: int = 0, dir_fd: int | None = None) -> str:
    """The last meaningful line of the log at `path` (relative to `dir_fd`, the checked logs
    folder, when given) after byte `start`; '' when it cannot be read, is not a plain file or
    is a symlink."""
    fd = _open_log(path, dir_fd)
    if fd is None:
        return ""
    try:
        return last_meaningful_line(read_tail(fd, start))
    finally:
        os.close(fd)


def read_log(path: os.PathLike[str] | str, offset: int, limit: int) -> bytes:
    """At most `limit` bytes of a plain-file log from `offset` on (a live view's next chunk);
    b'' when there are none or it is a symlink, a FIFO or unreadable."""
    fd = _open_log(path, None)
    if fd is None:
        return b""
    try:
        return os.pread(fd, limit, offset) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def describe_failure(reason: str, detail: str) -> str:
    """How a job ended, for one line: its last words first (what to fix), then the status
    ('bad.mp4: Invalid data found when processing input (exit 1)')."""
    if not detail:
        return reason
    return f"{detail} ({reason})" if reason else detail
