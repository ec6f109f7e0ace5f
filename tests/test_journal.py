"""The SQLite journal: schema and version checks, batching off the caller's thread, job rows,
profiles, run rows, and a real orchestrator run recorded alongside the joblog."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.joblog import HEADER, JoblogWriter
from orch_tui.core.local_runner import LocalRunner
from orch_tui.core.journal import (BATCH_SIZE, JOURNAL_NAME, SCHEMA_VERSION, Journal, JournalError)
from orch_tui.core.plan import Plan, load_plan
from orch_tui.core.scaling import ProcessProfile, SystemCapacity, compute_limit
from tests.helpers import eventually, unprivileged, start_run, write_workspace
from tests.tmux import wait_until

MB = 1024 * 1024


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    """A real three-job plan (nothing has run)."""
    ws = write_workspace(tmp_path / "ws", 3)
    return load_plan(ws.config)


def change(plan: Plan,
           job_id: int,
           state: JobState,
           attempt: int = 1,
           **fields) -> ev.JobStateChanged:
    """A JobStateChanged as the orchestrator publishes it."""
    spec = plan.jobs[job_id - 1]
    return ev.JobStateChanged(time=time.monotonic(),
                              job_id=job_id,
                              name=spec.name,
                              state=state,
                              previous=fields.pop("previous", None),
                              attempt=attempt,
                              **fields)


def rows(state_dir: Path, sql: str) -> list[tuple]:
    """Read the journal with a separate, read-only connection (what another process sees)."""
    conn = sqlite3.connect(f"file:{state_dir / JOURNAL_NAME}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def a_decision(cpu: float = 1.0, rss: int = 200 * MB, output: int = 4 * MB):
    """A real scaling decision for a given per-process profile."""
    return compute_limit(
        ProcessProfile(cpu, rss, output),
        SystemCapacity(logical_cores=8, available_memory=8 * 1024 * MB, free_disk=100 * 1024 * MB))


# --- schema, version, unusable files


def test_a_new_journal_has_the_schema_and_its_version_in_wal_mode(tmp_path):
    state_dir = tmp_path / "out" / ".orch-tui"
    with Journal.open(state_dir) as journal:
        assert journal.path == state_dir / JOURNAL_NAME
    assert rows(state_dir,
                "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION), )]
    tables = {r[0] for r in rows(state_dir, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"meta", "runs", "jobs", "calibrations"}
    columns = [r[1] for r in rows(state_dir, "PRAGMA table_info(jobs)")]
    assert columns == [
        "input", "output", "state", "exit_code", "signal", "started", "ended", "attempts",
        "peak_rss", "cpu_seconds", "log_path", "run_id", "reason", "detail", "node", "stop", "seq"
    ]
    assert rows(state_dir, "PRAGMA journal_mode") == [("wal", )]
    # Reopening the same version keeps what was there.
    with Journal.open(state_dir) as journal:
        assert journal.previous_jobs() == {} and journal.last_profile() is None


def test_the_writer_thread_blocks_signals_so_a_jobs_exit_never_wakes_it(tmp_path):
    # While the main thread is inside posix_spawn, glibc blocks every signal there: a job's
    # SIGCHLD then goes to any thread that does not block it, waking it for nothing.
    with Journal.open(tmp_path) as journal:
        store = journal._store  # pylint: disable=protected-access  # its writer thread
        writer = store._thread.native_id  # pylint: disable=protected-access  # its kernel tid
        with open(f"/proc/self/task/{writer}/status", encoding="ascii") as handle:
            blocked = int(handle.read().split("SigBlk:")[1].split()[0], 16)
    assert blocked >> (signal.SIGCHLD - 1) & 1 and blocked >> (signal.SIGINT - 1) & 1


def test_a_journal_from_a_newer_schema_is_refused_naming_file_and_versions(tmp_path):
    Journal.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / JOURNAL_NAME)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 1), ))
    conn.close()
    with pytest.raises(JournalError) as caught:
        Journal.open(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / JOURNAL_NAME) in message
    assert f"version {SCHEMA_VERSION + 1}" in message and f"({SCHEMA_VERSION})" in message
    assert "\n" not in message and caught.value.exit_code == 2


def test_a_file_that_is_not_sqlite_is_a_one_line_journal_error(tmp_path):
    (tmp_path / JOURNAL_NAME).write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(JournalError) as caught:
        Journal.open(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / JOURNAL_NAME) in message and "not a database" in message
    # Nothing was overwritten: the operator decides what to do with the file.
    assert (tmp_path / JOURNAL_NAME).read_bytes() == b"this is not a database\n" * 200


def test_another_sqlite_database_is_not_taken_for_a_journal(tmp_path):
    conn = sqlite3.connect(tmp_path / JOURNAL_NAME)
    conn.execute("CREATE TABLE photos(id INTEGER)")
    conn.close()
    with pytest.raises(JournalError, match="not an orch-tui journal"):
        Journal.open(tmp_path)


def test_a_state_dir_that_cannot_be_created_is_a_journal_error(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(JournalError, match="cannot create the journal folder"):
        Journal.open(blocker / ".orch-tui")


def test_a_read_only_state_dir_is_a_journal_error(tmp_path):
    state_dir = tmp_path / ".orch-tui"
    state_dir.mkdir()
    state_dir.chmod(0o555)
    # Root ignores permission bits: the check runs in a subprocess without that bypass.
    code = ("import sys\nfrom orch_tui.core.journal import Journal, JournalError\n"
            "try:\n    Journal.open(__import__('pathlib').Path(sys.argv[1]))\n"
            "except JournalError as exc:\n    print(exc)\n    sys.exit(3)\n")
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, str(state_dir)],
            preexec_fn=unprivileged(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False)
    finally:
        state_dir.chmod(0o755)
    assert result.returncode == 3, result.stderr
    assert "not writable" in result.stdout


def test_the_journal_and_its_wal_are_private_whatever_the_umask(tmp_path):
    for umask in (0o027, 0, 0o277):
        state_dir = tmp_path / f"umask-{umask:o}"
        old = os.umask(umask)
        try:
            journal = Journal.open(state_dir)
            journal.flush()
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state_dir.iterdir()}
            journal.close()
        finally:
            os.umask(old)
        # SQLite gives -wal and -shm the journal's own mode.
        assert modes == {
            JOURNAL_NAME: 0o600,
            f"{JOURNAL_NAME}-wal": 0o600,
            f"{JOURNAL_NAME}-shm": 0o600
        }, (umask, modes)
        assert not state_dir.stat().st_mode & stat.S_IWOTH


# --- job rows from events


def test_job_events_become_rows_with_states_attempts_and_exit_codes(plan):
    state_dir = plan.state_dir
    before = time.time()
    with Journal.open(state_dir) as journal:
        run_id = journal.start_run(plan, ["orch-tui", "run", "config.yaml"])
        listen = journal.listener
        listen(change(plan, 1, JobState.RUNNING, pid=10))
        listen(change(plan, 1, JobState.SUCCEEDED, exit_code=0, peak_rss=5 * MB, cpu_seconds=1.5))
        listen(change(plan, 2, JobState.RUNNING))
        listen(change(plan, 2, JobState.FAILED, exit_code=3, reason="exit 3"))
        listen(change(plan, 2, JobState.QUEUED, reason="retry 1/1 after: exit 3"))
        listen(change(plan, 2, JobState.RUNNING, attempt=2))
        listen(change(plan, 2, JobState.FAILED, attempt=2, exit_code=3, peak_rss=MB))
        listen(change(plan, 3, JobState.RUNNING))
        listen(change(plan, 3, JobState.PAUSED))
        listen(change(plan, 3, JobState.RUNNING, previous=JobState.PAUSED))
        listen(change(plan, 3, JobState.KILLED, signal=15, reason="killed by operator"))
        journal.flush()
        after = time.time()
        records = journal.previous_jobs()
    specs = {spec.job_id: spec for spec in plan.jobs}
    assert set(records) == {str(spec.input_path) for spec in plan.jobs}
    one, two, three = (records[str(specs[i].input_path)] for i in (1, 2, 3))
    assert (one.state, one.exit_code, one.signal, one.attempts) == ("succeeded", 0, None, 1)
    assert (one.peak_rss, one.cpu_seconds) == (5 * MB, 1.5)
    assert one.output_path == str(specs[1].output_path)
    assert one.log_path == str(specs[1].log_path) and one.run_id == run_id
    assert before <= one.started <= one.ended <= after
    assert (two.state, two.exit_code, two.attempts, two.peak_rss) == ("failed", 3, 2, MB)
    assert (three.state, three.signal, three.exit_code) == ("killed", 15, None)
    assert not any(r.interrupted for r in records.values())


def test_a_resume_after_pause_keeps_the_attempts_start_time(plan):
    with Journal.open(plan.state_dir) as journal:
        journal.start_run(plan, [])
        journal.listener(change(plan, 1, JobState.RUNNING))
        journal.flush()
        started = journal.previous_jobs()[str(plan.jobs[0].input_path)].started
        time.sleep(0.02)
        journal.listener(change(plan, 1, JobState.PAUSED))
        journal.listener(change(plan, 1, JobState.RUNNING, previous=JobState.PAUSED))
        journal.listener(change(plan, 1, JobState.SUCCEEDED, exit_code=0))
        journal.flush()
        record = journal.previous_jobs()[str(plan.jobs[0].input_path)]
    assert record.started == started and record.ended > started


def test_a_running_row_survives_a_crash_and_reads_as_interrupted(plan):
    """A process that dies without close() leaves its committed rows: the next run sees the
    job as still running, i.e. interrupted, and reruns it."""
    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
from orch_tui.core import events as ev
from orch_tui.core.journal import Journal
from orch_tui.core.plan import load_plan
plan = load_plan({str(plan.config.path)!r})
journal = Journal.open(plan.state_dir)
journal.start_run(plan, ["crash"])
for spec in plan.jobs[:2]:
    journal.listener(ev.JobStateChanged(time=0.0, job_id=spec.job_id, name=spec.name,
                                        state=ev.JobState.RUNNING, previous=None, attempt=1))
journal.listener(ev.JobStateChanged(time=0.0, job_id=1, name="", state=ev.JobState.SUCCEEDED,
                                    previous=None, attempt=1, exit_code=0))
journal.flush()
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    with Journal.open(plan.state_dir) as journal:
        records = journal.previous_jobs()
        run_rows = rows(plan.state_dir, "SELECT argv, ended, exit_code FROM runs")
    first, second = (records[str(spec.input_path)] for spec in plan.jobs[:2])
    assert first.state == "succeeded" and not first.interrupted
    assert second.state == "running" and second.interrupted and second.ended is None
    assert str(plan.jobs[2].input_path) not in records
    assert run_rows == [('["crash"]', None, None)]  # the crashed run never ended


def test_a_skip_keeps_an_earlier_success_but_replaces_anything_else(plan):
    with Journal.open(plan.state_dir) as journal:
        journal.start_run(plan, [])
        journal.listener(change(plan, 1, JobState.RUNNING))
        journal.listener(change(plan, 1, JobState.SUCCEEDED, exit_code=0, cpu_seconds=2.0))
        journal.listener(change(plan, 2, JobState.RUNNING))
        journal.close()
    with Journal.open(plan.state_dir) as journal:
        journal.start_run(plan, [])
        for job_id in (1, 2, 3):
            journal.listener(change(plan, job_id, JobState.SKIPPED, attempt=0))
        journal.flush()
        records = journal.previous_jobs()
    states = {Path(path).name: (r.state, r.cpu_seconds) for path, r in records.items()}
    assert states == {
        "clip01.bin": ("succeeded", 2.0),
        "clip02.bin": ("skipped", 0.0),
        "clip03.bin": ("skipped", 0.0),
    }


def test_events_before_start_run_or_after_close_are_ignored(plan):
    journal = Journal.open(plan.state_dir)
    journal.listener(change(plan, 1, JobState.RUNNING))
    journal.flush()
    assert journal.previous_jobs() == {}
    journal.start_run(plan, [])
    journal.close()
    journal.listener(change(plan, 1, JobState.RUNNING))  # no error, nothing queued
    journal.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        journal.flush()


# --- profiles and runs


def test_last_profile_round_trips_calibration_and_learned_figures(plan):
    calibrated = ProcessProfile(cpu_cores=1.25, rss_bytes=300 * MB, output_bytes=7 * MB)
    decision = a_decision(1.25, 300 * MB, 7 * MB)
    with Journal.open(plan.state_dir) as journal:
        run_id = journal.start_run(plan, [])
        journal.listener(
            ev.CalibrationFinished(time=1.0,
                                   profile=calibrated,
                                   decision=decision,
                                   source=ev.LimitSource.WINDOW))
        journal.flush()
        assert journal.last_profile() == ProcessProfile(1.25, 300 * MB, 7 * MB, source="journal")
        # The operator's limit carries no figures; a learned limit does.
        journal.listener(
            ev.LimitChanged(time=2.0, limit=3, previous=6, source=ev.LimitSource.OPERATOR))
        learned = a_decision(0.5, 100 * MB, 2 * MB)
        journal.listener(
            ev.LimitChanged(time=3.0,
                            limit=learned.limit,
                            previous=decision.limit,
                            source=ev.LimitSource.LEARNED,
                            observations=5,
                            decision=learned))
    with Journal.open(plan.state_dir) as journal:
        assert journal.last_profile() == ProcessProfile(0.5, 100 * MB, 2 * MB, source="journal")
    assert rows(
        plan.state_dir, "SELECT run_id, source, cpu_cores, rss_bytes, output_bytes, "
        "limit_value, binding FROM calibrations ORDER BY id") == [
            (run_id, "calibration", 1.25, 300 * MB, 7 * MB, decision.limit, decision.binding),
            (run_id, "learned", 0.5, 100 * MB, 2 * MB, learned.limit, learned.binding),
        ]


def test_figures_read_from_a_previous_run_are_not_recorded_again(plan):
    """Issue 8: every resumed run wrote a second calibration row ("journal") for the figures it
    had just read back. The real resumed run is in test_durability.py."""
    with Journal.open(plan.state_dir) as journal:
        journal.start_run(plan, [])
        journal.listener(
            ev.CalibrationFinished(time=1.0,
                                   profile=ProcessProfile(1.0, 100 * MB, MB, source="journal"),
                                   decision=a_decision(),
                                   source=ev.LimitSource.PREVIOUS_RUN))
        journal.flush()
        assert journal.last_profile() is None
    assert rows(plan.state_dir, "SELECT count(*) FROM calibrations") == [(0, )]


def test_record_profile_without_a_decision(plan):
    with Journal.open(plan.state_dir) as journal:
        journal.record_profile(ProcessProfile(2.0, 10 * MB, 0, source="whole-life"), None)
        journal.flush()
        assert journal.last_profile() == ProcessProfile(2.0, 10 * MB, 0, source="journal")
    assert rows(plan.state_dir, "SELECT run_id, source, limit_value, binding FROM calibrations") \
        == [(None, "whole-life", None, None)]


def test_run_rows_record_config_argv_end_exit_code_and_counts(plan):
    with Journal.open(plan.state_dir) as journal:
        first = journal.start_run(plan, ["orch-tui", "--headless", "c.yaml"])
        journal.listener(
            ev.RunFinished(time=9.0,
                           counts={
                               "succeeded": 2,
                               "failed": 1
                           },
                           wall_seconds=9.0,
                           exit_code=1,
                           interrupted=False))
        journal.flush()
        # The end itself waits for close (or the next run): the joblog writes its last line
        # after RunFinished, and a run killed before that must read as died.
        assert rows(plan.state_dir, "SELECT ended, exit_code FROM runs") == [(None, 1)]
        assert journal.died_run() is None  # not while it is the journal's own run
        second = journal.start_run(plan, ["again"])
    assert second == first + 1
    (one, two) = rows(plan.state_dir,
                      "SELECT id, started, ended, config, argv, exit_code, counts FROM runs")
    assert one[2] >= one[1] and one[5] == 1
    assert json.loads(one[6]) == {"succeeded": 2, "failed": 1}
    assert json.loads(one[4]) == ["orch-tui", "--headless", "c.yaml"]
    config = json.loads(one[3])
    assert config["path"] == str(plan.config.path)
    assert config["binary"]["flags"] == list(plan.config.binary.flags)
    # close() ends a run that never saw RunFinished (exit code unknown).
    assert two[2] >= two[1] and two[5] is None and two[6] is None


# --- off the caller's thread, in batches


def test_the_listener_never_touches_sqlite_and_never_waits_for_it(plan):
    """Statements run only on the writer thread; with that thread stuck inside a transaction,
    thousands of events that are not a job's end still queue instantly."""
    threads: set[tuple[int, str]] = set()
    stuck = threading.Event()
    release = threading.Event()

    def trace(statement: str) -> None:
        threads.add((threading.get_ident(), threading.current_thread().name))
        if statement.startswith("INSERT OR REPLACE INTO jobs") and not release.is_set():
            stuck.set()
            release.wait(10)

    journal = Journal.open(plan.state_dir, trace=trace)
    safety = threading.Timer(10, release.set)
    safety.start()
    try:
        journal.start_run(plan, [])
        journal.listener(change(plan, 1, JobState.RUNNING))
        assert stuck.wait(5), "the writer should have started the first batch"
        began = time.perf_counter()
        for attempt in range(1, 2001):
            journal.listener(change(plan, 2, JobState.RUNNING, attempt=attempt))
            journal.listener(change(plan, 2, JobState.PAUSED, attempt=attempt))
            journal.listener(change(plan, 3, JobState.SKIPPED, attempt=0))
        elapsed = time.perf_counter() - began
        assert not release.is_set(), "the listener waited for the writer"
        assert elapsed < 2.0
        release.set()
        journal.flush()
        record = journal.previous_jobs()[str(plan.jobs[1].input_path)]
        assert (record.state, record.attempts) == ("paused", 2000)
    finally:
        release.set()
        safety.cancel()
        journal.close()
    assert threads and {name for _, name in threads} == {"orch-tui journal"}
    assert threading.get_ident() not in {ident for ident, _ in threads}


def test_updates_are_committed_in_batches_by_size_and_by_time(plan):
    statements: list[str] = []
    journal = Journal.open(plan.state_dir, trace=statements.append)
    try:
        journal.start_run(plan, [])
        statements.clear()
        updates = 2 * BATCH_SIZE + 50
        for attempt in range(1, updates + 1):
            journal.listener(change(plan, 1 + attempt % 3, JobState.RUNNING, attempt=attempt))
        # No flush: the size trigger commits two batches, the timer the rest within ~0.5 s.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = rows(plan.state_dir, "SELECT max(attempts) FROM jobs")[0][0]
            if found == updates:
                break
            time.sleep(0.05)
        assert found == updates
        assert statements.count("BEGIN") == 3
        # Rows coalesce per input within a batch: one write per job per transaction.
        assert sum(s.startswith("INSERT OR REPLACE INTO jobs") for s in statements) == 9
    finally:
        journal.close()


# --- a real run


async def test_a_real_run_is_journaled_and_joblogged(tmp_path):
    """Two good inputs, one exiting 3 (retried once), one killed by its own SIGKILL, one hitting
    the timeout: journal rows and joblog lines say exactly that; a second run appends to the
    joblog without a second header."""
    code = ("import os, shutil, sys, time\n"
            "name = os.path.basename(sys.argv[1])\n"
            "if name.startswith('slow'): time.sleep(30)\n"
            "if name.startswith('sig'): os.kill(os.getpid(), 9)\n"
            "shutil.copyfile(sys.argv[1], sys.argv[2])\n"
            "sys.exit(3 if name.startswith('bad') else 0)\n")
    ws = write_workspace(tmp_path / "ws", ["a.bin", "b.bin", "bad.bin", "sig.bin", "slow.bin"],
                         flags=["-c", code, "{input_file}", "{output_file}"],
                         jobs={
                             "retries": 1,
                             "timeout": 1,
                             "kill_grace": 0.5
                         })
    plan = ws.plan()
    joblog_path = tmp_path / "joblog.tsv"
    statements: list[str] = []
    threads: set[str] = set()

    unguarded: list[str] = []

    def trace(statement: str) -> None:
        statements.append(statement)
        threads.add(threading.current_thread().name)
        # The writer and a job end's sync share the connection, never at the same time (while
        # it opens, before `opened` has it, the writer alone knows the connection).
        if opened and not opened[0]._store._conn_lock.locked():  # pylint: disable=protected-access
            unguarded.append(statement)

    opened: list[Journal] = []
    journal = Journal.open(plan.state_dir, trace=trace)
    opened.append(journal)
    joblog = JoblogWriter(joblog_path, plan)
    try:
        run_id = journal.start_run(plan, ["orch-tui", str(ws.config)])
        run = await start_run(plan)  # calibrates: CalibrationFinished reaches the journal
        run.orchestrator.bus.add_listener(journal.listener)
        run.orchestrator.bus.add_listener(joblog)
        assert await run.result(timeout=60) == 1
    finally:
        joblog.close()
        journal.close()
    # Batches on the writer; each job's end on the loop's thread (the sync), under the lock.
    assert threads == {"orch-tui journal", "MainThread"} and not unguarded

    with Journal.open(plan.state_dir) as reopened:
        records = {Path(p).name: r for p, r in reopened.previous_jobs().items()}
        profile = reopened.last_profile()
    assert {
        n: (r.state, r.exit_code, r.signal, r.attempts)
        for n, r in records.items()
    } == {
        "a.bin": ("succeeded", 0, None, 1),
        "b.bin": ("succeeded", 0, None, 1),
        "bad.bin": ("failed", 3, None, 2),
        "sig.bin": ("failed", None, 9, 2),
        "slow.bin": ("failed", None, 15, 2),
    }
    ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for record in records.values():
        assert record.run_id == run_id and record.started <= record.ended
        assert record.cpu_seconds > 0
        # A job's own figure, never this process's (wait4's, for a job spawned from it): the
        # quick ones end before a sample (0), the slow one was sampled for a second.
        assert record.peak_rss < ours
    assert max(r.peak_rss for r in records.values() if r.input_path.endswith("slow.bin")) > 0
    assert profile is not None and profile.source == "journal"
    (run_row, ) = rows(plan.state_dir, "SELECT ended, exit_code, counts FROM runs")
    assert run_row[0] is not None and run_row[1] == 1
    assert {k: v for k, v in json.loads(run_row[2]).items() if v} == {"succeeded": 2, "failed": 3}
    assert rows(plan.state_dir, "SELECT count(*) FROM calibrations")[0][0] >= 1

    text = joblog_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] + "\n" == HEADER
    fields = {Path(f[8].split()[-2]).name: f for f in (line.split("\t") for line in lines[1:])}
    assert all(len(f) == 9 for f in fields.values())
    # One line per job (parallel logs only the last attempt); Exitval and Signal as parallel.
    assert {
        n: (f[6], f[7])
        for n, f in fields.items()
    } == {
        "a.bin": ("0", "0"),
        "b.bin": ("0", "0"),
        "bad.bin": ("3", "0"),
        "sig.bin": ("0", "9"),
        "slow.bin": ("-1", "15"),
    }
    by_index = {spec.name: spec for spec in plan.jobs}
    for name, f in fields.items():
        assert f[0] == str(by_index[name].job_id) and f[1] == ":" and f[4:6] == ["0", "0"]
        assert len(f[3]) >= 10 and float(f[2]) > 1e9
    assert float(fields["slow.bin"][3]) >= 1.0
    # The command spans lines (python -c): $'...' keeps it on one joblog line.
    assert "$'import os" in fields["a.bin"][8] and "\n" not in fields["a.bin"][8]

    # Rerun: outputs exist for the good ones (skipped: no line); the rest run and append.
    joblog = JoblogWriter(joblog_path, ws.plan())
    run = await start_run(ws.plan(), max_procs=3)
    run.orchestrator.bus.add_listener(joblog)
    assert await run.result(timeout=60) == 1
    joblog.close()
    again = joblog_path.read_text(encoding="utf-8")
    assert again.startswith(text) and again.count("Seq\tHost") == 1
    assert len(again.splitlines()) == len(lines) + 3


class _LateReport(LocalRunner):
    """Reports each start 0.3 s after its process began (a busy core, a cluster's round trip)."""

    async def start(self, spec, on_exit):
        started = await super().start(spec, on_exit)
        await asyncio.sleep(0.3)
        return started


async def test_a_start_reported_late_still_counts_the_runtime_from_the_spawn(tmp_path):
    """Each job writes the epoch seconds of its own start and end: the journal's and the
    joblog's start must come before the one and their runtime must cover both."""
    code = ("import sys, time\n"
            "began = time.time()\n"
            "time.sleep(0.5)\n"
            "open(sys.argv[1], 'w').close()\n"
            "print(began, time.time(), flush=True)\n")
    ws = write_workspace(tmp_path / "ws", 3, flags=["-c", code, "{output_file}"])
    plan = ws.plan()
    joblog_path = tmp_path / "joblog.tsv"
    journal = Journal.open(plan.state_dir)
    joblog = JoblogWriter(joblog_path, plan)
    try:
        journal.start_run(plan, ["orch-tui", str(ws.config)])
        run = await start_run(plan, _LateReport(plan.config.directories.output_dir), max_procs=2)
        run.orchestrator.bus.add_listener(journal.listener, first=True)
        run.orchestrator.bus.add_listener(joblog)
        assert await run.result(timeout=60) == 0
    finally:
        joblog.close()
        journal.close()
    own = {}
    for spec in plan.jobs:
        began, ended = map(float, spec.log_path.read_text(encoding="utf-8").split())
        own[str(spec.input_path)] = (began, ended)
    with Journal.open(plan.state_dir) as reopened:
        records = reopened.previous_jobs()
    assert set(records) == set(own)
    for location, record in records.items():
        began, ended = own[location]
        assert record.started <= began and record.ended >= ended, (record, began, ended)
    fields = [line.split("\t") for line in joblog_path.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(fields) == 3
    for field in fields:
        began, ended = own[str(plan.jobs[int(field[0]) - 1].input_path)]
        assert float(field[2]) <= began + 0.0005 and float(field[3]) >= ended - began - 0.001, field


def test_a_journal_path_that_is_a_directory_is_a_journal_error(tmp_path):
    (tmp_path / JOURNAL_NAME).mkdir()
    with pytest.raises(JournalError) as caught:
        Journal.open(tmp_path)
    assert str(tmp_path / JOURNAL_NAME) in str(caught.value) and "\n" not in str(caught.value)


def test_updates_handed_without_waking_the_writer_are_committed(plan):
    """Job starts handed while the writer lingers after a job end's sync send it no message
    (no context switch per event); they must still reach the file by the time trigger, and
    every end must be committed before the listener returns (before anyone hears of it)."""
    journal = Journal.open(plan.state_dir)
    try:
        journal.start_run(plan, [])
        query = "SELECT input, state FROM jobs"
        for job_id in (1, 2):
            journal.listener(change(plan, job_id, JobState.RUNNING))
            journal.listener(change(plan, job_id, JobState.SUCCEEDED, exit_code=0))
            found = dict(rows(plan.state_dir, query))
            assert found[str(plan.jobs[job_id - 1].input_path)] == "succeeded"
        # Handed right after a sync: the writer is lingering and is not woken for it.
        journal.listener(change(plan, 3, JobState.RUNNING))
        third = str(plan.jobs[2].input_path)
        wait_until(lambda: dict(rows(plan.state_dir, query)).get(third) == "running",
                   timeout=15,
                   what="a job start handed without a wake committed by the time trigger")
    finally:
        journal.close()


async def test_a_recovered_success_is_committed_before_anyone_hears_of_it(plan):
    """A success the killed run did not record: the journal records it, and commits it before
    the other listeners (the joblog) hear of it, so a kill after its line never recovers it
    again (its line written twice)."""
    bus = ev.EventBus()
    heard: list[tuple[str, str]] = []

    def joblog(event: ev.Event) -> None:
        if isinstance(event, ev.JobRecovered):
            heard.extend(rows(plan.state_dir, "SELECT state, reason FROM jobs"))

    with Journal.open(plan.state_dir) as journal:
        journal.start_run(plan, ["orch-tui"])
        bus.add_listener(journal.listener, first=True)
        journal.hold_reports(bus, asyncio.get_running_loop())
        bus.add_listener(joblog)
        bus.publish(
            ev.JobRecovered(time=1.0,
                            job_id=1,
                            name=plan.jobs[0].name,
                            attempt=1,
                            started_wall=time.time() - 5,
                            ended_wall=time.time() - 1))
        assert not heard  # held until committed
        await eventually(lambda: heard, "the joblog to hear of it")
    assert heard == [("succeeded", "succeeded in the run that was killed before recording it")]
