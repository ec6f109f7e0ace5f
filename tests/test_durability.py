"""Nothing lost, nothing redone: interruptions of every kind, then the same command again."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring
from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import time
from collections import Counter

from orch_tui.core.joblog import HEADER
from tests.helpers import CMD, WORKER, alive, kill_quietly, run_cli, write_workspace
from tests.tmux import wait_until


def start(ws, *extra, umask=None):
    """The real CLI, headless, in the background."""

    def preexec():
        if umask is not None:
            os.umask(umask)

    return subprocess.Popen(  # pylint: disable=consider-using-with
        [*CMD, str(ws.config), "--headless", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=preexec if umask is not None else None)


def wait_lines(path, count, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text(encoding="utf-8").split()
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines")


def runs_per_input(record):
    return Counter(record.read_text(encoding="utf-8").split())


def test_kill_9_leaves_no_job_running_and_the_next_run_finishes_the_rest(workspace, tmp_path):
    pidfile, record = tmp_path / "pids", tmp_path / "record"
    ws = workspace(4,
                   worker_args=[
                       "--seconds", "1", "--grandchildren", "1", "--pidfile",
                       str(pidfile), "--record",
                       str(record)
                   ])
    first = start(ws, "--max-procs", "2")
    pids = []
    try:
        # Let jobs 1-2 finish and 3-4 start, then kill the orchestrator without warning.
        wait_lines(record, 4, timeout=20)
        # Jobs 3-4 have written their pids (and grandchildren's) and opened their outputs.
        wait_until(lambda: len(pidfile.read_text().splitlines()) == 4 and len(
            list(ws.output_dir.glob(".orch-tui/tmp/*/*"))) == 2,
                   timeout=20,
                   what="jobs 3-4 running with their temporary outputs")
        pids = [int(p) for p in pidfile.read_text().split()]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
        deadline = time.monotonic() + 3
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids), "the guardian kills every job's group"
        temps = list(ws.output_dir.glob(".orch-tui/tmp/*/*"))
        assert temps, "the interrupted jobs left temporary outputs behind"
        second = run_cli(str(ws.config), "--headless", "--max-procs", "2", timeout=60)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "2 skipped" in second.stdout
        counts = runs_per_input(record)
        # Jobs 1-2 finished before the kill: never redone; 3-4 were running: run again.
        assert counts == {"clip01.bin": 1, "clip02.bin": 1, "clip03.bin": 2, "clip04.bin": 2}
        assert not list(ws.output_dir.glob(".orch-tui/tmp/*")), "the dead run's folder went"
        assert len(list(ws.output_dir.glob("*_out.bin"))) == 4
    finally:
        first.kill()
        kill_quietly(pids)


def test_a_success_the_killed_run_did_not_record_gets_its_joblog_line_and_no_rerun(
        workspace, tmp_path):
    """kill -9 between a job's rename (its success) and the journal's commit of its end: the
    journal says running, the output is there. The next run used to skip it as 'output exists'
    and the joblog never got its line. The state is made exactly: the orchestrator is killed
    while both jobs run, then one job's output is put where its rename would have, after its
    attempt began; the other's was put there before its attempt began (its change time, which
    no command can set back: `cp -p` sets the last write's), as an old file."""
    pidfile, record, joblog = tmp_path / "pids", tmp_path / "record", tmp_path / "joblog"
    ws = workspace(
        2, worker_args=["--seconds", "60", "--pidfile",
                        str(pidfile), "--record",
                        str(record)])
    first = start(ws, "--max-procs", "2", "--joblog", str(joblog))
    pids = []
    try:
        wait_until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2,
                   timeout=20,
                   what="both jobs running")
        pids = [int(p) for p in pidfile.read_text().split()]
        journal = ws.output_dir / ".orch-tui" / "journal.sqlite3"

        def recorded_running() -> int:
            with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
                return conn.execute(
                    "SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0]

        wait_until(lambda: recorded_running() == 2, timeout=10, what="both starts committed")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
        wait_until(lambda: not any(alive(p) for p in pids), timeout=10, what="the jobs killed")
        done, old = ws.output_dir / "clip01_out.bin", ws.output_dir / "clip02_out.bin"
        old.write_bytes(b"an output from before")
        done.write_bytes(b"the job's own output")
        os.utime(done, (time.time() - 3600, time.time() - 3600))  # as `cp -p` leaves it
        with sqlite3.connect(journal) as conn:  # clip02's attempt began after its file was there
            conn.execute("UPDATE jobs SET started = ? WHERE input LIKE '%clip02.bin'",
                         (os.stat(old).st_ctime + 1, ))
        second = run_cli(str(ws.config),
                         "--headless",
                         "--max-procs",
                         "2",
                         "--joblog",
                         str(joblog),
                         timeout=60)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "#1 clip01.bin succeeded at" in second.stdout and "#2 clip02" not in second.stdout
        assert "2 skipped" in second.stdout
        lines = [line.split("\t") for line in joblog.read_text(encoding="utf-8").splitlines()]
        assert [line[0] for line in lines] == ["Seq", "1"], "one line, for the recorded success"
        assert lines[1][6] == "0" and float(lines[1][3]) >= 0
        assert runs_per_input(record) == {"clip01.bin": 1, "clip02.bin": 1}, "nothing rerun"
        # Recorded as the success it was (committed before its line was written), so no later
        # run, however it ends, recovers it again.
        with sqlite3.connect(journal) as conn:
            state = conn.execute("SELECT state, reason FROM jobs WHERE input LIKE '%clip01.bin'")
            assert state.fetchone() == ("succeeded",
                                        "succeeded in the run that was killed before recording it")
    finally:
        first.kill()
        kill_quietly(pids)


def test_sigterm_then_the_same_command_redoes_nothing_done(workspace, tmp_path):
    record = tmp_path / "record"
    ws = workspace(3, worker_args=["--seconds", "1.5", "--record", str(record)])
    first = start(ws, "--max-procs", "1")
    wait_lines(record, 2, timeout=20)  # job 1 done, job 2 running
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=15)
    assert first.returncode == 143 and "1 killed" in out
    second = run_cli(str(ws.config), "--headless", "--max-procs", "1", timeout=60)
    assert second.returncode == 0
    assert runs_per_input(record) == {"clip01.bin": 1, "clip02.bin": 2, "clip03.bin": 1}


def test_a_second_orchestrator_on_the_same_folder_is_refused_naming_the_first(workspace):
    ws = workspace(2, worker_args=["--seconds", "5"])
    first = start(ws, "--max-procs", "1")
    try:
        lock = ws.output_dir / ".orch-tui" / "lock"
        deadline = time.monotonic() + 10
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli(str(ws.config), "--headless", timeout=30)
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        # Stale-lock safe: once the holder is gone (even by kill -9) the folder is free.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
        third = run_cli(str(ws.config), "--headless", "--max-procs", "2", timeout=60)
        assert third.returncode == 0, third.stderr
    finally:
        first.kill()


def test_commands_without_an_output_file_are_remembered_by_the_journal(workspace, tmp_path):
    record = tmp_path / "record"
    ws = workspace(3, flags=[str(WORKER), "--record", str(record), "{input_file}"])
    assert run_cli(str(ws.config), "--headless", "--max-procs", "2", timeout=60).returncode == 0
    again = run_cli(str(ws.config), "--headless", "--max-procs", "2", timeout=60)
    assert again.returncode == 0
    assert "3 jobs done in a previous run are skipped" in again.stdout
    assert sum(runs_per_input(record).values()) == 3
    fresh = run_cli(str(ws.config), "--headless", "--max-procs", "2", "--fresh", timeout=60)
    assert fresh.returncode == 0
    assert sum(runs_per_input(record).values()) == 6


def test_learned_figures_seed_the_next_run_and_recalibrate_ignores_them(workspace):
    ws = workspace(2, worker_args=["--seconds", "0.8"])
    first = run_cli(str(ws.config), "--headless", timeout=60)
    assert first.returncode == 0 and "calibrating:" in first.stdout
    for path in ws.output_dir.glob("*_out.bin"):
        path.unlink()
    second = run_cli(str(ws.config), "--headless", timeout=60)
    assert second.returncode == 0
    assert "calibrating:" not in second.stdout
    assert "figures learned in a previous run" in second.stdout
    for path in ws.output_dir.glob("*_out.bin"):
        path.unlink()
    third = run_cli(str(ws.config), "--headless", "--recalibrate", timeout=60)
    assert third.returncode == 0 and "calibrating:" in third.stdout


def test_a_resumed_run_records_no_second_calibration_and_says_where_figures_came_from(workspace):
    ws = workspace(3, worker_args=["--seconds", "0.8"])
    first = run_cli(str(ws.config), "--headless", timeout=60)
    assert first.returncode == 0 and "calibration (window):" in first.stdout
    for path in ws.output_dir.glob("*_out.bin"):
        path.unlink()
    second = run_cli(str(ws.config), "--headless", timeout=60)
    assert second.returncode == 0, second.stdout + second.stderr
    # No window ran: headless must not say one did.
    assert "calibration (window)" not in second.stdout
    assert "calibration (whole-life" not in second.stdout
    assert "figures learned in a previous run: " in second.stdout
    journal = ws.output_dir / ".orch-tui" / "journal.sqlite3"
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        last_run = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
        sources = [
            row[0] for row in conn.execute(
                "SELECT source FROM calibrations WHERE run_id = ? ORDER BY id", (last_run, ))
        ]
    finally:
        conn.close()
    # Figures read from the journal are not written back; only what this run learned is.
    learned_lines = second.stdout.count("(learned from ")
    assert sources == ["learned"] * learned_lines, (sources, second.stdout)


def test_joblog_is_gnu_parallel_format(workspace, tmp_path):
    ws = workspace(["a.bin", "b.bin"],
                   flags=[
                       "-c", "import sys; sys.exit(3 if sys.argv[1].endswith('b.bin') else 0)",
                       "{input_file}"
                   ])
    joblog = tmp_path / "joblog.tsv"
    result = run_cli(str(ws.config),
                     "--headless",
                     "--max-procs",
                     "1",
                     "--joblog",
                     str(joblog),
                     timeout=60)
    assert result.returncode == 1
    lines = joblog.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == [
        "Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal", "Command"
    ]
    rows = {row[0]: row for row in (line.split("\t") for line in lines[1:])}
    assert set(rows) == {"1", "2"} and all(len(row) == 9 for row in rows.values())
    assert rows["1"][6] == "0" and rows["2"][6] == "3" and rows["2"][7] == "0"
    assert float(rows["1"][2]) > 1e9 and rows["2"][8].endswith("b.bin")


def test_nothing_the_run_creates_is_world_writable_even_with_umask_0(workspace):
    ws = workspace(2)
    proc = start(ws, "--max-procs", "2", umask=0)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    state = ws.output_dir / ".orch-tui"
    created = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name.startswith("journal") for p in created)
    assert len(list((state / "logs").rglob("*.log"))) == 2
    for path in created:
        assert not path.stat().st_mode & stat.S_IWOTH, path


def test_ends_the_killed_run_committed_but_never_wrote_to_the_joblog_are_written_next_run(tmp_path):
    """kill -9 between the journal's commit of a job's end and the joblog's line for it: the
    journal says the job ended, so no run redoes it, and its line was lost for good. The state
    is made exactly: a whole run, then its end unrecorded and its joblog's last lines cut off.
    The next run must write those lines as the killed run would have, before its own, and
    rerun only the failures (as every resume does)."""
    record = tmp_path / "record"
    code = ("import os, sys, time\n"
            "name = os.path.basename(sys.argv[1])\n"
            "open(sys.argv[2], 'a').write(name + '\\n')\n"
            "if name.startswith('slow'): time.sleep(30)\n"
            "sys.exit(3 if name.startswith('bad') else 0)\n")
    ws = write_workspace(tmp_path / "ws", ["a.bin", "bad.bin", "slow.bin", "b.bin"],
                         flags=["-c", code, "{input_file}", str(record)],
                         jobs={"timeout": 1})
    joblog = tmp_path / "joblog.tsv"
    first = run_cli(str(ws.config), "--headless", "--max-procs", "4", "--joblog", str(joblog))
    assert first.returncode == 1, first.stdout + first.stderr
    whole = joblog.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(whole) == 5
    journal = ws.output_dir / ".orch-tui" / "journal.sqlite3"
    with sqlite3.connect(journal) as conn:
        conn.execute("UPDATE runs SET ended = NULL, exit_code = NULL, counts = NULL")
    kept = 2  # the header and one line: three ends were committed, their lines never written
    # ... and the start of a fourth, cut by the kill (no line: its job must still get one).
    joblog.write_text("".join(whole[:kept]) + whole[kept][:20], encoding="utf-8")
    # The list reordered before the resume: the lines keep the Seq they had when they ran.
    (ws.root / "inputs.txt").write_text("".join(
        reversed((ws.root / "inputs.txt").read_text(encoding="utf-8").splitlines(True))),
                                        encoding="utf-8")

    second = run_cli(str(ws.config), "--headless", "--max-procs", "4", "--joblog", str(joblog))
    assert second.returncode == 1, second.stdout + second.stderr
    assert "the joblog gets the 3 lines the last run, killed, recorded in its journal" in (
        second.stdout), second.stdout
    assert runs_per_input(record) == {"a.bin": 1, "b.bin": 1, "bad.bin": 2, "slow.bin": 2}
    again = joblog.read_text(encoding="utf-8").splitlines(keepends=True)
    assert again[:kept] == whole[:kept] and again[kept] == whole[kept][:20] + "\n"
    del again[kept]  # the fragment stays, a line of its own: parallel skips it too
    assert len(again) == len(whole) + 2  # + the two reruns

    def columns(line):  # the runtime from the journal's clock may differ by a millisecond
        fields = line.split("\t")
        return fields[:3] + fields[4:], float(fields[3])

    backfilled = again[kept:len(whole)]
    assert sorted(columns(line)[0]
                  for line in backfilled) == sorted(columns(line)[0] for line in whole[kept:])
    written = {columns(line)[0][0]: columns(line)[1] for line in whole[kept:]}
    for line in backfilled:
        fields, runtime = columns(line)
        assert abs(runtime - written[fields[0]]) < 0.01, line

    third = run_cli(str(ws.config), "--headless", "--max-procs", "4", "--joblog", str(joblog))
    assert "joblog gets" not in third.stdout, "a run that ended is never backfilled"
    assert len(joblog.read_text(encoding="utf-8").splitlines()) == len(again) + 1 + 2


def test_a_joblog_moved_aside_after_a_killed_run_is_not_backfilled(tmp_path):
    """The operator moved the killed run's joblog aside (or emptied it): the new file is not the
    one that run wrote to, so none of that run's lines are written into it again."""
    record = tmp_path / "record"
    code = "import sys; open(sys.argv[1], 'a').write('ran\\n')\n"
    ws = write_workspace(tmp_path / "ws", 3, flags=["-c", code, str(record), "{input_file}"])
    joblog = tmp_path / "joblog.tsv"
    first = run_cli(str(ws.config), "--headless", "--joblog", str(joblog))
    assert first.returncode == 0, first.stdout + first.stderr
    with sqlite3.connect(ws.output_dir / ".orch-tui" / "journal.sqlite3") as conn:
        conn.execute("UPDATE runs SET ended = NULL, exit_code = NULL, counts = NULL")
    joblog.rename(tmp_path / "joblog.old")
    second = run_cli(str(ws.config), "--headless", "--joblog", str(joblog))
    assert second.returncode == 0 and "joblog gets" not in second.stdout, second.stdout
    assert joblog.read_text(encoding="utf-8") == HEADER
    joblog.write_text("", encoding="utf-8")
    with sqlite3.connect(ws.output_dir / ".orch-tui" / "journal.sqlite3") as conn:
        conn.execute("DELETE FROM runs WHERE id > 1")  # the killed run is the last again
        conn.execute("UPDATE runs SET ended = NULL, exit_code = NULL, counts = NULL")
    third = run_cli(str(ws.config), "--headless", "--joblog", str(joblog))
    assert third.returncode == 0 and "joblog gets" not in third.stdout, third.stdout
    assert joblog.read_text(encoding="utf-8") == HEADER


def test_a_changed_config_gets_no_backfilled_lines_and_is_told_so(tmp_path):
    """The killed run's commands are not known once its config changed: the resume writes none
    of its missing lines (they would name commands that never ran) and says so."""
    code = "import sys; sys.exit(0)\n"
    ws = write_workspace(tmp_path / "ws", 3, flags=["-c", code, "{input_file}"])
    joblog = tmp_path / "joblog.tsv"
    assert run_cli(str(ws.config), "--headless", "--joblog", str(joblog)).returncode == 0
    with sqlite3.connect(ws.output_dir / ".orch-tui" / "journal.sqlite3") as conn:
        conn.execute("UPDATE runs SET ended = NULL")
    joblog.write_text(HEADER, encoding="utf-8")  # the killed run wrote none of its lines
    ws.config.write_text(ws.config.read_text(encoding="utf-8").replace(
        "sys.exit(0)", "sys.exit(0)  # changed"),
                         encoding="utf-8")
    second = run_cli(str(ws.config), "--headless", "--joblog", str(joblog))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "the joblog lacks 3 lines of jobs the last run, killed, recorded" in second.stdout
    assert "config changed" in second.stdout and "joblog gets" not in second.stdout
    assert joblog.read_text(encoding="utf-8") == HEADER


def test_a_halt_leaves_no_retry_pending_as_not_run_and_logs_every_failure(tmp_path):
    """15 jobs that fail, one retry each, one at a time, halt after 10 failures in a row: the
    10 that ran failed (their retries, queued behind the rest, never run). They read '15 not
    run' with no joblog line at all."""
    ws = write_workspace(tmp_path / "ws",
                         15,
                         flags=["-c", "import sys; sys.exit(3)", "{input_file}"],
                         jobs={
                             "retries": 1,
                             "halt_after_failures": 10
                         })
    joblog = tmp_path / "joblog.tsv"
    result = run_cli(str(ws.config), "--headless", "--jobs", "1", "--joblog", str(joblog))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "10 jobs failed in a row" in result.stdout
    lines = [line.split("\t") for line in joblog.read_text(encoding="utf-8").splitlines()[1:]]
    assert sorted(int(line[0]) for line in lines) == list(range(1, 11))
    assert {line[6] for line in lines} == {"3"}
    status = json.loads(run_cli("status", str(ws.output_dir), "--json").stdout)
    assert status["counts"]["failed"] == 10 and status["counts"]["queued"] == 5
