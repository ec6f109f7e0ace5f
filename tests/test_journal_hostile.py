"""The journal against a hostile world: a damaged file, another program holding its lock, a
`kill -9` right after a job is reported finished, symlinks and foreign files planted at its
names. Real SQLite, real `sqlite3` shells, the real command line."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import EventBus, JobState
from orch_tui.core.journal import (BUSY_SECONDS, JOURNAL_NAME, Journal, JournalDamaged,
                                   JournalError)
from tests.helpers import CMD, WORKER, eventually, run_cli, write_workspace
from tests.test_durability import start
from tests.tmux import wait_until

SQLITE3 = "/usr/bin/sqlite3"
PAGE = 4096
BTREE_PAGE_TYPES = {0x02, 0x05, 0x0A, 0x0D}

# --- helpers


def command_ws(root: Path, names: int | list[str] = 3, seconds: float = 0.0):
    """A workspace whose command has no {output_file}: only the journal knows what is done."""
    record = root / "record"
    flags = [str(WORKER), "--record", str(record), "--seconds", str(seconds), "{input_file}"]
    return write_workspace(root / "ws", names, flags=flags), record


def runs(record: Path) -> Counter:
    return Counter(record.read_text(encoding="utf-8").split()) if record.exists() else Counter()


def journal_of(ws) -> Path:
    return ws.output_dir / ".orch-tui" / JOURNAL_NAME


def snapshot(root: Path, ignore: tuple[str, ...] = ("lock", )) -> dict[str, str]:
    """Every file under `root` (symlinks as their target), by content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.name in ignore:
            continue
        if path.is_symlink():
            found[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused run (exit 2, no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def pad_journal(path: Path, rows: int = 3000) -> None:
    """Add job and calibration rows as earlier runs over a big list would have (many pages),
    then checkpoint so everything is in the main file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for i in range(rows):
            conn.execute(
                "INSERT INTO jobs(input, output, state, exit_code, started, ended, attempts, "
                "peak_rss, cpu_seconds, log_path, run_id) VALUES (?, ?, 'succeeded', 0, ?, ?, 1, "
                "?, 0.5, ?, 1)", (f"/data/earlier/input-{i:06d}.bin", f"/data/out/{i:06d}_out.bin",
                                  1e9 + i, 1e9 + i + 1, 1 << 20, f"/data/out/logs/{i:06d}.log"))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def corrupt_a_middle_page(path: Path) -> int:
    """Overwrite the cell pointers of a b-tree page near the middle (not page 1, the header)."""
    data = bytearray(path.read_bytes())
    pages = len(data) // PAGE
    assert pages > 20, f"only {pages} pages: not enough rows"
    for number in range(pages // 2, pages):
        offset = number * PAGE
        if data[offset] in BTREE_PAGE_TYPES and number > 1:
            data[offset + 8:offset + 8 + 256] = b"\xff" * 256
            path.write_bytes(bytes(data))
            return number + 1
    raise AssertionError("no b-tree page found in the second half")


class SqliteShell:
    """A real `sqlite3` shell on the journal holding a write transaction open (stdin is a pipe:
    it waits for more input while the lock is held)."""

    def __init__(self, path: Path, begin: str) -> None:
        self.path = path
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with  # released by __exit__
            [SQLITE3, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True)
        assert self.proc.stdin is not None
        # The shell waits out our own probes of the lock (.timeout): without it, a probe that
        # holds the lock at the wrong instant makes its BEGIN fail and the test wait in vain.
        self.proc.stdin.write(f".timeout 10000\n{begin};\n"
                              "INSERT INTO meta(key, value) VALUES ('shell', 'x');\n")
        self.proc.stdin.flush()
        wait_until(self.holds_lock, 15.0, "the sqlite3 shell taking the write lock")

    def holds_lock(self) -> bool:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        finally:
            conn.close()

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("ROLLBACK;\n.quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)

    def __enter__(self) -> SqliteShell:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.release()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


needs_sqlite3 = pytest.mark.skipif(not os.access(SQLITE3, os.X_OK), reason="no sqlite3 shell")

# --- 1. a damaged journal


@pytest.mark.parametrize("damage", ["corrupt-page", "truncated"])
def test_a_damaged_journal_is_refused_then_fresh_moves_it_aside(tmp_path, damage):
    ws, record = command_ws(tmp_path)
    config = str(ws.config)
    first = run_cli("--headless", config, "--max-procs", "2")
    assert first.returncode == 0, first.stderr
    journal = journal_of(ws)
    pad_journal(journal)
    if damage == "corrupt-page":
        corrupt_a_middle_page(journal)
    else:
        os.truncate(journal, (journal.stat().st_size // 2) + 100)
    damaged_bytes = journal.read_bytes()
    before = snapshot(ws.root)
    ran = runs(record)

    refused = run_cli("--headless", config, "--max-procs", "2")
    line = one_error_line(refused)
    assert str(journal) in line and "damaged" in line and "--fresh" in line
    assert runs(record) == ran, "no job ran"
    assert snapshot(ws.root) == before, "the workspace is unchanged"

    fresh = run_cli("--headless", config, "--max-procs", "2", "--fresh")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "Traceback" not in fresh.stderr
    moved = [p for p in journal.parent.iterdir() if p.name.startswith(JOURNAL_NAME + ".damaged-")]
    assert len(moved) == 1 and re.fullmatch(rf"{re.escape(JOURNAL_NAME)}\.damaged-\d{{8}}-\d{{6}}",
                                            moved[0].name), moved
    assert moved[0].read_bytes() == damaged_bytes
    notices = [line for line in fresh.stderr.splitlines() if "damaged" in line]
    assert len(notices) == 1 and str(moved[0]) in notices[0] and str(journal) in notices[0]
    assert runs(record) == ran + Counter({"clip01.bin": 1, "clip02.bin": 1, "clip03.bin": 1})
    conn = sqlite3.connect(journal)
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok", )]
        assert conn.execute("SELECT count(*) FROM jobs WHERE state = 'succeeded'").fetchone() == (
            3, )
    finally:
        conn.close()
    # The new journal serves the next run: nothing is redone.
    again = run_cli("--headless", config, "--max-procs", "2")
    assert again.returncode == 0 and "3 jobs done in a previous run are skipped" in again.stdout


def test_a_corrupt_page_is_named_by_quick_check_in_one_line(tmp_path):
    Journal.open(tmp_path).close()
    path = tmp_path / JOURNAL_NAME
    pad_journal(path)
    corrupt_a_middle_page(path)
    with pytest.raises(JournalDamaged) as caught:
        Journal.open(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: the journal is damaged (quick_check: On tree page ")
    assert "--fresh" in message and "\n" not in message and caught.value.exit_code == 2


def test_move_damaged_leaves_nothing_of_the_old_journal_beside_the_new(tmp_path):
    path = tmp_path / JOURNAL_NAME
    path.write_bytes(b"garbage\n" * 1000)
    # Left by a crash: they belong to the damaged file and must not meet the new one (a -wal
    # left behind would be replayed into it).
    side = {suffix: os.urandom(4096) for suffix in ("-wal", "-shm")}
    for suffix, data in side.items():
        Path(f"{path}{suffix}").write_bytes(data)
    with pytest.raises(JournalDamaged, match="--fresh"):
        Journal.open(tmp_path)
    with Journal.open(tmp_path, move_damaged=True) as journal:
        assert journal.notice is not None and "\n" not in journal.notice
        assert "not a database" in journal.notice
        assert not journal.previous_jobs()
    (moved, ) = [
        p for p in tmp_path.iterdir()
        if p.name.startswith(f"{JOURNAL_NAME}.damaged-") and not p.name.endswith(("-wal", "-shm"))
    ]
    assert str(moved) in journal.notice and str(path) in journal.notice
    assert moved.read_bytes() == b"garbage\n" * 1000
    # SQLite itself deletes a -wal and -shm it could not use when it closes the refused file;
    # whatever is still there moves along, and nothing of the old one is left for the new one.
    for suffix, data in side.items():
        aside = Path(f"{moved}{suffix}")
        assert not aside.exists() or aside.read_bytes() == data
        beside = Path(f"{path}{suffix}")
        assert not beside.exists() or beside.read_bytes() != data


def test_a_journal_that_is_not_a_database_is_damaged_too(tmp_path):
    (tmp_path / JOURNAL_NAME).write_bytes(b"garbage\n" * 1000)
    with pytest.raises(JournalDamaged, match="--fresh"):
        Journal.open(tmp_path)
    with Journal.open(tmp_path, move_damaged=True) as journal:
        assert "not a database" in (journal.notice or "")


def test_a_healthy_journal_is_never_moved_by_fresh(tmp_path):
    Journal.open(tmp_path).close()
    with Journal.open(tmp_path, move_damaged=True) as journal:
        assert journal.notice is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [JOURNAL_NAME]


# --- 2. a journal held by another program


@needs_sqlite3
@pytest.mark.parametrize("begin", ["BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"])
def test_a_journal_locked_by_a_sqlite3_shell_is_one_line_after_a_short_wait(tmp_path, begin):
    ws, record = command_ws(tmp_path)
    assert run_cli("--headless", str(ws.config), "--max-procs", "2").returncode == 0
    ran = runs(record)
    with SqliteShell(journal_of(ws), begin):
        began = time.monotonic()
        result = run_cli("--headless", str(ws.config), "--max-procs", "2", "--fresh")
        elapsed = time.monotonic() - began
        line = one_error_line(result)
    assert str(journal_of(ws)) in line and "locked by another program" in line
    assert elapsed < BUSY_SECONDS + 10, elapsed
    assert runs(record) == ran, "no job ran"


@needs_sqlite3
def test_start_run_under_a_lock_taken_after_open_is_a_journal_error(tmp_path):
    plan = write_workspace(tmp_path / "ws", 2).plan()
    journal = Journal.open(plan.state_dir)
    try:
        with SqliteShell(journal.path, "BEGIN IMMEDIATE"):
            began = time.monotonic()
            with pytest.raises(JournalError) as caught:
                journal.start_run(plan, [])
            assert time.monotonic() - began < BUSY_SECONDS + 3
        message = str(caught.value)
        assert message.startswith(f"{journal.path}: ") and "locked by another program" in message
        assert "\n" not in message
        journal.start_run(plan, [])  # the lock is gone: the same journal works again
    finally:
        journal.close()


def test_reads_that_fail_are_one_line_journal_errors_not_sqlite_errors(tmp_path):
    journal = Journal.open(tmp_path)
    try:
        other = sqlite3.connect(journal.path, isolation_level=None)
        other.execute("DROP TABLE jobs")
        other.execute("DROP TABLE calibrations")
        other.close()
        for read in (journal.previous_jobs, journal.last_profile):
            with pytest.raises(JournalError) as caught:
                read()
            assert str(caught.value).startswith(f"{journal.path}: cannot read the journal: ")
    finally:
        journal.close()


@needs_sqlite3
def test_a_lock_taken_mid_run_stops_launches_and_the_rows_land_later(tmp_path):
    ws, record = command_ws(tmp_path, 3, seconds=1.0)
    proc = start(ws, "--max-procs", "1")
    try:
        wait_until(lambda: runs(record)["clip01.bin"] == 1, 15.0, "the first job starting")
        assert proc.stdout is not None and proc.stderr is not None
        with SqliteShell(journal_of(ws), "BEGIN IMMEDIATE"):
            # Job 1 ends under the lock: its commit waits BUSY_SECONDS and fails, which the run
            # says at once (its progress line waits for the ends of that instant). The lock goes
            # then, while the run still writes.
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if line.startswith("error: "):
                    break
        seen.extend(proc.stdout)  # the same buffered reader: no line read ahead is lost
        err = proc.stderr.read()
        proc.wait(timeout=60)
        out = "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Job 2 started while job 1's end waited for its commit (a slot is free once its process
    # is reaped, its report waits for the commit). Once that commit failed the run launched
    # nothing more: job 3 is not run.
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    stops = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(stops) == 1 and "journal write failed" in stops[0], out
    assert "no more launches" in stops[0] and "1 not run" in out
    assert runs(record) == {"clip01.bin": 1, "clip02.bin": 1}
    # The rows were kept and written once the lock went: nothing finished is redone.
    again = run_cli("--headless", str(ws.config), "--max-procs", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert runs(record) == {"clip01.bin": 1, "clip02.bin": 1, "clip03.bin": 1}


@needs_sqlite3
def test_a_failed_end_of_job_commit_calls_on_error_once_and_waits_only_once(tmp_path):
    plan = write_workspace(tmp_path / "ws", 3).plan()
    errors: list[str] = []
    journal = Journal.open(plan.state_dir)
    journal.on_error = errors.append
    try:
        journal.start_run(plan, [])
        with SqliteShell(journal.path, "BEGIN IMMEDIATE"):
            began = time.monotonic()
            journal.listener(change(plan, 1, JobState.SUCCEEDED, exit_code=0))
            first = time.monotonic() - began
            began = time.monotonic()
            journal.listener(change(plan, 2, JobState.FAILED, exit_code=1))
            journal.listener(change(plan, 3, JobState.KILLED, signal=9))
            later = time.monotonic() - began
        assert BUSY_SECONDS - 0.5 < first < BUSY_SECONDS + 5, first
        assert later < 0.5, "after a failure, ends are no longer waited for"
        assert len(errors) == 1 and "\n" not in errors[0]
        assert errors[0].startswith(f"{journal.path}: journal write failed: ")
        with pytest.raises(JournalError, match="journal write failed"):
            journal.flush()  # retries the kept rows, then reports the failure once
        journal.flush()
    finally:
        journal.close()
    # ...and the kept rows were retried after the lock went.
    with Journal.open(plan.state_dir) as reopened:
        states = {Path(p).name: r.state for p, r in reopened.previous_jobs().items()}
    assert states == {"clip01.bin": "succeeded", "clip02.bin": "failed", "clip03.bin": "killed"}
    assert len(errors) == 1


# --- 3. a finished job is never run again


def change(plan, job_id: int, state: JobState, attempt: int = 1, **fields) -> ev.JobStateChanged:
    spec = plan.jobs[job_id - 1]
    return ev.JobStateChanged(time=time.monotonic(),
                              job_id=job_id,
                              name=spec.name,
                              state=state,
                              previous=None,
                              attempt=attempt,
                              **fields)


def committed_state(path: Path, input_path: Path) -> str | None:
    """What another process would read right now."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT state FROM jobs WHERE input = ?", (str(input_path), )).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def noting_commits(plan, seen: list[tuple[str, str | None]]):
    """A later listener noting, for each job state it hears of, what the journal file says of
    that job at that moment."""

    def later_listener(event: ev.Event) -> None:
        if isinstance(event, ev.JobStateChanged):
            spec = plan.jobs[event.job_id - 1]
            seen.append(
                (event.state.value, committed_state(plan.state_dir / JOURNAL_NAME,
                                                    spec.input_path)))

    return later_listener


def test_a_jobs_end_is_committed_before_any_later_listener_hears_of_it(tmp_path):
    plan = write_workspace(tmp_path / "ws", 4).plan()
    seen: list[tuple[str, str | None]] = []
    bus = EventBus()
    bus.add_listener(noting_commits(plan, seen))
    with Journal.open(plan.state_dir) as journal:
        bus.add_listener(journal.listener, first=True)
        journal.start_run(plan, [])
        ends = [(1, JobState.SUCCEEDED), (2, JobState.FAILED), (3, JobState.KILLED),
                (4, JobState.MISSING)]
        for job_id, state in ends:
            bus.publish(change(plan, job_id, JobState.RUNNING))
            bus.publish(change(plan, job_id, state))
    finished = [(state, found) for state, found in seen if state != "running"]
    assert finished == [(s.value, s.value) for _, s in ends]


async def test_held_reports_share_a_commit_and_are_told_only_once_it_is_done(tmp_path):
    """A session's journal holds the bus instead of waiting: the ends published within
    COMMIT_DELAY share one commit, and a later listener hears of each only once it is there."""
    plan = write_workspace(tmp_path / "ws", 4).plan()
    seen: list[tuple[str, str | None]] = []
    statements: list[str] = []
    bus = EventBus()
    bus.add_listener(noting_commits(plan, seen))
    with Journal.open(plan.state_dir, trace=statements.append) as journal:
        bus.add_listener(journal.listener, first=True)
        journal.hold_reports(bus, asyncio.get_running_loop())
        journal.start_run(plan, [])
        journal.flush()
        statements.clear()
        ends = [(1, JobState.SUCCEEDED), (2, JobState.FAILED), (3, JobState.KILLED),
                (4, JobState.MISSING)]
        for job_id, state in ends:
            bus.publish(change(plan, job_id, JobState.RUNNING))
            bus.publish(change(plan, job_id, state))
        assert [state for state, _ in seen] == ["running"], "after the first end, nothing is told"
        await eventually(lambda: len(seen) == 8, "the held events delivered")
        assert statements.count("COMMIT") == 1, "four ends, one commit"
    assert [state for state, _ in seen
            ] == [value for _, state in ends
                  for value in ("running", state.value)], "delivered in the order published"
    finished = [(state, found) for state, found in seen if state != "running"]
    assert finished == [(s.value, s.value) for _, s in ends]


async def test_the_runs_end_and_closing_let_held_reports_through_at_once(tmp_path):
    plan = write_workspace(tmp_path / "ws", 2).plan()
    heard: list[type] = []
    bus = EventBus()
    bus.add_listener(lambda event: heard.append(type(event)))
    journal = Journal.open(plan.state_dir)
    bus.add_listener(journal.listener, first=True)
    journal.hold_reports(bus, asyncio.get_running_loop())
    journal.start_run(plan, [])
    bus.publish(change(plan, 1, JobState.SUCCEEDED))
    bus.publish(
        ev.RunFinished(time=time.monotonic(),
                       counts={"succeeded": 1},
                       wall_seconds=1.0,
                       exit_code=0,
                       interrupted=False))
    assert heard == [ev.JobStateChanged, ev.RunFinished], "no wait: the end is told with it"
    assert committed_state(journal.path, plan.jobs[0].input_path) == "succeeded"
    bus.publish(change(plan, 2, JobState.FAILED))
    assert heard[-1] is ev.RunFinished, "held"
    journal.close()
    assert heard[-1] is ev.JobStateChanged, "closing commits and tells what it held"
    assert committed_state(journal.path, plan.jobs[1].input_path) == "failed"


def test_skips_stay_batched(tmp_path):
    plan = write_workspace(tmp_path / "ws", 3).plan()
    statements: list[str] = []
    with Journal.open(plan.state_dir, trace=statements.append) as journal:
        journal.start_run(plan, [])
        statements.clear()
        began = time.perf_counter()
        for job_id in (1, 2, 3):
            journal.listener(change(plan, job_id, JobState.SKIPPED, attempt=0))
        assert time.perf_counter() - began < 0.1
        journal.flush()
        assert statements.count("BEGIN") == 1, "three skips, one transaction"


@pytest.mark.parametrize("attempt", range(3))
def test_kill_9_right_after_a_job_is_reported_finished_never_reruns_it(tmp_path, attempt):
    """No {output_file}: only the journal knows job 1 is done. The orchestrator dies by
    SIGKILL the moment its progress line reports it; the resumed run must not run it again.
    Jobs of 0.3 s: the line waits 50 ms for the ends of the same instant, and jobs of no time
    at all ended the run before it came."""
    del attempt  # repeated: the old 0.5 s batching lost the row nearly every time
    ws, record = command_ws(tmp_path, 3, seconds=0.3)
    proc = start(ws, "--max-procs", "1")
    reported = threading.Event()
    ended = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if match := re.match(r"\[\s*([12])/3\]", line):
                proc.send_signal(signal.SIGKILL)
                ended = int(match.group(1))
                reported.set()
                break
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert reported.is_set(), "the first job was never reported finished"
    assert proc.returncode == -signal.SIGKILL
    resumed = run_cli("--headless", str(ws.config), "--max-procs", "1")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    counts = runs(record)
    for name in ("clip01.bin", "clip02.bin")[:ended]:  # the jobs the line said had ended
        assert counts[name] == 1, f"a finished job ran again: {counts}"
    assert set(counts) == {"clip01.bin", "clip02.bin", "clip03.bin"}


# --- 4. nothing written through a symlink, nothing readable by others


@pytest.mark.parametrize("name", [JOURNAL_NAME, f"{JOURNAL_NAME}-wal", f"{JOURNAL_NAME}-shm"])
@pytest.mark.parametrize("victim_bytes", [b"", b"precious data, not a journal\n"])
def test_a_symlink_planted_at_a_journal_name_is_refused_and_the_victim_untouched(
        tmp_path, name, victim_bytes):
    ws, record = command_ws(tmp_path)
    assert run_cli("--headless", str(ws.config), "--max-procs", "2").returncode == 0
    state = journal_of(ws).parent
    if name == JOURNAL_NAME:
        journal_of(ws).unlink()
    victim = tmp_path / "victim"
    victim.write_bytes(victim_bytes)
    victim.chmod(0o644)
    before = (victim.read_bytes(), victim.stat().st_mode, victim.stat().st_mtime_ns)
    (state / name).symlink_to(victim)
    ran = runs(record)
    line = one_error_line(run_cli("--headless", str(ws.config), "--max-procs", "2", "--fresh"))
    assert str(state / name) in line and "symbolic link" in line
    assert (victim.read_bytes(), victim.stat().st_mode, victim.stat().st_mtime_ns) == before
    assert not Path(f"{victim}-wal").exists() and not Path(f"{victim}-shm").exists()
    assert runs(record) == ran, "no job ran"


def test_a_dangling_symlink_is_not_followed_to_create_its_target(tmp_path):
    target = tmp_path / "elsewhere" / "created-by-mistake"
    target.parent.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    (state / JOURNAL_NAME).symlink_to(target)
    with pytest.raises(JournalError, match="symbolic link"):
        Journal.open(state)
    assert not target.exists()


@pytest.mark.parametrize("name", [JOURNAL_NAME, f"{JOURNAL_NAME}-wal"])
def test_a_journal_file_of_another_user_or_with_hard_links_is_refused(tmp_path, name):
    Journal.open(tmp_path).close()
    path = tmp_path / name
    path.touch()
    if os.geteuid() == 0:
        os.chown(path, 12345, 12345)
        with pytest.raises(JournalError) as caught:
            Journal.open(tmp_path)
        assert str(path) in str(caught.value) and "uid 12345" in str(caught.value)
        os.chown(path, 0, 0)
    os.link(path, tmp_path / "a-hard-link")
    with pytest.raises(JournalError, match="hard links"):
        Journal.open(tmp_path)


def test_a_journal_others_may_write_is_refused_like_the_state_folder_s_files(tmp_path):
    Journal.open(tmp_path).close()
    os.chmod(tmp_path / JOURNAL_NAME, 0o664)
    with pytest.raises(JournalError, match="writable by group or others"):
        Journal.open(tmp_path)


def test_the_journal_is_created_private_even_through_the_cli_with_umask_0(tmp_path):
    ws, _ = command_ws(tmp_path)
    result = subprocess.run(
        [*CMD, "--headless", str(ws.config), "--max-procs", "2"],
        preexec_fn=lambda: os.umask(0),
        capture_output=True,
        text=True,
        timeout=60,
        check=False)
    assert result.returncode == 0, result.stderr
    assert journal_of(ws).stat().st_mode & 0o777 == 0o600


def test_python_sqlite3_cannot_pass_open_nofollow(tmp_path):
    """Why the journal checks names itself: Python's sqlite3 has no open flags, and SQLite
    ignores an unknown `nofollow` URI parameter, following the symlink."""
    victim = tmp_path / "victim"
    (tmp_path / "link.db").symlink_to(victim)
    conn = sqlite3.connect(f"file:{tmp_path / 'link.db'}?nofollow=1", uri=True)
    try:
        conn.execute("CREATE TABLE t(x)")
    finally:
        conn.close()
    assert victim.stat().st_size > 0
