"""A failure's reason in the job's own words: the last meaningful line of its log."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import pytest

from orch_tui.core.logtail import (MAX_DETAIL, TAIL_BYTES, describe_failure, last_meaningful_line,
                                   log_detail, log_size, read_log)
from tests.helpers import not_a_video, run_cli, write_workspace

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None and not os.environ.get("CI"),
                                  reason="ffmpeg not installed (apt-get install ffmpeg)")
INVALID = "Invalid data found when processing input"
#: The end of a real ffmpeg 5.1 log of an x264 transcode stopped by SIGTERM.
FFMPEG_TAIL = (
    b"Press [q] to stop, [?] for help\n"
    b"frame=   12 fps=0.0 q=0.0 size=       0kB time=00:00:00.00 bitrate=N/A "
    b"speed=   0x    \r"
    b"frame=   40 fps= 39 q=28.0 size=     256kB time=00:00:01.20 bitrate=1747.6kbits/s "
    b"speed=1.17x    \r"
    b"[mp4 @ 0x55d1] Error writing trailer: No space left on device\n"
    b"frame=   41 fps= 38 q=-1.0 Lsize=     300kB time=00:00:01.56 bitrate=1575.3kbits/s "
    b"speed=1.45x    \n"
    b"video:298kB audio:0kB subtitle:0kB other streams:0kB global headers:0kB "
    b"muxing overhead: 0.54%\n"
    b"[libx264 @ 0x55d2] frame I:1     Avg QP:18.36  size: 19893\n"
    b"[libx264 @ 0x55d2] mb I  I16..4: 19.3% 45.0% 35.7%\n"
    b"[libx264 @ 0x55d2] kb/s:1561.38\n"
    b"Exiting normally, received signal 15.\n"
    b"Conversion failed!\n\n")


@needs_ffmpeg
def test_real_ffmpeg_on_a_corrupt_input_names_its_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(not_a_video(200 * 1024))
    log = tmp_path / "job.log"
    with open(log, "wb") as out:
        code = subprocess.run(
            [FFMPEG, "-nostdin", "-y", "-i",
             str(bad), str(tmp_path / "o.mp4")],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False).returncode
    assert code != 0
    assert log_detail(log) == f"{bad}: {INVALID}"


def test_status_lines_trailers_and_encoder_statistics_are_passed_over():
    assert last_meaningful_line(FFMPEG_TAIL) == ("[mp4 @ 0x55d1] Error writing trailer: "
                                                 "No space left on device")


def test_a_status_line_ending_in_cr_is_not_a_reason_but_the_line_before_it_is():
    data = b"bad.mp4: Invalid data\nframe=  1 fps=0 size=0kB time=00:00:00.04 speed=1x\r"
    assert last_meaningful_line(data) == "bad.mp4: Invalid data"
    assert last_meaningful_line(b"first\rsecond\r\n\r\n") == "second"
    # The audio-only status line starts at size=.
    assert last_meaningful_line(
        b"why\nsize=  12kB time=00:00:01.00 bitrate=98k speed=9x\r") == "why"


def test_escapes_and_control_characters_are_removed():
    data = b"\x1b[1;31mError:\x1b[0m broken\x07 pipe\x1b]0;title\x07\n\x1b[2J\n"
    assert last_meaningful_line(data) == "Error: broken  pipe"


def test_binary_junk_is_replaced_never_raised():
    line = last_meaningful_line(b"\xff\xfe\x00\x01 junk \x80\x9f\n\x00\x00\n")
    assert "junk" in line and line.isprintable()
    assert "\x00" not in line


def test_a_huge_line_is_capped():
    line = last_meaningful_line(b"x" * 10_000_000)
    assert len(line) == MAX_DETAIL and line.endswith("...")


def test_nothing_meaningful_gives_an_empty_reason(tmp_path):
    assert last_meaningful_line(b"") == ""
    assert last_meaningful_line(b"\n\r\n  \nConversion failed!\n") == ""
    assert log_detail(tmp_path / "absent.log") == ""
    assert describe_failure("exit 1", "") == "exit 1"
    assert describe_failure("exit 1", "bad.mp4: oops") == "bad.mp4: oops (exit 1)"


def test_only_the_tail_is_read_and_a_cut_line_is_dropped(tmp_path):
    log = tmp_path / "job.log"
    log.write_bytes(b"the real reason\n" + b"y" * (TAIL_BYTES - 5) + b"\nframe= 1 time=0 x\r")
    # The reason is beyond the 64 KiB tail; the cut line of y's is dropped, not shown half.
    assert log_detail(log) == ""
    log.write_bytes(b"z" * (2 * TAIL_BYTES) + b"\nthe reason\n")
    assert log_detail(log) == "the reason"


def test_an_earlier_attempts_words_are_not_this_attempts_reason(tmp_path):
    log = tmp_path / "job.log"
    log.write_bytes(b"attempt 1: failed here\n")
    start = log_size(log)
    with open(log, "ab") as out:
        out.write(b"Conversion failed!\n")
    assert log_detail(log) == "attempt 1: failed here"
    assert log_detail(log, start) == ""


def test_a_symlinked_log_is_never_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("password=hunter2\n", encoding="utf-8")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "job.log").symlink_to(secret)
    assert log_detail(tmp_path / "logs" / "job.log") == ""
    fd = os.open(tmp_path / "logs", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert log_detail("job.log", 0, fd) == ""
        assert log_size("job.log", fd) == os.lstat(tmp_path / "logs" / "job.log").st_size
    finally:
        os.close(fd)


def test_a_fifo_at_the_logs_name_does_not_block(tmp_path):
    fifo = tmp_path / "job.log"
    os.mkfifo(fifo)
    assert log_detail(fifo) == ""


def test_a_failed_job_reports_its_last_words_headless_and_in_the_journal(tmp_path):
    """A job exiting 3 after its error message: the FAILED line and the journal carry both
    the message and the status; a job that succeeded has neither."""
    script = ("import sys; name = sys.argv[1]; print('working on', name); "
              "print('\\x1b[31m' + name + ': cannot parse header\\x1b[0m', file=sys.stderr); "
              "sys.exit(3 if 'bad' in name else open(sys.argv[2], 'w').close())")
    ws = write_workspace(tmp_path, ["bad.bin", "good.bin"],
                         flags=["-c", script, "{input_file}", "{output_file}"])
    result = run_cli(str(ws.config), "--headless")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert failed[0].startswith("FAILED #1 bad.bin: ")
    assert "bad.bin: cannot parse header (exit 3) (log: " in failed[0]
    journal = ws.output_dir / ".orch-tui" / "journal.sqlite3"
    with sqlite3.connect(journal) as conn:
        rows = dict((os.path.basename(row[0]), row[1:])
                    for row in conn.execute("SELECT input, state, reason, detail FROM jobs"))
    assert rows["bad.bin"][:2] == ("failed", "exit 3")
    assert rows["bad.bin"][2].endswith("bad.bin: cannot parse header")
    assert rows["good.bin"] == ("succeeded", "", "")


def test_a_retried_jobs_reason_is_its_last_attempts_words_only(tmp_path):
    """Every attempt appends to the same log: the final failure quotes what the last attempt
    said (here nothing), never the first attempt's error."""
    marker = tmp_path / "tried"
    script = ("import os, sys; first = not os.path.exists(sys.argv[3]); "
              "open(sys.argv[3], 'a').close(); "
              "print('attempt one: broken header' if first else '', file=sys.stderr); "
              "sys.exit(3 if first else 4)")
    ws = write_workspace(tmp_path, ["clip.bin"],
                         jobs={"retries": 1},
                         flags=["-c", script, "{input_file}", "{output_file}",
                                str(marker)])
    result = run_cli(str(ws.config), "--headless")
    assert result.returncode == 1, result.stdout + result.stderr
    first, last = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert "attempt one: broken header (exit 3)" in first
    assert "exit 4" in last and "attempt one" not in last, last
    logs = list((ws.output_dir / ".orch-tui" / "logs").rglob("*.log"))
    assert len(logs) == 1 and "attempt one: broken header" in logs[0].read_text(encoding="utf-8")


@needs_ffmpeg
def test_real_ffmpeg_run_headless_names_the_corrupt_input(tmp_path):
    ws = write_workspace(tmp_path, ["bad.mp4"],
                         binary=FFMPEG,
                         flags=["-nostdin", "-y", "-i", "{input_file}", "{output_file}"])
    ws.inputs[0].write_bytes(not_a_video(64 * 1024))  # random bytes probe as media now and then
    result = run_cli(str(ws.config), "--headless")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and f"bad.mp4: {INVALID} (exit 1)" in failed[0], failed


def test_the_live_view_reads_chunks_but_never_through_a_symlink(tmp_path):
    log = tmp_path / "job.log"
    log.write_bytes(b"0123456789")
    assert read_log(log, 3, 4) == b"3456" and read_log(log, 10, 4) == b""
    link = tmp_path / "link.log"
    link.symlink_to(log)
    assert read_log(link, 0, 4) == b""
    os.mkfifo(tmp_path / "fifo")
    assert read_log(tmp_path / "fifo", 0, 4) == b""


def test_a_signal_of_its_own_making_has_a_reason_one_sent_from_outside_has_none(tmp_path):
    """An abort follows the job's own words; a SIGKILL (the OOM killer's) cuts it mid-work, so
    its last line would be a false reason."""
    script = ("import os, signal, sys; name = sys.argv[1].rsplit('/', 1)[-1]\n"
              "print('halfway through', name, flush=True)\n"
              "print(name + ': assertion failed', file=sys.stderr, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGABRT if name.startswith('abort') else "
              "signal.SIGKILL)\n")
    ws = write_workspace(tmp_path, ["abort.bin", "kill.bin"],
                         flags=["-c", script, "{input_file}", "{output_file}"])
    result = run_cli(str(ws.config), "--headless", "--jobs", "1")
    failed = [
        line.split(" (log: ")[0] for line in result.stdout.splitlines() if line.startswith("FAILED")
    ]
    assert failed == [
        "FAILED #1 abort.bin: abort.bin: assertion failed (signal SIGABRT)",
        "FAILED #2 kill.bin: signal SIGKILL"
    ], result.stdout
