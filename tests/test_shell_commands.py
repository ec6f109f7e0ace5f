"""Commands from the shell and `orch-tui wait`: a real headless run, commanded by the real CLI
from other processes over its control socket, its jobs looked at in /proc."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.control.client import ControlClient
from orch_tui.core.control.location import find_socket
from orch_tui.core.control.server import ControlServer
from orch_tui.core.runstatus import journal_status
from orch_tui.core.statedir import StateDir
from tests.fake_controller import FakeController, job_views
from tests.helpers import CMD, kill_quietly, process_runs, process_state, run_cli, write_workspace
from tests.tmux import wait_until

SECONDS = "120"  # a job's life: far longer than the module's tests


def _start(config: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(  # pylint: disable=consider-using-with
        [*CMD, "--headless", str(config), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL)


def _jobs(output_dir: Path) -> dict:
    """Every job of the live run, by index, as its snapshot has it (None: no live run)."""

    async def read():
        path = find_socket(output_dir)
        if path is None:
            return None
        try:
            async with ControlClient.connect(path) as client:
                return {job.job_id: job for job in client.snapshot.jobs}
        except OSError:
            return None

    return asyncio.run(read())


def _state(output_dir: Path, index: int):
    jobs = _jobs(output_dir)
    return None if jobs is None else jobs[index].state


def _in_state(output_dir: Path, state: ev.JobState) -> list[int]:
    return sorted(i for i, job in (_jobs(output_dir) or {}).items() if job.state is state)


def _sockets(pid: int) -> int:
    """How many sockets process `pid` holds (its event loop's own pair, and its connections)."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:")
        except OSError:
            continue
    return count


def _connected_wait(output_dir: Path) -> subprocess.Popen:
    """`orch-tui wait` on `output_dir`, once it is following the run on its socket."""
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [*CMD, "wait", str(output_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL)

    def connected():
        if proc.poll() is not None:
            return True  # it ended: the test's assertion on its code says why
        return _sockets(proc.pid) > 2  # its event loop's self-pipe is a socket pair

    wait_until(connected, timeout=15, what="wait to connect to the run")
    return proc


class Run:
    """The module's shared busy run: 5 jobs of 2 minutes, 2 at once."""

    def __init__(self, root: Path) -> None:
        self.pidfile = root / "pids"
        self.ws = write_workspace(
            root / "ws", 5, worker_args=["--seconds", SECONDS, "--pidfile",
                                         str(self.pidfile)])
        self.out = self.ws.output_dir
        self.proc = _start(self.ws.config, "--jobs", "2")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(args[0], str(self.out), *args[1:])
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def running(self) -> list[int]:
        return _in_state(self.out, ev.JobState.RUNNING)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.pidfile.exists():
            kill_quietly([int(p) for p in self.pidfile.read_text().split()])


@pytest.fixture(name="run", scope="module")
def fixture_run(tmp_path_factory):
    run = Run(tmp_path_factory.mktemp("shell"))
    try:
        wait_until(lambda: len(run.running()) == 2, timeout=20, what="2 running jobs")
        yield run
    finally:
        run.close()


# --- on the shared run (in this order: the last one stops it)


def test_status_of_a_live_run_has_its_progress_eta_and_job_numbers(run):
    seen = {}

    def measured():
        result = run.cli("status", "--json")
        seen["doc"] = doc = json.loads(result.stdout)
        return doc["eta_seconds"] is not None and all(job["progress"] for job in doc["jobs"])

    wait_until(measured, timeout=20, what="a live ETA and progress")
    doc = seen["doc"]
    assert doc["source"] == "live" and doc["state"] == "running" and doc["exit_code"] == 0
    assert doc["limit"] == 2 and doc["eta_seconds"] > 0 and doc["eta_paused"] is False
    running = run.running()
    assert sorted(job["index"] for job in doc["jobs"]) == running
    assert all(process_runs(job["pid"]) for job in doc["jobs"])
    assert all(0 < job["progress"] < 1 for job in doc["jobs"])
    human = run.cli("status").stdout
    assert "ETA -" not in human and f"#{running[0]} clip0{running[0]}.bin" in human
    assert max(len(line) for line in human.splitlines()) <= 80


def test_pause_stops_the_process_and_resume_continues_it(run):
    index = run.running()[0]
    pid = _jobs(run.out)[index].pid
    paused = run.cli("pause", str(index))
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == f"job {index} paused (clip0{index}.bin)\n"
    wait_until(lambda: process_state(pid) == "T", timeout=15, what="the job stopped (T)")
    human = run.cli("status").stdout
    assert "1 paused" in human and "ETA " in human
    assert any(
        line.startswith("  paused ") and line.endswith(f"#{index} clip0{index}.bin")
        for line in human.splitlines())

    again = run.cli("pause", f"clip0{index}.bin")
    assert again.returncode == 1 and again.stdout == ""
    assert f"job {index} is paused: nothing to pause" in again.stderr
    assert str(run.out) in again.stderr

    resumed = run.cli("resume", str(run.ws.inputs[index - 1]))  # by its full path
    assert resumed.returncode == 0 and resumed.stdout == f"job {index} resumed (clip0{index}.bin)\n"
    wait_until(lambda: process_runs(pid), timeout=15, what="the job continued")
    assert _state(run.out, index) is ev.JobState.RUNNING


def test_a_command_on_jobs_in_the_wrong_state_exits_1_with_the_reason(run):
    running = run.running()[0]
    queued = _in_state(run.out, ev.JobState.QUEUED)[0]
    resume = run.cli("resume", str(running))
    assert resume.returncode == 1 and f"job {running} is running: not paused" in resume.stderr
    requeue = run.cli("requeue", str(running))
    assert requeue.returncode == 1
    assert "only a failed, killed or cancelled job can be requeued" in requeue.stderr
    # One refused among several: the others are done, the exit code says one was not.
    mixed = run.cli("pause", str(queued), str(running))
    assert mixed.returncode == 1
    assert mixed.stdout == f"job {running} paused (clip0{running}.bin)\n"
    assert f"job {queued} is queued: nothing to pause (clip0{queued}.bin)" in mixed.stderr
    assert run.cli("resume", str(running)).returncode == 0
    assert _state(run.out, queued) is ev.JobState.QUEUED


def test_an_unknown_job_is_exit_2_and_nothing_is_done(run):
    running = run.running()[0]
    for word in ("nope.bin", "99"):
        result = run.cli("pause", str(running), word)
        assert result.returncode == 2 and result.stdout == ""
        assert str(run.out) in result.stderr and len(result.stderr.splitlines()) == 1
    assert "no input matches 'nope.bin'" in run.cli("kill", "nope.bin").stderr
    assert "no job #99 (jobs are numbered 1 to 5)" in run.cli("kill", "99").stderr
    assert _state(run.out, running) is ev.JobState.RUNNING, "nothing was paused"


def test_kill_then_requeue_and_a_higher_limit_run_the_job_again(run):
    index = run.running()[0]
    pid = _jobs(run.out)[index].pid
    killed = run.cli("kill", str(index))
    assert killed.returncode == 0 and killed.stdout == f"job {index} killed (clip0{index}.bin)\n"
    wait_until(lambda: _state(run.out, index) is ev.JobState.KILLED, timeout=15, what="killed")
    wait_until(lambda: process_state(pid) is None, timeout=15, what="its process gone")
    assert "nothing to kill" in run.cli("kill", str(index)).stderr

    assert run.cli("requeue", str(index)).stdout == f"job {index} requeued (clip0{index}.bin)\n"
    limit = run.cli("limit", "5")
    assert limit.returncode == 0 and limit.stdout == "limit set to 5 (was 2)\n"
    wait_until(lambda:
               (job := _jobs(run.out)[index]).state is ev.JobState.RUNNING and job.attempt == 2,
               timeout=20,
               what="the requeued job running again")
    wait_until(lambda: len(run.running()) == 5, timeout=20, what="every job running")
    doc = json.loads(run.cli("status", "--json").stdout)
    assert doc["limit"] == 5 and doc["counts"]["running"] == 5 and len(doc["jobs"]) == 5
    assert "limit:    5 (" in run.cli("status").stdout
    assert run.cli("limit", "x").returncode == 2
    beyond = run.cli("limit", "99999999999999999999999")
    assert beyond.returncode == 2 and "from 1 to 4194304" in beyond.stderr
    assert json.loads(run.cli("status", "--json").stdout)["limit"] == 5


def test_stop_ends_the_run_with_143_and_wait_says_so(run):
    waiting = _connected_wait(run.out)
    stop = run.cli("stop")
    assert stop.returncode == 0 and stop.stdout.startswith("stopping")
    assert run.proc.wait(timeout=30) == 143
    assert waiting.wait(timeout=30) == 143, waiting.stderr.read()
    # Over: a command finds no live run, and says how it ended; wait answers at once.
    again = run.cli("pause", "1")
    assert again.returncode == 3
    assert f"no active run in {run.out}: it finished at " in again.stderr
    assert "(exit 143)" in again.stderr
    assert run.cli("wait").returncode == 143


# --- runs of their own


def test_status_gives_no_progress_to_a_job_nothing_measures(tmp_path):
    """Its jobs read no input and print no ffmpeg status: no probe can tell how far they are.
    Status says so (null, no percentage), as the run screen's `-` does, never 0%."""
    ws = write_workspace(tmp_path, 3, binary="/bin/sh", flags=["-c", "sleep 120", "{input_file}"])
    proc = _start(ws.config, "--jobs", "2")
    seen = {}

    def sampled():
        seen["doc"] = doc = json.loads(
            run_cli("status", "--json", str(ws.output_dir)).stdout or "{}")
        nodes = doc.get("nodes") or [{}]  # the first sweep may come after the first launches
        return len(doc.get("jobs", ())) == 2 and nodes[0].get("cpu_percent") is not None

    try:
        wait_until(sampled, timeout=20, what="2 running jobs, sampled")
        assert [job["progress"] for job in seen["doc"]["jobs"]] == [None, None]
        human = run_cli("status", str(ws.output_dir)).stdout
        active = human.split("active jobs:\n", 1)[1].splitlines()[:2]
        assert all("#" in line and "%" not in line for line in active), human
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_wait_on_a_finished_run_is_its_exit_code(workspace, tmp_path):
    ws = workspace(2)
    assert run_cli(str(ws.config), "--jobs", "2").returncode == 0
    assert run_cli("wait", str(ws.output_dir)).returncode == 0
    assert run_cli("wait", str(ws.config), "--timeout", "5").returncode == 0, "its config too"
    failed = write_workspace(tmp_path / "failed", 2, worker_args=["--exit", "4"])
    assert run_cli(str(failed.config), "--jobs", "2").returncode == 1
    assert run_cli("wait", str(failed.output_dir)).returncode == 1


def test_wait_on_a_run_killed_with_kill_9_is_1(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(2, worker_args=["--seconds", SECONDS, "--pidfile", str(pidfile)])
    proc = _start(ws.config, "--jobs", "1")
    try:
        wait_until(lambda: _in_state(ws.output_dir, ev.JobState.RUNNING) == [1],
                   timeout=20,
                   what="a running job")
        wait_until(lambda: len(journal_status(ws.output_dir).jobs) == 1,
                   timeout=15,
                   what="the journal to record the running job")
        timed_out = run_cli("wait", str(ws.output_dir), "--timeout", "0.2")
        assert timed_out.returncode == 124 and "still going" in timed_out.stderr
        waiting = _connected_wait(ws.output_dir)
        proc.kill()
        proc.wait(timeout=15)
        assert waiting.wait(timeout=30) == 1
        assert "died" in waiting.stderr.read()
        assert run_cli("wait", str(ws.output_dir)).returncode == 1
        assert run_cli("status", str(ws.output_dir)).returncode == 1
        dead = run_cli("resume", str(ws.output_dir), "1")
        assert dead.returncode == 3 and "it died (pid" in dead.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_quietly([int(p) for p in pidfile.read_text().split()] if pidfile.exists() else [])


def test_no_run_there_is_3(workspace, tmp_path):
    ws = workspace(1)
    for args in (["wait"], ["pause", "1"], ["stop"], ["limit", "2"]):
        result = run_cli(args[0], str(ws.output_dir), *args[1:])
        assert result.returncode == 3 and f"no run in {ws.output_dir} (no journal)" in result.stderr
    assert run_cli("wait", str(tmp_path / "nothing")).returncode == 3
    assert not (ws.output_dir / ".orch-tui").exists(), "asking creates nothing"


@pytest.mark.parametrize("name, args, code", [("status", [], 0), ("wait", [], 0),
                                              ("pause", ["1"], 3)])
def test_a_config_named_as_a_subcommand_is_given_with_config(workspace, name, args, code):
    ws = workspace(1)
    named = ws.root / name
    named.write_text(ws.config.read_text())
    as_command = run_cli(name, cwd=ws.root)
    assert as_command.returncode == 2 and "OUTPUT_DIR" in as_command.stderr
    as_config = run_cli("--config", name, cwd=ws.root)
    assert as_config.returncode == 0 and "done: 1 succeeded" in as_config.stdout
    # The config stands for its output folder: a finished run (no live one to pause).
    result = run_cli(name, name, *args, cwd=ws.root)
    assert result.returncode == code and "Traceback" not in result.stderr
    if name == "pause":
        assert "no active run" in result.stderr


async def test_a_word_naming_several_jobs_is_exit_2_listing_them(tmp_path):
    # A real plan cannot hold two inputs of one name (their outputs would collide), so a
    # stand-in run serves the socket; the command line and the socket are real.
    views = [
        dataclasses.replace(job, name="clip.mov", input_path=Path(f"/m/{folder}/clip.mov"))
        for folder, job in zip("ab", job_views([ev.JobState.RUNNING] * 2, ".mov"))
    ]
    host = FakeController(views)
    state = StateDir.open(tmp_path / "out")
    server = ControlServer(host, state, log=lambda _line: None)
    await server.start()
    try:
        proc = await asyncio.create_subprocess_exec(*CMD,
                                                    "pause",
                                                    str(tmp_path / "out"),
                                                    "clip.mov",
                                                    stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        server.close()
        await server.wait_closed()
        state.close()
    assert proc.returncode == 2 and out == b""
    text = err.decode()
    assert "'clip.mov' matches 2 inputs" in text
    assert "#1 /m/a/clip.mov" in text and "#2 /m/b/clip.mov" in text
    assert not [call for call in host.calls if call[0] == "pause"], "nothing was sent"


async def test_a_run_speaking_another_protocol_is_exit_2(tmp_path):
    state = StateDir.open(tmp_path / "out")

    async def newer(reader, writer):  # answers the client's hello as a newer run would
        await reader.readline()
        hello = {**wire.hello(os.getpid(), "9.9"), "protocol": wire.PROTOCOL_VERSION + 1}
        writer.write(wire.encode(hello))
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(newer, path=str(state.path / "control.sock"))
    try:
        for args in (["pause", "1"], ["wait"], ["stop"]):
            proc = await asyncio.create_subprocess_exec(*CMD,
                                                        args[0],
                                                        str(tmp_path / "out"),
                                                        *args[1:],
                                                        stdin=subprocess.DEVNULL,
                                                        stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE)
            _out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 2, (args, err)
            assert f"speaks protocol {wire.PROTOCOL_VERSION + 1}" in err.decode()
            assert str(tmp_path / "out") in err.decode() and b"Traceback" not in err
    finally:
        server.close()
        await server.wait_closed()
        state.close()
