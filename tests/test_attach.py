"""The TUI as a client of a run in another process: real run processes, real sockets, the app
under Textual's pilot or in a tmux terminal."""

# pylint: disable=missing-function-docstring,redefined-outer-name  # test names say what; fixtures
from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
import subprocess
import threading
import time

import pytest

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.control.location import find_socket
from orch_tui.core.control.remote import RemoteRun
from orch_tui.core.controller import Launch, Spawned
from orch_tui.core.errors import OrchError
from orch_tui.core.events import JobState
from orch_tui.core.plan import Plan
from orch_tui.tui.app import EXIT_LOST, OrchApp
from orch_tui.tui.screens.calibration import CalibrationScreen
from orch_tui.tui.screens.finished import FinishedScreen
from orch_tui.tui.screens.modals import QuitModal
from orch_tui.tui.screens.run import RunScreen
from tests.helpers import (CMD, WORKER, eventually, kill_quietly, process_runs, process_state,
                           unprivileged, run_cli, screen_text)
from tests.test_tui_app import select, until
from tests.tmux import Terminal, orch_command, read_int, wait_until


class Runs:
    """A test spawner (the lead's real one replaces it in cli.py): `python -m orch_tui
    --headless CONFIG` in a session of its own, ready once its control socket is there."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    async def spawn(self, plan: Plan, *, jobs: int | None = 2) -> Spawned:
        """`jobs` None: the run calibrates."""
        output_dir = plan.config.directories.output_dir
        log = plan.config.path.parent / "run-process.log"
        limit = ["--jobs", str(jobs)] if jobs is not None else []
        with open(log, "ab") as out:
            proc = subprocess.Popen(  # pylint: disable=consider-using-with  # reaped in close
                [*CMD, "--headless", *limit, str(plan.config.path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True)
        self.procs.append(proc)
        await eventually(lambda: find_socket(output_dir) is not None or proc.poll() is not None,
                         "the run's control socket")
        socket = find_socket(output_dir)
        if socket is None:
            raise OrchError(f"the run exited {proc.returncode}: {log.read_text()}")
        return Spawned(proc.pid, socket, Launch())

    async def __call__(self, plan: Plan) -> Spawned:
        return await self.spawn(plan)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the run ends its jobs
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def runs():
    spawner = Runs()
    yield spawner
    spawner.close()


def running(app, job_id: int) -> bool:
    return (app.model is not None and app.model.rows[job_id].state is JobState.RUNNING
            and app.model.rows[job_id].pid is not None)


async def test_pause_detach_attach_again_then_stop_the_run_from_the_quit_dialog(workspace, runs):
    ws = workspace(2, worker_args=["--seconds", "60"])
    spawned = await runs.spawn(ws.plan(), jobs=2)
    proc = runs.procs[0]
    app = OrchApp(await RemoteRun.connect(spawned.socket))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: running(app, 1) and running(app, 2))
        assert isinstance(app.screen, RunScreen)
        assert "Detach" in screen_text(app), "d is in the footer of a run that goes on"
        select(app, 1)
        pid = app.model.rows[1].pid
        await pilot.press("r")  # a running job cannot be requeued: the run says so, in words
        await until(
            pilot, lambda: "job 1 is running: only a failed, killed or cancelled job "
            "can be requeued" in screen_text(app))
        await pilot.press("space")
        await until(pilot, lambda: process_state(pid) == "T")
        await pilot.press("d")
    assert app.detached and app.return_code == 0
    await app.controller.close()
    assert proc.poll() is None and process_state(pid) == "T", "the run and its pause go on"

    app = OrchApp(await RemoteRun.connect(spawned.socket))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.model is not None and isinstance(app.screen, RunScreen))
        assert app.model.rows[1].state is JobState.PAUSED and running(app, 2)
        await until(pilot, lambda: "paused" in screen_text(app))
        await pilot.press("q")
        assert isinstance(app.screen, QuitModal)
        assert app.screen.focused is not None and app.screen.focused.id == "detach"
        assert "Detach, the run goes on (d)" in screen_text(app)
        await pilot.press("k")  # stop the run: every job ended, the run's exit code 143
        await until(pilot, lambda: not app.is_running, timeout=20)
    assert app.return_code == 143
    assert proc.wait(15) == 143
    await app.controller.close()


async def test_two_clients_see_the_same_events_and_one_attached_late_misses_none(workspace, runs):
    ws = workspace(3, worker_args=["--seconds", "1.5"])
    spawned = await runs.spawn(ws.plan(), jobs=1)
    first, second = (await RemoteRun.connect(spawned.socket), await
                     RemoteRun.connect(spawned.socket))
    since = time.monotonic()  # the run's clock and ours: CLOCK_MONOTONIC is system-wide
    seen: tuple[list[ev.Event], list[ev.Event]] = ([], [])
    first.attach(seen[0].append)
    await eventually(lambda: any(isinstance(e, ev.JobStateChanged) for e in seen[0]),
                     "a state change")
    second.attach(seen[1].append)  # the events it received meanwhile come first, in order
    await eventually(lambda: all(any(isinstance(e, ev.RunFinished) for e in s) for s in seen),
                     "both to see the run finish",
                     timeout=30)

    def changes(events: list[ev.Event]) -> list[tuple[int, JobState]]:
        return [(e.job_id, e.state) for e in events
                if isinstance(e, ev.JobStateChanged) and e.time > since]

    assert changes(seen[0]) == changes(seen[1])
    assert (3, JobState.SUCCEEDED) in changes(seen[0])
    assert first.finished is not None and first.finished.exit_code == 0
    for remote in (first, second):
        await remote.close()
    assert runs.procs[0].wait(15) == 0


async def test_a_run_killed_while_attached_says_the_connection_is_lost_and_exits(workspace, runs):
    ws = workspace(1, worker_args=["--seconds", "60"])
    spawned = await runs.spawn(ws.plan(), jobs=1)
    app = OrchApp(await RemoteRun.connect(spawned.socket))
    pids: list[int] = []
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: running(app, 1))
            pids.append(app.model.rows[1].pid)
            os.kill(spawned.pid, signal.SIGKILL)
            await until(pilot, lambda: not app.is_running)
        assert app.return_code == EXIT_LOST
        assert app.lost is not None and app.lost.startswith("connection to the run lost")
    finally:
        kill_quietly(pids)
        await app.controller.close()


async def test_wait_then_quit_lets_the_running_job_finish_launches_no_more_and_exits_with_it(
        workspace, runs):
    ws = workspace(3, worker_args=["--seconds", "2"])
    spawned = await runs.spawn(ws.plan(), jobs=1)
    app = OrchApp(await RemoteRun.connect(spawned.socket))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: running(app, 1))
        await pilot.press("q", "w")
        await until(pilot, lambda: not app.is_running, timeout=20)
    code = runs.procs[0].wait(15)
    assert app.return_code == code
    finished = app.controller.finished
    assert finished is not None and finished.counts["succeeded"] == 1
    assert finished.counts["queued"] == 2, "no launch after the choice"
    await app.controller.close()


async def test_a_connection_the_run_dropped_is_made_again_and_the_screen_starts_over(
        workspace, runs):
    ws = workspace(2, worker_args=["--seconds", "60"])
    spawned = await runs.spawn(ws.plan(), jobs=1)
    remote = await RemoteRun.connect(spawned.socket)
    app = OrchApp(remote)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: running(app, 1))
        before = app.model
        # As the run drops a client that fell behind: the connection ends, the run is there.
        remote._client._writer.transport.abort()  # pylint: disable=protected-access
        await until(pilot, lambda: app.model is not before)
        assert app.is_running and app.lost is None and running(app, 1)
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        select(app, 1)
        pid = app.model.rows[1].pid
        await pilot.press("space")  # commands go over the new connection
        await until(pilot, lambda: process_state(pid) == "T")
        await pilot.press("d")
    assert app.return_code == 0 and runs.procs[0].poll() is None
    await remote.close()


async def test_fast_limit_presses_all_count(workspace, runs):
    """Each + adds one to the limit the screen holds; the run's echo of an older press came
    back between two presses and undid the newer ones (20 presses gave 12 to 15)."""
    ws = workspace(2, worker_args=["--seconds", "60"])
    spawned = await runs.spawn(ws.plan(), jobs=2)
    remote = await RemoteRun.connect(spawned.socket)
    seen: list[int] = []
    remote.attach(lambda event: seen.append(event.limit)
                  if isinstance(event, ev.LimitChanged) else None)
    try:
        await eventually(lambda: remote.limit == 2, "the run's limit")
        for _ in range(20):
            remote.set_limit(remote.limit + 1)
            for _ in range(3):  # echoes of the presses before come in between
                await asyncio.sleep(0.0005)
        assert remote.limit == 22
        await eventually(lambda: seen and seen[-1] == 22, "the run at 22")
        assert remote.limit == 22
    finally:
        await remote.close()


async def test_attaching_while_the_run_calibrates_opens_the_calibration_screen(workspace, runs):
    ws = workspace(2, worker_args=["--seconds", "30"], resources={"stabilization_seconds": 4})
    spawned = await runs.spawn(ws.plan(), jobs=None)
    app = OrchApp(await RemoteRun.connect(spawned.socket))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, CalibrationScreen))
        await until(pilot, lambda: app.model.calibrated is not None, timeout=30)
        await until(pilot, lambda: f"limit {app.controller.limit}" in screen_text(app))
        # The footer is composed again as the result adds enter and +/- to it.
        await until(pilot, lambda: "Detach" in screen_text(app))
        await pilot.press("d")
    assert app.detached and app.return_code == 0
    await app.controller.close()


def test_attach_to_a_run_of_another_protocol_version_exits_2_saying_both(tmp_path):
    state = tmp_path / "out" / ".orch-tui"
    state.mkdir(parents=True, mode=0o700)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(state / "control.sock"))
        server.listen()

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)  # the client's hello
                hello = {**wire.hello(1, "9.9"), "protocol": wire.PROTOCOL_VERSION + 1}
                conn.sendall(wire.encode(hello))

        thread = threading.Thread(target=answer)
        thread.start()
        result = run_cli("attach", str(tmp_path / "out"))
        thread.join(10)
    assert result.returncode == 2
    assert (f"speaks protocol {wire.PROTOCOL_VERSION + 1}, this orch-tui speaks "
            f"{wire.PROTOCOL_VERSION}") in result.stderr


async def test_attach_with_no_live_run_exits_3(workspace, runs):
    ws = workspace(1, worker_args=["--seconds", "0.2"])
    result = run_cli("attach", str(ws.output_dir))
    assert result.returncode == 3 and "no live run" in result.stderr
    await runs.spawn(ws.plan(), jobs=1)
    assert runs.procs[0].wait(15) == 0  # its socket is gone with it
    result = run_cli("attach", str(ws.config))
    assert result.returncode == 3 and "no live run" in result.stderr


def test_attach_to_a_state_folder_it_cannot_read_is_one_line_not_a_traceback(workspace):
    ws = workspace(1)
    state = ws.output_dir / ".orch-tui"
    state.mkdir(parents=True)
    (state / "control.path").write_text("/tmp/nowhere.sock", encoding="utf-8")
    state.chmod(0o000)
    try:
        result = run_cli("attach", str(ws.output_dir), preexec_fn=unprivileged())
    finally:
        state.chmod(0o700)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert f"cannot read {state}" in result.stderr


async def test_the_preflight_screen_offers_the_live_run_and_enter_attaches(workspace, runs):
    ws = workspace(1, worker_args=["--seconds", "60"])
    spawned = await runs.spawn(ws.plan(), jobs=1)
    unstarted = RemoteRun(spawn=runs)
    app = OrchApp(unstarted, ws.config, connector=RemoteRun.connect)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: f"a run is active (pid {spawned.pid}," in screen_text(app))
        assert "Enter attaches" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and running(app, 1))
        assert app.controller is not unstarted and app.controller.detachable
        await pilot.press("d")
    assert app.detached and app.return_code == 0
    await app.controller.close()
    assert runs.procs == [runs.procs[0]], "attached: nothing new was started"


async def test_a_spawned_run_runs_to_the_finished_screen_and_q_exits_with_its_code(workspace, runs):
    ws = workspace(2, worker_args=["--seconds", "0.5", "--exit", "1"])
    remote = RemoteRun(spawn=runs)
    app = OrchApp(remote, ws.config, yes=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, FinishedScreen), timeout=30)
        await pilot.press("q")
    assert app.return_code == 1 and remote.pid == runs.procs[0].pid
    await remote.close()


def test_attach_in_a_terminal_pauses_with_space_and_kill_9_or_sigterm_of_it_leave_the_run(
        workspace, tmp_path):
    ws = workspace(2, worker_args=["--seconds", "12"])
    run = subprocess.Popen(  # pylint: disable=consider-using-with  # waited for below
        [*CMD, "--headless", "--jobs", "2", str(ws.config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True)
    terminals = [Terminal(tmp_path), Terminal(tmp_path)]
    pid_file, rc_file = tmp_path / "attach.pid", tmp_path / "attach.rc"
    try:
        wait_until(lambda: find_socket(ws.output_dir), what="the run's socket")
        terminal = terminals[0]
        terminal.start(orch_command(["attach", str(ws.output_dir)],
                                    env={"TERM": "xterm-256color"},
                                    pid_file=pid_file),
                       cwd=ws.root)
        screen = terminal.wait_for("running", timeout=20)
        assert "clip01.bin" in screen and "d Detach" in screen and "q Quit" in screen
        terminal.send("Space")  # the first row: job 1
        terminal.wait_for("paused")
        wait_until(lambda: any(process_state(pid) == "T" for pid in _job_pids(ws)),
                   what="a job stopped at the OS level")
        terminal.send("Space")
        terminal.wait_for(lambda text: "paused" not in text, what="the job running again")
        attach_pid = read_int(pid_file)
        assert attach_pid is not None
        os.kill(attach_pid, signal.SIGKILL)
        jobs = _job_pids(ws)
        assert len(jobs) >= 2 and all(process_runs(pid) for pid in jobs)

        # SIGTERM to an attached client detaches it: exit 0, the way back printed.
        terminal = terminals[1]
        program = shlex.join([*CMD, "attach", str(ws.output_dir)])
        terminal.start(shlex.join([
            "env", "-u", "COLUMNS", "-u", "LINES", "TERM=xterm-256color", "sh", "-c",
            f"{program}; echo $? > {shlex.quote(str(rc_file))}; sleep 60"
        ]),
                       cwd=ws.root)
        terminal.wait_for("running", timeout=20)
        client = wait_until(lambda: _pids_with(b"attach",
                                               str(ws.output_dir).encode()),
                            what="the attach process")
        os.kill(client[0], signal.SIGTERM)
        assert wait_until(lambda: read_int(rc_file) is not None, what="attach to exit")
        assert read_int(rc_file) == 0
        terminal.wait_for(f"detached: the run goes on (pid {run.pid}); orch-tui attach")
        assert run.wait(30) == 0, "the run finishes as if nothing happened"
    finally:
        for terminal in terminals:
            terminal.close()
        if run.poll() is None:
            run.kill()
            run.wait()


def _pids_with(*words: bytes) -> list[int]:
    """The pids whose command line holds every one of `words` (the first as a whole
    argument: a shell whose script names them is not one of them)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if words[0] in argv and all(any(word in arg for arg in argv) for word in words):
                pids.append(int(entry))
    return pids


def _job_pids(ws) -> list[int]:
    """The pids of the workers running `ws`'s jobs (their argv names the worker and ws)."""
    return _pids_with(str(WORKER).encode(), str(ws.root).encode())
