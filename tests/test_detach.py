"""`orch-tui --detach`: the run in a process of its own, which no terminal can touch.

Real processes throughout: the run is looked at through /proc (its session, its terminal, its
descriptors), through its run.log and through `orch-tui status`, as an operator would."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from orch_tui.background import RunRefused, spawn_run
from tests.helpers import alive, kill_quietly, process_state, run_cli, write_workspace
from tests.tmux import Terminal, orch_command, read_int, wait_until

PID_LINE = re.compile(r"running in the background, pid (\d+)")


def _workspace(tmp_path: Path, count: int, seconds: float, pidfile: Path):
    return write_workspace(tmp_path / "ws",
                           count,
                           worker_args=["--seconds",
                                        str(seconds), "--pidfile",
                                        str(pidfile)])


def _run_log(ws) -> str:
    path = ws.output_dir / ".orch-tui" / "run.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _status(ws) -> tuple[int, dict]:
    result = run_cli("status", str(ws.output_dir), "--json")
    return result.returncode, json.loads(result.stdout) if result.stdout else {}


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def _job_pids(pidfile: Path) -> list[int]:
    return [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []


def _detach(tmp_path: Path, leftovers, count: int, seconds: float, jobs: int):
    """A workspace of `count` jobs of `seconds` started with --detach --jobs `jobs`: (the
    workspace, its pidfile, the run's pid), all killed at the end if the test leaves them."""
    pidfile = tmp_path / "pids"
    leftovers[1].append(pidfile)
    ws = _workspace(tmp_path, count, seconds, pidfile)
    result = run_cli(str(ws.config), "--detach", "--jobs", str(jobs), timeout=30)
    assert result.returncode == 0, result.stderr
    pid = int(PID_LINE.search(result.stdout).group(1))
    leftovers[0].append(pid)
    return ws, pidfile, pid


@pytest.fixture(name="leftovers")
def fixture_leftovers():
    """Runs and jobs a failing test may leave behind: SIGKILLed at the end."""
    pids: list[int] = []
    pidfiles: list[Path] = []
    try:
        yield pids, pidfiles
    finally:
        kill_quietly(pids)
        for pidfile in pidfiles:
            kill_quietly(_job_pids(pidfile))


def test_detach_returns_at_once_and_the_run_has_no_terminal_and_ends_clean(tmp_path, leftovers):
    pidfile = tmp_path / "pids"
    leftovers[1].append(pidfile)
    ws = _workspace(tmp_path, 3, 2, pidfile)
    result = run_cli(str(ws.config), "--detach", "--jobs", "2", timeout=30)
    assert result.returncode == 0, result.stderr
    found = PID_LINE.search(result.stdout)
    assert found, result.stdout
    pid = int(found.group(1))
    leftovers[0].append(pid)
    folder = str(ws.output_dir)
    for hint in (f"orch-tui attach {folder}", f"orch-tui status {folder}",
                 f"orch-tui wait {folder}", "run.log"):
        assert hint in result.stdout, result.stdout

    if alive(pid):  # three 2 s jobs, 2 at once: it runs about 4 s more
        fields = _stat_fields(pid)
        ppid, session, tty = int(fields[1]), int(fields[3]), int(fields[4])
        assert ppid != os.getpid(), "the run is nobody's child but init's"
        assert session != pid, "not a session leader: it can never get a controlling terminal"
        assert session != os.getsid(0), "a session of its own, not the shell's"
        assert tty == 0, "no controlling terminal"
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/2").endswith("/.orch-tui/run.log")

    wait_until(lambda: not alive(pid), 60, "the detached run to end")
    log = _run_log(ws)
    assert "start #1 clip01.bin" in log, log
    assert log.strip().splitlines()[-1].endswith("(exit 0)"), log
    assert sorted(p.name for p in ws.output_dir.iterdir()
                  if p.is_file()) == ["clip01_out.bin", "clip02_out.bin", "clip03_out.bin"]
    code, doc = _status(ws)
    assert code == 0 and doc["state"] == "finished", doc


def test_a_bad_config_exits_2_in_the_foreground_and_starts_nothing(tmp_path):
    ws = write_workspace(tmp_path / "ws", 2)
    ws.config.write_text('{"binary": {"path": "/bin/true"}, "directories": {}}')
    result = run_cli(str(ws.config), "--detach", timeout=30)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "config.yaml:1:12: binary.flags" in result.stderr, result.stderr
    assert "background" not in result.stdout
    assert not (ws.output_dir / ".orch-tui").exists()


def test_detach_and_dry_run_together_are_a_usage_error(tmp_path):
    ws = write_workspace(tmp_path / "ws", 1)
    result = run_cli(str(ws.config), "--detach", "--dry-run")
    assert result.returncode == 2
    assert "--detach" in result.stderr and "--dry-run" in result.stderr


def test_a_second_detach_on_a_held_folder_is_refused_with_the_run_s_own_message(
        tmp_path, leftovers):
    ws, pidfile, pid = _detach(tmp_path, leftovers, 2, 60, jobs=1)
    wait_until(lambda: _job_pids(pidfile), 30, "the first run's job")

    second = run_cli(str(ws.config), "--detach", timeout=30)
    assert second.returncode == 2, second
    assert f"another orch-tui (pid {pid})" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    assert second.stderr.count("\n") == 1, "one clear line"
    assert alive(pid), "the refusal never touches the running run"
    code, doc = _status(ws)
    assert code == 0 and doc["state"] == "running" and doc["pid"] == pid, doc
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), 30, "the run to stop on SIGTERM")
    assert _run_log(ws).strip().endswith("(exit 143)"), _run_log(ws)


def test_a_detached_run_killed_with_kill_9_is_a_died_run_with_work_left(tmp_path, leftovers):
    ws, pidfile, pid = _detach(tmp_path, leftovers, 3, 60, jobs=1)
    wait_until(lambda: _job_pids(pidfile), 30, "a job to start")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 30, "the run to die")
    code, doc = _status(ws)
    assert code == 1 and doc["state"] == "died", json.dumps(doc, indent=1)


def test_a_run_process_that_dies_before_it_reports_gives_its_last_words(tmp_path):
    ws = write_workspace(tmp_path / "ws", 1)

    async def spawn():
        return await spawn_run(ws.config, ["--no-such-flag"])

    with pytest.raises(RunRefused) as caught:
        asyncio.run(spawn())
    assert "ended before it started" in str(caught.value)
    assert "--no-such-flag" in str(caught.value)
    assert caught.value.exit_code == 1


def test_closing_the_terminal_after_detach_leaves_the_run_going(tmp_path, leftovers):
    """The shell gets its prompt back at once; the terminal closing (SIGHUP to everything in
    its session) never reaches the run."""
    pidfile = tmp_path / "pids"
    leftovers[1].append(pidfile)
    ws = _workspace(tmp_path, 4, 2, pidfile)
    out, rc_file = tmp_path / "detach.out", tmp_path / "detach.rc"
    terminal = Terminal(tmp_path)
    try:
        command = orch_command([str(ws.config), "--detach", "--jobs", "2"],
                               env={"TERM": "xterm-256color"},
                               rc_file=rc_file)
        # The shell's prompt comes back: it then waits on `cat`, still in the terminal.
        terminal.start(f"{command} > {out}; exec cat", cwd=ws.root)
        wait_until(lambda: read_int(rc_file) is not None, 30, "the detach to return")
        assert read_int(rc_file) == 0, out.read_text()
        pid = int(PID_LINE.search(out.read_text()).group(1))
        leftovers[0].append(pid)
        wait_until(lambda: len(_job_pids(pidfile)) >= 1, 30, "a job to start")
        terminal.kill_server()
    finally:
        terminal.close()
    wait_until(lambda: not alive(pid), 60, "the run to end by itself")
    log = _run_log(ws)
    assert log.strip().endswith("(exit 0)"), log
    assert len(_job_pids(pidfile)) == 4, "every job ran, once"
    assert subprocess.run(["pgrep", "-f", str(ws.config)], capture_output=True,
                          check=False).stdout == b"", "nothing left behind"


def test_a_detached_run_attached_at_80x24_paused_detached_and_attached_again_stays_paused(
        tmp_path, leftovers):
    """The whole story of the issue, through the real commands in a real terminal: --detach,
    attach, pause a job (state T at the OS level), d (the shell's prompt back, the run going,
    the job still T), attach again (the row still says paused), then `orch-tui stop`."""
    ws, pidfile, pid = _detach(tmp_path, leftovers, 3, 60, jobs=2)
    wait_until(lambda: len(_job_pids(pidfile)) == 2, 30, "two jobs running")
    first = _job_pids(pidfile)
    rc_file = tmp_path / "attach.rc"
    terminal = Terminal(tmp_path)
    try:
        command = orch_command(["attach", str(ws.output_dir)],
                               env={"TERM": "xterm-256color"},
                               rc_file=rc_file)
        terminal.start(f"{command}; exec cat", cwd=ws.root)
        screen = terminal.wait_for(lambda s: "clip01.bin" in s and "d Detach" in s,
                                   timeout=30,
                                   what="the run screen")
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen
        terminal.send("Space")  # the cursor starts on job 1
        terminal.wait_for(lambda s: "paused" in s, what="job 1 paused")
        wait_until(lambda: sorted(process_state(p) for p in first).count("T") == 1, 10,
                   "one job in state T")
        terminal.send("d")
        wait_until(lambda: read_int(rc_file) is not None, 20, "attach to exit on d")
        assert read_int(rc_file) == 0
        terminal.wait_for(f"detached: the run goes on (pid {pid})", what="the way back")
        assert alive(pid) and sorted(process_state(p) for p in first).count("T") == 1
    finally:
        terminal.close()

    again = Terminal(tmp_path)
    try:
        again.start(orch_command(["attach", str(ws.output_dir)],
                                 env={"TERM": "xterm-256color"},
                                 rc_file=rc_file.with_suffix(".2")),
                    cwd=ws.root)
        again.wait_for(lambda s: "clip01.bin" in s and "paused" in s,
                       timeout=30,
                       what="job 1 still paused on attaching again")
        stop = run_cli("stop", str(ws.output_dir), timeout=30)
        assert stop.returncode == 0, stop.stderr
        again.wait_for("exit code 143", timeout=30, what="the finished screen")
        again.send("q")
        wait_until(lambda: read_int(rc_file.with_suffix(".2")) is not None, 30,
                   "the attached screen to exit with the run's code")
        assert read_int(rc_file.with_suffix(".2")) == 143
    finally:
        again.close()
    wait_until(lambda: not alive(pid), 30, "the run to stop")
    assert not any(alive(p) for p in first), "a paused job is ended too"
