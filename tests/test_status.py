"""`orch-tui status`: a real run, started by the real CLI, looked at from another process."""

from __future__ import annotations

import json
import sys
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from orch_tui.core.jobmatch import JobMatchError, match_jobs
from orch_tui.core.runstatus import journal_status
from orch_tui.subcommands import status_lines
from tests.helpers import CMD, kill_quietly, run_cli
from tests.tmux import wait_until

STATE = ".orch-tui"


def _status(target, *extra):
    result = run_cli("status", str(target), "--json", *extra)
    assert "Traceback" not in result.stderr, result.stderr
    return result, (json.loads(result.stdout) if result.stdout else None)


def _start(ws, *extra):
    return subprocess.Popen(  # pylint: disable=consider-using-with
        [*CMD, str(ws.config), "--headless", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL)


def _pids(pidfile):
    return [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []


def _running(ws, count):
    """Wait until status sees `count` active jobs; the last document."""
    seen = {}

    def check():
        result, doc = _status(ws.output_dir)
        seen["doc"] = doc
        return result.returncode == 0 and doc is not None and len(doc["jobs"]) == count

    wait_until(check, timeout=15, what=f"status to list {count} running jobs")
    return seen["doc"]


@pytest.fixture(name="busy")
def fixture_busy(workspace, tmp_path):
    """A headless run of 3 jobs of a minute, 2 at once, both running; its jobs killed after."""
    pidfile = tmp_path / "pids"
    ws = workspace(3, worker_args=["--seconds", "60", "--pidfile", str(pidfile)])
    proc = _start(ws, "--jobs", "2")
    try:
        yield ws, proc, _running(ws, 2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        kill_quietly(_pids(pidfile))


def test_a_running_run(busy):
    ws, proc, doc = busy
    assert doc["schema"] == 1 and doc["state"] == "running" and doc["pid"] == proc.pid
    # A live run answers on its socket (issue 10): its ETA is measured within seconds, so
    # it is a figure or null here, no longer always null as from the journal alone.
    assert doc["source"] == "live" and doc["exit_code"] == 0 and doc["ended"] is None
    assert doc["counts"]["running"] == 2 and doc["counts"]["queued"] == 1
    assert doc["counts"]["total"] == 3
    assert doc["limit"] == 2 and doc["limit_source"] == "max procs"
    assert {os.path.basename(job["input"])
            for job in doc["jobs"]} <= {"clip01.bin", "clip02.bin", "clip03.bin"}
    assert all(job["state"] == "running" and job["started"] for job in doc["jobs"])
    assert sorted(job["index"] for job in doc["jobs"]) in ([1, 2], [1, 3], [2, 3])
    assert all(abs(job["started"] - doc["started"]) < 60 for job in doc["jobs"]), "epoch times"
    human = run_cli("status", str(ws.output_dir))
    assert human.returncode == 0
    assert human.stdout.startswith("run:      running\n")
    assert "2 running" in human.stdout and "1 queued" in human.stdout
    assert "    ETA " in human.stdout and "limit:    2 (--jobs)" in human.stdout
    assert max(len(line) for line in human.stdout.splitlines()) <= 80


def test_a_finished_clean_run(workspace):
    ws = workspace(2)
    assert run_cli(str(ws.config), "--jobs", "2").returncode == 0
    result, doc = _status(ws.output_dir)
    assert result.returncode == 0
    assert doc["state"] == "finished" and doc["run_exit_code"] == 0 and doc["jobs"] == []
    assert doc["counts"]["succeeded"] == 2 and doc["counts"]["total"] == 2
    assert doc["pid"] is not None and doc["started"] <= doc["ended"]
    # Its config names the folder even once the run's binary is gone: status reads only that.
    ws.config.write_text(ws.config.read_text(encoding="utf-8").replace(
        sys.executable, "/nonexistent/python"),
                         encoding="utf-8")
    by_config = run_cli("status", str(ws.config), "--json")
    assert by_config.returncode == 0, by_config.stderr
    assert json.loads(by_config.stdout)["output_dir"] == doc["output_dir"]


def test_a_finished_run_with_a_failure_exits_1(workspace):
    ws = workspace(2, worker_args=["--exit", "4"])
    assert run_cli(str(ws.config), "--jobs", "2").returncode == 1
    result, doc = _status(ws.output_dir)
    assert result.returncode == 1
    assert doc["state"] == "finished" and doc["counts"]["failed"] == 2 and doc["exit_code"] == 1
    human = run_cli("status", str(ws.output_dir))
    assert human.returncode == 1 and "2 failed" in human.stdout


def test_a_run_killed_with_kill_9_died_with_work_left(busy):
    ws, proc, _ = busy
    # A live status answers from the run's snapshot: wait for its journal to hold the jobs.
    wait_until(lambda: len(journal_status(ws.output_dir).jobs) == 2,
               timeout=15,
               what="the journal to record the running jobs")
    proc.kill()
    proc.wait(timeout=15)
    result, doc = _status(ws.output_dir)
    assert result.returncode == 1
    assert doc["state"] == "died" and doc["pid"] == proc.pid and doc["ended"] is None
    assert doc["source"] == "journal" and doc["jobs"][0]["index"] is None
    # Its guardian killed its jobs: none runs; they were interrupted (not 'running').
    assert doc["counts"]["interrupted"] == 2 and doc["counts"]["running"] == 0
    assert doc["counts"]["queued"] == 1
    assert len(doc["jobs"]) == 2 and {job["state"] for job in doc["jobs"]} == {"interrupted"}
    human = run_cli("status", str(ws.output_dir)).stdout
    assert "died" in human and "interrupted jobs (started at):" in human
    assert "2 interrupted (no process: it died), 1 queued" in human and "running" not in human
    # When each started, never a time since: they ran until the run died, a time no one knows.
    starts = {time.strftime("%H:%M:%S", time.localtime(job["started"])) for job in doc["jobs"]}
    shown = [line.split()[1] for line in human.splitlines() if line.startswith("  interrupted")]
    assert len(shown) == 2 and set(shown) == starts, human


def test_no_run_exits_3(workspace, tmp_path):
    assert run_cli("status", str(tmp_path / "nothing")).returncode == 3
    ws = workspace(1)
    result = run_cli("status", str(ws.output_dir), "--json")
    assert result.returncode == 3 and result.stdout == "" and "no run" in result.stderr
    assert not (ws.output_dir / STATE).exists(), "status creates nothing"


def test_the_config_file_stands_for_its_output_dir(workspace):
    ws = workspace(1)
    assert run_cli(str(ws.config)).returncode == 0
    result, doc = _status(ws.config)
    assert result.returncode == 0 and doc["output_dir"] == str(ws.output_dir)


def test_an_older_journal_is_read_unchanged(workspace):
    ws = workspace(1)
    assert run_cli(str(ws.config)).returncode == 0
    journal = ws.output_dir / STATE / "journal.sqlite3"
    with sqlite3.connect(journal) as conn:  # as a version 2 orch-tui left it
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        for column in ("pid", "total", "skipped", "missing", "limit_value", "limit_source"):
            conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    conn.close()
    before = journal.read_bytes()
    result, doc = _status(ws.output_dir)
    assert result.returncode == 0 and doc["counts"]["succeeded"] == 1 and doc["pid"] is None
    assert journal.read_bytes() == before, "status never migrates"


def test_a_damaged_journal_is_one_line_exit_2(workspace):
    ws = workspace(1)
    assert run_cli(str(ws.config)).returncode == 0
    journal = ws.output_dir / STATE / "journal.sqlite3"
    journal.write_bytes(b"not a database at all" * 100)
    result = run_cli("status", str(ws.output_dir))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "journal" in result.stderr and "Traceback" not in result.stderr


def test_human_lines_fit_80_columns(tmp_path):
    # pylint: disable-next=import-outside-toplevel  # only this test builds a status by hand
    from orch_tui.core.runstatus import RunningJob, RunState, RunStatus
    from orch_tui.core.events import JobState  # pylint: disable=import-outside-toplevel
    from orch_tui.core.tally import Counts  # pylint: disable=import-outside-toplevel
    status = RunStatus(output_dir=tmp_path / ("x" * 200),
                       state=RunState.DIED,
                       pid=12345678,
                       started=1.7e9,
                       ended=None,
                       counts=Counts(queued=123456, running=64, failed=99999, succeeded=999999),
                       run_exit_code=None,
                       limit=64,
                       limit_source="memory pressure",
                       jobs=(RunningJob("/in/" + "long name " * 20 + ".mov", JobState.RUNNING, 3,
                                        1.7e9, 0.5), ))
    lines = status_lines(status, now=1.7e9 + 3 * 3600)
    assert max(len(line) for line in lines) <= 80
    assert lines[-2].endswith("name .mov") and " 50%" in lines[-2]


def test_a_running_run_counts_what_preflight_skipped(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(4, worker_args=["--seconds", "60", "--pidfile", str(pidfile)])
    done = ws.plan().jobs[3].output_path
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_bytes(b"done before")
    proc = _start(ws, "--jobs", "2")
    try:
        doc = _running(ws, 2)
        counts = doc["counts"]
        assert (counts["running"], counts["queued"], counts["skipped"]) == (2, 1, 1)
        assert counts["total"] == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        kill_quietly(_pids(pidfile))


INPUTS = {
    1: Path("/media/a/clip.mov"),
    2: Path("/media/b/clip.mov"),
    3: Path("/media/b/other.mov"),
    10: Path("/media/12"),
}


def test_job_words_name_an_index_a_path_or_a_file_name():
    assert match_jobs(["3", "1"], INPUTS) == [3, 1]
    assert match_jobs(["other.mov", "/media/a/clip.mov", "3"], INPUTS) == [3, 1]
    assert match_jobs(["12"], {**INPUTS, 12: Path("/x.mov")}) == [12], "a number is an index"


def test_a_relative_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert match_jobs(["in/x.mov"], {4: tmp_path / "in" / "x.mov", 5: Path("/x.mov")}) == [4]


def test_a_word_matching_several_inputs_lists_them():
    with pytest.raises(JobMatchError) as caught:
        match_jobs(["clip.mov"], INPUTS)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "matches 2 inputs" in message
    assert "#1 /media/a/clip.mov" in message and "#2 /media/b/clip.mov" in message


def test_a_word_matching_nothing_is_refused():
    with pytest.raises(JobMatchError, match="no input matches 'nope.mov'"):
        match_jobs(["nope.mov"], INPUTS)
    with pytest.raises(JobMatchError, match="no job #7"):
        match_jobs(["7"], INPUTS)


def test_a_long_ambiguity_is_cut():
    many = {i: Path(f"/d{i}/same.mov") for i in range(1, 31)}
    with pytest.raises(JobMatchError) as caught:
        match_jobs(["same.mov"], many)
    assert "and 20 more" in str(caught.value) and "#11 " not in str(caught.value)
