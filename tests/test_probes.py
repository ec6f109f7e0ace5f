"""Progress probes on real ffmpeg stderr (tests/fixtures/ffmpeg/, captured from ffmpeg 5.1): the
parser, incremental reading through the state folder, the generic probe's cap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import JobState, ProgressSource
from orch_tui.core.inputs import InputEntry
from orch_tui.core.plan import JobLayout, JobSpec
from orch_tui.core.probes import (BANNER_WINDOW, LINE_LIMIT, LOG_CHUNK, RUNNING_CAP, FfmpegLog,
                                  JobProbe, Progress, generic, is_ffmpeg_binary)
from orch_tui.core.statedir import StateDir, UnsafeFileError
from orch_tui.tui.model import Given, JobRow, RunModel
from orch_tui.tui.screens.detail import describe_progress
from orch_tui.tui.widgets.columns import format_speed, layout_columns, row_cells

FIXTURES = Path(__file__).parent / "fixtures" / "ffmpeg"
TRANSCODE = (FIXTURES / "transcode_8s.log").read_bytes()  # Duration 8 s, four status lines
LAVFI = (FIXTURES / "lavfi_testsrc.log").read_bytes()  # Duration: N/A
NOSTATS = (FIXTURES / "nostats_8s.log").read_bytes()


def parsed(data: bytes, now: float = 0.0) -> FfmpegLog:
    log = FfmpegLog()
    log.feed(data, now)
    return log


def upto_status(data: bytes, count: int) -> bytes:
    """`data` up to and including the `count`-th status line's `\\r`."""
    end = -1
    for _ in range(count):
        end = data.index(b"\r", end + 1)
    return data[:end + 1]


def test_the_fixture_is_what_ffmpeg_writes() -> None:
    assert TRANSCODE.startswith(b"ffmpeg version ")
    assert TRANSCODE.count(b"\r") == 3 and b"  Duration: 00:00:08.00," in TRANSCODE


def test_a_status_line_gives_media_time_over_duration_fps_speed_and_eta() -> None:
    log = parsed(upto_status(TRANSCODE, 3))
    assert log.banner and log.duration == 8.0
    progress = log.progress()
    # frame=  143 fps=142 q=28.0 size=       0kB time=00:00:05.75 bitrate=   0.1kbits/s speed= 5.7x
    assert progress.source is ProgressSource.FFMPEG
    assert progress.fraction == pytest.approx(5.75 / 8)
    assert (progress.fps, progress.speed) == (142.0, 5.7)
    assert progress.eta_seconds == pytest.approx((8 - 5.75) / 5.7)


def test_the_first_status_and_the_last_one_beyond_the_duration() -> None:
    first = parsed(upto_status(TRANSCODE, 1)).progress()
    assert first.fraction == pytest.approx(0.04 / 8) and first.speed == 5.54
    # The final line says time=00:00:08.01 (past the 8.00 s input): still not 100% while running.
    last = parsed(TRANSCODE).progress()
    assert last.fraction == RUNNING_CAP
    assert (last.fps, last.speed, last.eta_seconds) == (118.0, 4.72, 0.0)


def test_a_duration_ffmpeg_cannot_tell_gives_no_progress_but_speed() -> None:
    # A lavfi source has `Duration: N/A`: no fraction and no ETA, never a guess.
    progress = parsed(LAVFI).progress()
    assert progress == Progress(ProgressSource.FFMPEG, None, 0.0, 12.4, None, 99 * 1024)


def test_the_status_line_says_what_the_output_held_at_its_time() -> None:
    # size=       0kB at time=00:00:05.75 (x264 has muxed nothing to disk yet), then the last
    # line's Lsize=     129kB.
    assert parsed(upto_status(TRANSCODE, 3)).progress().written == 0
    assert parsed(TRANSCODE).progress().written == 129 * 1024
    # ffmpeg 6.1 and later write KiB; an output that is no file says N/A: unknown, not 0.
    newer = b"frame=  250 fps= 50 q=28.0 size=    1536KiB time=00:00:10.00 bitrate=1258.3kbits/s"
    assert parsed(newer + b" speed=2.01x\r").written == 1536 * 1024
    pipe = b"frame=  250 fps= 50 q=28.0 size=N/A time=00:00:10.00 bitrate=N/A speed=2.01x\r"
    assert parsed(TRANSCODE + pipe).progress().written is None


def test_nostats_and_quiet_give_none() -> None:
    # -nostats prints only the final status line, when the work is done; before it, nothing.
    before_end = NOSTATS[:NOSTATS.index(b"frame=")]
    assert parsed(before_end).progress() == Progress(ProgressSource.FFMPEG)
    log = parsed(b"")  # -v quiet: nothing at all
    assert log.progress() == Progress(ProgressSource.FFMPEG) and not log.banner


@pytest.mark.parametrize("piece", [1, 7, 64, 1000])
def test_pieces_of_any_size_parse_like_the_whole(piece: int) -> None:
    """A status line cut anywhere (even inside `time=00:0`) is parsed only once it is whole."""
    data = upto_status(TRANSCODE, 3)
    log = FfmpegLog()
    seen = []
    for start in range(0, len(data), piece):
        log.feed(data[start:start + piece], 0.0)
        whole = data[:start + piece]
        cut = max(whole.rfind(b"\r"), whole.rfind(b"\n"))
        assert log.time == parsed(whole[:cut + 1]).time, start
        seen.append(log.time)
    assert log.progress() == parsed(data).progress()
    if piece <= 64:  # every status line seen on its own
        assert [t for t in dict.fromkeys(seen) if t is not None] == [0.04, 2.97, 5.75]


def test_an_over_long_line_is_dropped_whole() -> None:
    log = FfmpegLog()
    log.feed(b"x" * (LINE_LIMIT + 1), 0.0)
    log.feed(b" time=00:00:09.00 speed=9x\rframe=1 time=00:00:01.00 speed=2x\r", 0.0)
    assert (log.time, log.speed) == (1.0, 2.0)  # the tail of the long line never counted


def test_eta_from_media_rate_when_speed_is_not_given() -> None:
    log = FfmpegLog()
    log.feed(b"  Duration: 00:01:40.00, start: 0.000000, bitrate: 1 kb/s\n", 0.0)
    log.feed(b"frame= 1 fps=0.0 time=00:00:10.00 bitrate=N/A speed=N/A    \r", 100.0)
    assert log.progress().eta_seconds is None  # one point is no rate
    log.feed(b"frame= 2 fps=0.0 time=00:00:30.00 bitrate=N/A speed=N/A    \r", 110.0)
    progress = log.progress()
    assert progress.speed is None and progress.fraction == pytest.approx(0.3)
    assert progress.eta_seconds == pytest.approx(70 / 2.0)  # 20 media s in 10 wall s


def test_generic_is_the_read_offset_capped_until_the_end() -> None:
    assert generic(250, 1000) == Progress(ProgressSource.READ_OFFSET, 0.25)
    assert generic(1000, 1000).fraction == RUNNING_CAP
    assert generic(5000, 1000).fraction == RUNNING_CAP  # read ahead past a grown input
    assert generic(None, 1000) == generic(10, 0) == Progress(ProgressSource.NONE)


def test_ffmpeg_is_recognised_by_its_binary_name() -> None:
    for name in ("ffmpeg", "/usr/bin/ffmpeg", "/opt/ffmpeg-6.1/bin/ffmpeg-6.1", "FFMPEG.EXE",
                 "ffmpeg_static"):
        assert is_ffmpeg_binary(name), name
    for name in ("ffprobe", "/usr/bin/python3", "my-ffmpeg", "/opt/ffmpeg/bin/x264"):
        assert not is_ffmpeg_binary(name), name


# --- reading a job's log through the state folder


@pytest.fixture(name="state")
def state_fixture(tmp_path: Path):
    state = StateDir.open(tmp_path / "out")
    yield state
    state.close()


def spec(state: StateDir, binary: str = "/usr/bin/ffmpeg") -> JobSpec:
    layout = JobLayout(binary=binary,
                       flags=("-i", "{input_file}", "{output_file}"),
                       uses_output=False,
                       output_dir=str(state.output_dir),
                       log_dir=str(state.logs_path),
                       temp_dir=str(state.output_dir / "tmp"))
    entry = InputEntry(line=1, raw="/in/a.mp4", location="/in/a.mp4", size=1000, problem=None)
    return JobSpec(job_id=1, entry=entry, output_name="a.mp4", layout=layout)


def append(state: StateDir, data: bytes) -> None:
    fd = state.open_log(spec(state).log_path)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def probe_of(state: StateDir, job: JobSpec) -> JobProbe:
    """The probe as LocalRunner makes it: over the job's log, opened read-write in its folder."""
    return JobProbe.over(state.open_log(job.log_location, os.O_RDWR | os.O_APPEND), job)


def test_the_probe_reads_only_new_bytes_and_ignores_an_earlier_attempt(state: StateDir) -> None:
    append(state, TRANSCODE)  # the previous attempt's log: its figures are not this attempt's
    probe = probe_of(state, spec(state))
    try:
        assert probe.read(1.0) == Progress(ProgressSource.FFMPEG)
        data = upto_status(TRANSCODE, 2)
        cut = data.index(b"time=", data.index(b"\r")) + 8  # inside the second status's time=
        append(state, data[:cut])
        first = probe.read(2.0)
        assert first is not None and first.fraction == pytest.approx(0.04 / 8)
        append(state, data[cut:])
        second = probe.read(3.0)
        assert second is not None and second.fraction == pytest.approx(2.97 / 8)
        assert probe.read(4.0) == second  # nothing new, nothing re-read
    finally:
        probe.close()


def test_a_far_behind_probe_reads_a_bounded_tail(state: StateDir) -> None:
    probe = probe_of(state, spec(state))
    try:
        append(state, upto_status(TRANSCODE, 1))
        probe.read(1.0)
        noise = b"[h264 @ 0x1] some warning\n" * (3 * LOG_CHUNK // 26)
        append(state, noise + b"frame= 9 fps=30 time=00:00:06.00 bitrate=1k speed=2.0x \r")
        reads = []
        real_pread = os.pread

        def counting_pread(fd: int, size: int, offset: int) -> bytes:
            reads.append(size)
            return real_pread(fd, size, offset)

        os.pread = counting_pread  # type: ignore[assignment]
        try:
            progress = probe.read(2.0)
        finally:
            os.pread = real_pread  # type: ignore[assignment]
        assert reads == [LOG_CHUNK]  # not the 3 x LOG_CHUNK behind it
        assert progress is not None and progress.fraction == pytest.approx(6 / 8)
        assert progress.speed == 2.0
    finally:
        probe.close()


def test_ffmpeg_found_by_its_banner_and_other_jobs_let_go(state: StateDir) -> None:
    wrapper = probe_of(state, spec(state, "/usr/local/bin/transcode.sh"))
    try:
        assert wrapper.read(0.0) is None  # the generic probe applies
        append(state, upto_status(TRANSCODE, 3))
        progress = wrapper.read(1.0)
        assert wrapper.ffmpeg and progress is not None
        assert progress.fraction == pytest.approx(5.75 / 8)
    finally:
        wrapper.close()
    other = probe_of(state, spec(state, "/usr/bin/python3"))
    try:
        append(state, b"just a line\n" * (BANNER_WINDOW // 12 + 1))
        while other.read(2.0) is None and other._fd is not None:  # pylint: disable=protected-access
            pass
        assert other._fd is None  # pylint: disable=protected-access
        append(state, upto_status(TRANSCODE, 3))  # too late: no descriptor, generic for good
        assert other.read(3.0) is None
    finally:
        other.close()


def test_a_planted_symlink_is_never_followed(state: StateDir, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(TRANSCODE)
    job = spec(state)
    state.log_location(job.log_location)  # its shard folder, made as a launch makes it
    os.symlink(secret, job.log_location)
    # The log the probe would read is refused, as the job's launch is: nothing reads the link.
    with pytest.raises(UnsafeFileError, match="symlink"):
        probe_of(state, job)
    assert secret.read_bytes() == TRANSCODE


# --- what observers and screens get


def ffmpeg_sample(job_id: int, progress: float | None, **figures: float) -> ev.JobSample:
    return ev.JobSample(time=10.0,
                        job_id=job_id,
                        node="local",
                        pid=4242,
                        cpu_cores=1.0,
                        rss_bytes=1,
                        processes=1,
                        read_fraction=1.0,
                        output_bytes=1,
                        elapsed=5.0,
                        progress=progress,
                        progress_source=ProgressSource.FFMPEG,
                        **figures)


def started_model() -> RunModel:
    row = JobRow(job_id=1,
                 name="a.mp4",
                 input_size=1000,
                 planned=Given(argv=("ffmpeg", ), log_path=Path("/l"), output_path=Path("/o")))
    model = RunModel([row], clock=lambda: 10.0)
    change(model, JobState.RUNNING, JobState.QUEUED)
    return model


def change(model: RunModel, state: JobState, previous: JobState) -> None:
    model.apply(
        ev.JobStateChanged(time=1.0,
                           job_id=1,
                           name="a.mp4",
                           state=state,
                           previous=previous,
                           attempt=1))


def test_rows_carry_the_probe_and_only_success_shows_100() -> None:
    model = started_model()
    model.apply(ffmpeg_sample(1, 0.5, fps=37.0, speed=1.5, eta_seconds=12.4))
    row = model.rows[1]
    assert (row.progress, row.fps, row.speed, row.eta_seconds) == (0.5, 37.0, 1.5, 12.4)
    assert row.progress_source is ProgressSource.FFMPEG
    columns, spark = layout_columns(120, 2)
    cells = "".join(text for text, _ in row_cells(row, columns, spark, 5.0))
    assert " 50%  1.50x    0:12 " in cells
    assert describe_progress(row) == "50.0% (ffmpeg)   speed 1.50x   fps 37   eta 0:00:12"
    change(model, JobState.SUCCEEDED, JobState.RUNNING)
    assert (row.progress, row.eta_seconds) == (1.0, None)
    assert describe_progress(row) == "100.0% (ffmpeg)"


def cells_by_key(pieces: list[tuple[str, str]], columns) -> dict[str, str]:
    """A drawn line cut back into its columns (a cell may be several pieces: a bar and its
    percentage), each stripped."""
    line = "".join(text for text, _ in pieces)
    cells, start = {}, 0
    for column in columns:
        cells[column.key] = line[start:start + column.width].strip()
        start += column.width + 1
    return cells


def test_ffmpeg_without_status_lines_shows_a_dash_and_why() -> None:
    model = started_model()
    model.apply(ffmpeg_sample(1, None))
    row = model.rows[1]
    assert describe_progress(row).startswith("- (no duration or status line from ffmpeg yet")
    columns, spark = layout_columns(120, 2)
    cells = cells_by_key(row_cells(row, columns, spark, 5.0), columns)
    assert cells["progress"] == "-" and cells["speed"] == "-"


def test_speed_and_eta_collapse_at_80_columns() -> None:
    wide = [column.key for column in layout_columns(120, 2)[0]]
    assert {"speed", "eta", "node"} <= set(wide)
    narrow = [column.key for column in layout_columns(80, 2)[0]]
    assert "speed" not in narrow and "eta" not in narrow and "progress" in narrow
    assert [format_speed(s, None) for s in (0.87, 12.44, 150.0)] == ["0.87x", "12.4x", "150x"]
    assert format_speed(None, 24.2) == "24 fps" and format_speed(None, None) == "-"


def test_a_paused_job_shows_no_stale_speed_or_time_left() -> None:
    model = started_model()
    model.apply(ffmpeg_sample(1, 0.5, fps=37.0, speed=1.5, eta_seconds=12.4))
    change(model, JobState.PAUSED, JobState.RUNNING)
    row = model.rows[1]
    columns, spark = layout_columns(120, 2)
    cells = cells_by_key(row_cells(row, columns, spark, 5.0), columns)
    assert cells["progress"].split()[-1] == "50%"  # after its bar
    assert (cells["speed"], cells["eta"]) == ("-", "-")
    assert describe_progress(row) == "50.0% (ffmpeg)"
