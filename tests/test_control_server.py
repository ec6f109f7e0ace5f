"""The control socket's server: real sockets, a real run, clients in this and other processes."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.control.client import ControlClient
from orch_tui.core.control import location
from orch_tui.core.control.location import find_socket
from orch_tui.core.control.server import may_connect, peer_uid
from orch_tui.core.host import RunHost
from orch_tui.core.plan import load_plan
from orch_tui.core.session import RunOptions
from orch_tui.core.snapshot import RunSnapshot
from tests.helpers import (eventually, kill_quietly, process_runs, process_state, signal_in_mask,
                           write_workspace)


async def _start(ws) -> RunHost:
    host = RunHost(RunOptions(max_procs=1))
    host.start(load_plan(ws.config))
    assert host.control is not None and host.control.path is not None
    return host


def _output_dir(host: RunHost) -> Path:
    assert host.state is not None
    return host.state.output_dir


def _running_pid(host: RunHost) -> int | None:
    assert host.state is not None
    jobs = [job for job in host.attach(lambda _e: None).jobs if job.pid is not None]
    return jobs[0].pid if jobs and jobs[0].state is ev.JobState.RUNNING else None


async def _running_job(host: RunHost) -> tuple[int, int]:
    """The first job to run: its number and pid, once it runs."""
    await eventually(lambda: _running_pid(host) is not None, "a running job")
    pid = _running_pid(host)
    assert pid is not None
    return next(j.job_id for j in host.attach(lambda _e: None).jobs if j.pid == pid), pid


async def test_the_socket_is_private_in_the_state_folder_and_goes_with_the_run(workspace):
    host = await _start(workspace(1, worker_args=["--seconds", "0.5"]))
    path = host.control.path
    assert path == _output_dir(host) / ".orch-tui" / "control.sock"
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert find_socket(_output_dir(host)) == path
    assert await host.wait() == 0
    assert not path.exists() and find_socket(_output_dir(host)) is None
    host.close()


def test_the_socket_has_its_name_only_once_it_listens(tmp_path, monkeypatch):
    """Bound but not yet listening, a socket refuses connections: a client that found its name
    then (attach or status as a run starts; a test waiting for the file, under load) was told
    that no run answers. It is bound under another name and renamed once it listens."""
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    named = folder / "control.sock"
    seen: list[bool] = []

    class Watched(socket.socket):
        """A socket that notes, as it starts to listen, whether a client could find it."""

        def listen(self, backlog: int = 16) -> None:
            seen.append(named.exists())
            super().listen(backlog)

    monkeypatch.setattr(socket, "socket", Watched)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    sock = location.bind_private(fd, "control.sock", named)
    try:
        assert seen == [False]
        with Watched(socket.AF_UNIX) as client:
            client.connect(str(named))  # it listens under its name
        assert os.listdir(folder) == ["control.sock"], "the name it was bound under is gone"
    finally:
        sock.close()
        os.close(fd)


async def test_a_dead_run_s_socket_is_replaced_and_a_planted_symlink_never_followed(
        workspace, tmp_path):
    ws = workspace(1, worker_args=["--seconds", "0.5"])
    state = ws.output_dir / ".orch-tui"
    state.mkdir(parents=True, mode=0o700)
    with socket.socket(socket.AF_UNIX) as dead:  # a run killed -9 leaves its socket behind
        dead.bind(str(state / "control.sock"))
    host = await _start(ws)
    async with ControlClient.connect(host.control.path) as client:
        assert isinstance(client.snapshot, RunSnapshot)
    assert await host.wait() == 0
    host.close()

    target = tmp_path / "elsewhere"
    (state / "control.sock").symlink_to(target)
    host = RunHost(RunOptions(max_procs=1))
    notices: list[ev.Event] = []
    host.bus.add_listener(notices.append)
    host.start(load_plan(ws.config))
    assert host.control is None and not target.exists()
    assert any(isinstance(n, ev.Notice) and "no control socket" in n.message for n in notices)
    assert await host.wait() == 0, "the run goes on without a socket"
    assert (state / "control.sock").is_symlink()
    host.close()


async def test_a_path_too_long_for_a_socket_is_bound_elsewhere_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    ws = write_workspace(tmp_path / ("deep" * 30), 1, worker_args=["--seconds", "2"])
    host = await _start(ws)
    path = host.control.path
    assert path.parent == tmp_path / "run" / "orch-tui"
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    record = _output_dir(host) / ".orch-tui" / "control.path"
    assert record.read_text().strip() == str(path)
    assert find_socket(_output_dir(host)) == path
    async with ControlClient.connect(path) as client:
        assert isinstance(client.snapshot, RunSnapshot)
    assert await host.wait() == 0
    assert not path.exists() and not record.exists()
    host.close()


async def test_two_clients_get_hello_snapshot_and_the_same_events(workspace):
    host = await _start(workspace(2, worker_args=["--seconds", "0.3"]))
    async with ControlClient.connect(host.control.path) as one, \
            ControlClient.connect(host.control.path) as two:
        assert one.server_hello["pid"] == os.getpid()
        assert one.snapshot == two.snapshot and one.snapshot is not None
        assert len(one.snapshot.jobs) == 2

        async def collect(client: ControlClient) -> list[dict]:
            return [message async for message in client.events()]

        heard = await asyncio.wait_for(asyncio.gather(collect(one), collect(two)), 30)
    assert await host.wait() == 0
    kinds = [[m["event"]["type"] for m in got if m["kind"] == "event"] for got in heard]
    assert kinds[0][-1] == "RunFinished" and "JobStateChanged" in kinds[0]
    states = [[(m["event"]["job_id"], m["event"]["state"]) for m in got
               if m["kind"] == "event" and m["event"]["type"] == "JobStateChanged"]
              for got in heard]
    assert states[0] == states[1]
    assert states[0][-2:] == [(2, "running"), (2, "succeeded")]
    host.close()


async def test_a_command_pauses_a_real_job_and_a_wrong_state_is_refused(workspace):
    host = await _start(workspace(2, worker_args=["--seconds", "30"]))
    try:
        async with ControlClient.connect(host.control.path) as client:
            job, pid = await _running_job(host)
            queued = next(j.job_id for j in host.attach(lambda _e: None).jobs if j.pid is None)
            answer = await client.send("pause", job=job)
            assert answer["ok"] and answer["message"] == f"job {job} paused"
            await eventually(lambda: process_state(pid) == "T", "the job stopped (T)")
            answer = await client.send("pause", job=queued)
            assert not answer["ok"]
            assert answer["message"] == f"job {queued} is queued: nothing to pause"
            assert not (await client.send("resume", job=999))["ok"]
            answer = await client.send("set_limit", value=1)
            assert answer["ok"] and answer["message"] == "limit set to 1 (was 1)"
            answer = await client.send("set_limit", value=2**63)  # past SQLite's integers
            assert not answer["ok"] and "from 1 to 4194304" in answer["message"]
            answer = await client.send("resume", job=job)
            assert answer["ok"] and answer["message"] == f"job {job} resumed"
            await eventually(lambda: process_runs(pid), "the job running again")
            answer = await client.send("stop")
            assert answer["ok"]
        assert await asyncio.wait_for(host.wait(), 30) == 143  # `stop` is SIGTERM's shutdown
    finally:
        host.shutdown()
        await host.wait()
        host.close()


async def test_a_resume_right_after_a_pause_is_judged_by_the_pause_not_by_held_events(workspace):
    """While the journal commits an end, the run holds its events from every client: the
    client's view of a job then lags its own last command. A pause was accepted, the resume
    right after it was refused ('job 6 is running: not paused') and the job stayed stopped."""
    host = await _start(workspace(2, worker_args=["--seconds", "30"]))
    try:
        async with ControlClient.connect(host.control.path) as client:
            job, pid = await _running_job(host)
            host.bus.hold()  # as the journal does while it commits a job's end
            try:
                assert (await client.send("pause", job=job))["ok"]
                await eventually(lambda: process_state(pid) == "T", "the job stopped (T)")
                answer = await client.send("resume", job=job)
                assert answer["ok"] and answer["message"] == f"job {job} resumed", answer
                await eventually(lambda: process_runs(pid), "the job running again")
            finally:
                host.bus.release()
            answer = await client.send("stop")
        assert await asyncio.wait_for(host.wait(), 30) == 143
    finally:
        host.shutdown()
        await host.wait()
        host.close()


async def test_during_a_stop_a_limit_is_refused_and_a_second_stop_kills_at_once(workspace):
    """A limit changes nothing once nothing launches ('limit set to 5' said otherwise); a
    second stop, like a second ctrl+c, ends the wait for a job deaf to SIGTERM."""
    host = await _start(
        workspace(2, worker_args=["--seconds", "60", "--ignore-term"], jobs={"kill_grace": 60}))
    try:
        async with ControlClient.connect(host.control.path) as client:
            _, pid = await _running_job(host)
            await eventually(lambda: signal_in_mask(pid, "SigIgn", signal.SIGTERM),
                             "the job ignoring SIGTERM")
            assert (await client.send("stop"))["ok"]
            answer = await client.send("set_limit", value=5)
            assert not answer["ok"] and "stopping" in answer["message"], answer
            assert process_runs(pid), "deaf to SIGTERM: it waits out its 60 s grace"
            answer = await client.send("stop")
            assert answer["ok"] and "SIGKILL" in answer["message"], answer
        assert await asyncio.wait_for(host.wait(), 15) == 143
        assert not process_runs(pid)
    finally:
        host.shutdown()
        await host.wait()
        host.close()


async def _raw(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(path, limit=wire.MAX_LINE)
    writer.write(wire.encode(wire.hello(os.getpid(), "test")))
    await writer.drain()
    return reader, writer


async def test_garbage_and_oversize_lines_drop_that_client_only(workspace):
    host = await _start(workspace(2, worker_args=["--seconds", "1"]))
    async with ControlClient.connect(host.control.path) as good:
        async with ControlClient.connect(host.control.path):
            pass  # a client that leaves as `status` does: no notice on every screen
        await eventually(lambda: host.control.clients == 1, "the client that left gone")
        for bad in (b"{not json\n", b"x" * (wire.MAX_LINE + 10) + b"\n", b'{"kind":"command"}\n'):
            reader, writer = await _raw(host.control.path)
            assert wire.decode(await reader.readline())["kind"] == "hello"
            writer.write(bad)
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), 10)  # the server hangs up
            assert b"RunFinished" not in rest
            writer.close()
        await eventually(lambda: host.control.clients == 1, "the bad clients dropped")
        assert (await good.send("pause", job=999))["message"] == "no job 999"
        messages = [m async for m in good.events()]
    assert await host.wait() == 0
    notices = [
        m["event"]["message"] for m in messages
        if m["kind"] == "event" and m["event"]["type"] == "Notice"
    ]
    assert sum("dropped: bad message" in n for n in notices) == 2, notices
    assert not any("disconnected" in n for n in notices), notices
    assert messages[-1]["event"]["type"] == "RunFinished"
    host.close()


async def test_a_wrong_protocol_version_is_told_and_closed(workspace):
    host = await _start(workspace(1, worker_args=["--seconds", "1"]))
    reader, writer = await asyncio.open_unix_connection(host.control.path)
    writer.write(wire.encode({**wire.hello(1, "x"), "protocol": wire.PROTOCOL_VERSION + 1}))
    await writer.drain()
    answer = wire.decode(await asyncio.wait_for(reader.readline(), 10))
    assert answer["kind"] == "error"
    assert await reader.read() == b""
    writer.close()
    assert await host.wait() == 0
    host.close()


CLIENT = """
import asyncio, sys
from orch_tui.core.control.client import ControlClient
async def main():
    async with ControlClient.connect(sys.argv[1]) as client:
        print("attached", flush=True)
        async for _message in client.events():
            pass
asyncio.run(main())
"""


async def test_a_client_killed_mid_run_leaves_the_run_alone(workspace):
    host = await _start(workspace(2, worker_args=["--seconds", "1"]))
    child = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(host.control.path)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, child.stdout.readline)
        assert line == b"attached\n"
        await eventually(lambda: host.control.clients == 1, "the client attached")
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        await eventually(lambda: host.control.clients == 0, "the dead client dropped")
        assert not host.done
        assert await host.wait() == 0
    finally:
        kill_quietly([child.pid])
        child.wait()
        host.close()


async def test_a_client_that_never_reads_is_coalesced_then_dropped(workspace):
    host = await _start(workspace(1, worker_args=["--seconds", "30"]))
    host.control.max_queued = 64
    try:
        _reader, stuck = await _raw(host.control.path)
        stuck.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with ControlClient.connect(host.control.path) as good:
            await eventually(lambda: host.control.clients == 2, "both attached")
            heard: list[dict] = []

            async def listen() -> None:
                async for message in good.events():
                    heard.append(message)

            listening = asyncio.create_task(listen())
            for i in range(200):  # one burst: every queue must coalesce
                host.bus.publish(_sample(i))
            client = next(iter(host.control._clients))  # pylint: disable=protected-access
            assert client.coalesced > 0 and host.control.clients == 2
            sent = 0
            while host.control.clients == 2:
                assert sent < 20_000, "the stuck client was never dropped"
                for _ in range(20):
                    host.bus.publish(
                        ev.Notice(time=0.0, level=ev.NoticeLevel.INFO, message="n" * 1000))
                sent += 20
                await eventually(lambda: _notices(heard) >= sent, "the good client keeps up")
            await eventually(
                lambda: any("fell behind" in m["event"].get("message", "") for m in heard
                            if m["kind"] == "event"), "the drop logged")
            samples = [
                m for m in heard if m["kind"] == "event" and m["event"]["type"] == "JobSample"
                and m["event"]["job_id"] == 0
            ]
            assert samples and samples[-1]["event"]["elapsed"] == 199.0
            assert not host.done
            host.shutdown()
            assert await asyncio.wait_for(host.wait(), 30) != 0
            listening.cancel()
        stuck.close()
    finally:
        host.shutdown()
        await host.wait()
        host.close()


async def test_a_stalled_client_is_cut_at_the_end_without_holding_the_run_s_exit(workspace):
    host = await _start(workspace(1, worker_args=["--seconds", "2"]))
    host.control.flush_timeout = 60.0  # before: all of it, for a client that never reads
    host.control.stall_timeout = 0.2
    try:
        _reader, stuck = await _raw(host.control.path)
        stuck.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await eventually(lambda: host.control.clients == 1, "the stuck client attached")
        stalled = next(iter(host.control._clients))  # pylint: disable=protected-access
        async with ControlClient.connect(host.control.path) as good:
            await eventually(lambda: host.control.clients == 2, "both attached")
            for _ in range(400):  # 4 MB: more than the stuck socket and its transport hold
                host.bus.publish(
                    ev.Notice(time=0.0, level=ev.NoticeLevel.INFO, message="n" * 10_000))
            await eventually(lambda: stalled.blocked_since is not None,
                             "the stuck client's writer waiting")
            heard = [message async for message in good.events()]
            assert await asyncio.wait_for(host.wait(), 20) == 0
        assert heard[-1]["event"]["type"] == "RunFinished" and _notices(heard) == 400
        assert stalled.dropped == "stopped reading (nothing taken in 0.2 s)"
        stuck.close()
    finally:
        host.shutdown()
        await host.wait()
        host.close()


async def test_a_burst_reaches_a_client_whole_and_in_order_in_a_few_writes(workspace):
    host = await _start(workspace(1, worker_args=["--seconds", "30"]))
    try:
        async with ControlClient.connect(host.control.path) as client:
            await eventually(lambda: host.control.clients == 1, "attached")
            served = next(iter(host.control._clients))  # pylint: disable=protected-access
            writes: list[bytes] = []
            write = served.writer.write

            def counted(data: bytes) -> None:
                writes.append(data)
                write(data)

            served.writer.write = counted
            for i in range(300):
                host.bus.publish(ev.Notice(time=0.0, level=ev.NoticeLevel.INFO, message=f"b{i}"))
            assert (await client.send("pause", job=999))["message"] == "no job 999"
            burst: list[str] = []
            async for message in client.events():
                if message["kind"] == "event" and message["event"]["type"] == "Notice":
                    burst.append(message["event"]["message"])
                if len(burst) == 300:
                    break
        assert burst == [f"b{i}" for i in range(300)]
        carrying = [data for data in writes if b'"message":"b' in data]
        assert 1 <= len(carrying) <= 3, f"300 messages in {len(carrying)} writes"
        assert all(data.endswith(b"\n") for data in writes)  # whole lines, never one cut
    finally:
        host.shutdown()
        await host.wait()
        host.close()


def _notices(heard: list[dict]) -> int:
    return sum(1 for m in heard if m["kind"] == "event" and m["event"]["type"] == "Notice"
               and m["event"]["message"].startswith("nnn"))


def _sample(i: int) -> ev.JobSample:
    """A monitoring sample of a job that does not exist (job 0): only its order matters."""
    zero = {"cpu_cores": 0.0, "rss_bytes": 0, "output_bytes": 0, "read_fraction": None}
    return ev.JobSample(time=float(i), job_id=0, node="-", pid=1, processes=1, elapsed=i, **zero)


def test_only_the_owner_and_root_may_connect():
    assert may_connect(1000, 1000) and may_connect(0, 1000)
    assert not may_connect(1001, 1000) and not may_connect(65534, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another uid takes root (setuid)")
async def test_another_uid_is_refused_by_the_folder_and_by_so_peercred(workspace):
    host = await _start(workspace(1, worker_args=["--seconds", "30"]))
    path = host.control.path
    try:
        # As it is: the private folder alone keeps uid 65534 out.
        assert await _connect_as_nobody(path) == "EACCES"
        # Opened up, the peer's uid is what refuses it.
        os.chmod(path.parent, 0o711)
        os.chmod(path, 0o666)
        got = await _connect_as_nobody(path)
        assert got.startswith("error:") and "not the run's owner" in got, got
        async with ControlClient.connect(path) as client:  # root (the owner) still may
            assert isinstance(client.snapshot, RunSnapshot)
        assert not host.done
    finally:
        host.shutdown()
        await host.wait()
        host.close()


async def _connect_as_nobody(path: Path) -> str:
    """Fork, setuid(65534), connect and read one line: what the other uid gets."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no asyncio, no return
        os.close(read_end)
        result = b""
        try:
            # Into the folder as root first: the pytest folders above it are root's alone.
            os.chdir(path.parent)
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path.name)
                assert peer_uid(sock) == 0
                try:  # the refusal may come (and the server hang up) first
                    sock.sendall(wire.encode(wire.hello(os.getpid(), "test")))
                except BrokenPipeError:
                    pass
                line = sock.makefile("rb").readline()
                result = b"error:" + line if b'"error"' in line else b"line:" + line
        except PermissionError:
            result = b"EACCES"
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # report it
            result = repr(exc).encode()
        os.write(write_end, result)
        os._exit(0)  # pylint: disable=protected-access  # a forked child never returns
    os.close(write_end)
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(None, _read_all, read_end)
    await loop.run_in_executor(None, os.waitpid, pid, 0)
    return data.decode()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


async def test_a_close_cancelled_while_it_waits_leaves_a_second_close_clean(workspace):
    # RemoteRun.close cancels its reader while that reader may be closing the client, then
    # closes the client itself: the second close used to raise CancelledError (CI, once).
    host = await _start(workspace(1, worker_args=["--seconds", "30"]))
    client = ControlClient.connect(host.control.path)
    await client.open()
    writer = client._writer  # pylint: disable=protected-access  # the transport's state
    assert writer is not None
    try:
        closing = asyncio.create_task(client.close())
        while not writer.transport.is_closing():
            await asyncio.sleep(0)
        closing.cancel()  # it now waits for the connection to be lost
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        await asyncio.wait_for(client.close(), 10)
    finally:
        host.shutdown()
        await host.wait()
        host.close()
