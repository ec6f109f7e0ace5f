"""A run in another process, as a `RunControl`: the TUI's end of the control socket.

The screens ask a `RemoteRun` what they ask the in-process host, and get answers at once: job
states, the limit and pause-all are mirrored from the snapshot and the events, and a command's
result is predicted from them with the run's own rule (`commands.refusal`) while the command
travels; when the run refuses after all, its words come back to the listener as a Notice.
Nothing here ever waits for the run on the caller's behalf: the UI never blocks on the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from orch_tui.core import events as ev
from orch_tui.core import procfs, wire
from orch_tui.core.control.client import ControlClient
from orch_tui.core.control.commands import JobStates, refusal
from orch_tui.core.control.location import find_socket
from orch_tui.core.controller import Launch, Listener, Spawned, Spawner
from orch_tui.core.errors import OrchError
from orch_tui.core.lock import held_by
from orch_tui.core.plan import Plan
from orch_tui.core.snapshot import RunSnapshot

#: How long closing waits for commands already sent to be answered (a key pressed just
#: before `d` still reaches the run).
SEND_GRACE = 2.0


class RunUnreachable(OrchError):
    """No run answers on that socket (it ended, or was killed)."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class LiveRun:
    """A run another process holds an output folder with, and the socket it serves."""

    pid: int
    socket: Path
    started: float | None  # epoch seconds (None: unknown)


def live_run(output_dir: Path) -> LiveRun | None:
    """The live run holding `output_dir` and serving its control socket, if any (read from
    /proc/locks and the state folder: nothing is locked or connected to find out)."""
    pid = held_by(Path(output_dir))
    socket = find_socket(Path(output_dir)) if pid is not None else None
    if pid is None or socket is None:
        return None
    return LiveRun(pid, socket, process_started(pid))


def process_started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            ticks = procfs.parse_stat(handle.read()).starttime
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, ValueError, StopIteration):
        return None
    return boot + ticks / procfs.CLK_TCK


def _ignore_lost(why: str) -> None:
    del why


def _ignore_resynced(snapshot: RunSnapshot) -> None:
    del snapshot


# The connection, the mirrored state, the listeners and the hooks of a broken connection.
# pylint: disable-next=too-many-instance-attributes,too-many-public-methods
class RemoteRun:
    """Implements `RunControl` and `Connection` (core/controller.py) over a control socket."""

    def __init__(self, *, spawn: Spawner | None = None) -> None:
        """Unconnected: `launch` starts a run with `spawn` and connects to it; `connect`
        makes one already connected."""
        self._spawn = spawn
        self.socket: Path | None = None
        self.pid: int | None = None
        self.finished: ev.RunFinished | None = None
        self.lost: str | None = None  # why the connection broke for good
        self.config_error: OrchError | None = None
        self._client: ControlClient | None = None
        self._snapshot: RunSnapshot | None = None
        self._jobs = JobStates()
        self._limit = 0
        # Limits sent and not yet answered: the run's echo of an older one must not undo a
        # newer one set here (fast + + + would lose presses: each adds to the limit shown).
        self._limits_in_flight = 0
        self._paused_all = False
        self._listeners: list[Listener] = []
        self._early: list[ev.Event] = []  # after the snapshot, before (or while) attaching
        self._attached_once = False
        self._pump: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False
        self._on_lost: Callable[[str], None] = _ignore_lost
        self._on_resynced: Callable[[RunSnapshot], None] = _ignore_resynced

    @classmethod
    async def connect(cls, socket_path: Path) -> RemoteRun:
        """Connected to the run serving `socket_path`: hello, then its snapshot. Raises
        ProtocolError (exit 2) for another protocol version, RunUnreachable (exit 3) when
        nothing answers there."""
        run = cls()
        await run._open(Path(socket_path))
        return run

    async def _open(self, path: Path) -> None:
        client = ControlClient(path)
        try:
            await client.open()
        except OSError as exc:
            await client.close()
            raise RunUnreachable(f"no run answers on {path}: {exc.strerror or exc}") from None
        except BaseException:
            await client.close()
            raise
        assert client.snapshot is not None
        self.socket, self._client = path, client
        pid = client.server_hello.get("pid")
        self.pid = pid if isinstance(pid, int) else None
        self._snapshot = client.snapshot
        self._jobs.seed(client.snapshot)
        self._limit, self._paused_all = client.snapshot.limit, client.snapshot.paused_all
        self.finished = client.snapshot.finished
        self._early.clear()  # a previous connection's: the new snapshot holds them
        self._pump = asyncio.create_task(self._read(client), name="orch-tui remote run")

    # --- RunControl: starting, attaching

    @property
    def clock(self) -> Callable[[], float]:
        """time.monotonic: the run is on this machine, and CLOCK_MONOTONIC is system-wide, so
        the run's event times and this process's clock agree (elapsed times, the ETA)."""
        return time.monotonic

    @property
    def started(self) -> bool:
        """True once connected to a run."""
        return self._client is not None

    @property
    def detachable(self) -> bool:
        """The run lives in its own process: leaving the screen leaves it running."""
        return True

    async def launch(self, plan: Plan) -> Launch:
        """Start `plan` in a process of its own (the spawner), then connect to it."""
        if self._spawn is None:
            raise RuntimeError("a RemoteRun made by connect() has its run already")
        return await self.adopt(self._spawn(plan))

    async def adopt(self, spawning: Awaitable[Spawned]) -> Launch:
        """Connect to a run being started in a process of its own, once it answers."""
        spawned = await spawning
        await self._open(spawned.socket)
        self.pid = spawned.pid
        return spawned.launch

    def config_checked(self, path: Path, error: OrchError | None) -> None:
        """Keep the last validation's error (a run never launched exits with its code)."""
        del path
        self.config_error = error

    def attach(self, listener: Listener) -> RunSnapshot:
        """The snapshot this connection began with; the events received since are delivered
        to `listener` on the loop's next turn, in order, then each as it comes. One observer
        per connection (the snapshot is not kept current): connect again for another."""
        assert self._snapshot is not None, "attach after connect"
        if self._attached_once:
            raise RuntimeError("one observer per connection: connect again")
        self._attached_once = True
        self._listeners.append(listener)
        if self._early:
            asyncio.get_running_loop().call_soon(self._flush)
        return self._snapshot

    def detach(self, listener: Listener) -> None:
        """No more events to `listener` (the connection stays until `close`)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def follow(self, *, lost: Callable[[str], None], resynced: Callable[[RunSnapshot],
                                                                        None]) -> None:
        """Who is told that the connection broke (see `Connection` in core/controller.py)."""
        self._on_lost, self._on_resynced = lost, resynced

    async def close(self) -> None:
        """Hang up, once the commands already sent are answered (at most SEND_GRACE); the run
        goes on."""
        self._closed = True
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=SEND_GRACE)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._client is not None:
            await self._client.close()

    # --- events in

    def _deliver(self, event: ev.Event) -> None:
        if not self._listeners or self._early:
            self._early.append(event)  # attach (or the flush it scheduled) delivers it
            return
        for listener in list(self._listeners):
            listener(event)

    def _flush(self) -> None:
        while self._early and self._listeners:
            event = self._early.pop(0)
            for listener in list(self._listeners):
                listener(event)

    def _fold(self, event: ev.Event) -> None:
        self._jobs.observe(event)
        if isinstance(event, ev.LimitChanged):
            if not (self._limits_in_flight and event.source is ev.LimitSource.OPERATOR):
                self._limit = event.limit
        elif isinstance(event, ev.PauseAllChanged):
            self._paused_all = event.paused
        elif isinstance(event, ev.RunFinished):
            self.finished = event
        self._deliver(event)

    async def _read(self, client: ControlClient) -> None:
        why = "the run hung up"
        try:
            async for message in client.events():
                kind = wire.message_kind(message)
                if kind == "error":
                    why = wire.parse_error(message)
                    break
                if kind != "reply":  # a reply nobody waits for any more is no event
                    self._fold(wire.parse_event(message))
        except wire.ProtocolError as exc:
            why = str(exc)
        await client.close()
        if not self._closed and self.finished is None:
            await self._reconnect(why)

    async def _reconnect(self, why: str) -> None:
        """Once: the run may have dropped this client (too slow) and still be there."""
        assert self.socket is not None
        try:
            await self._open(self.socket)
        except OrchError as exc:
            self.lost = f"{why}; {exc}"
            self._on_lost(self.lost)
            return
        assert self._snapshot is not None
        self._on_resynced(self._snapshot)

    # --- commands out: sent in the background, their result predicted

    def _command(self, name: str, *, job: int | None = None, value: int | None = None) -> bool:
        cmd = wire.Command(name, 0, job, value)
        predicted = refusal(cmd, self._jobs, paused_all=self._paused_all) is None
        task = asyncio.create_task(self._send(cmd), name=f"orch-tui {name}")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return predicted

    async def _send(self, cmd: wire.Command) -> None:
        try:
            answer = await self._answer(cmd)
        finally:
            if cmd.cmd == "set_limit":
                self._limits_in_flight -= 1
        if answer is not None and not answer.ok:
            self._deliver(
                ev.Notice(time=self.clock(), level=ev.NoticeLevel.WARNING, message=answer.message))

    async def _answer(self, cmd: wire.Command) -> wire.Reply | None:
        """The run's answer to `cmd`; None when the connection is gone (the reader says so)."""
        client = self._client
        if client is None:
            return None
        try:
            return wire.parse_reply(await client.send(cmd.cmd, job=cmd.job, value=cmd.value))
        except (ConnectionError, OSError, wire.ProtocolError):
            return None

    @property
    def limit(self) -> int:
        """The limit in force, as the run last said (or as set from here since)."""
        return self._limit

    @property
    def paused_all(self) -> bool:
        """True after pause_all until resume_all (as the run last said, or set from here)."""
        return self._paused_all

    def pause(self, job_id: int) -> bool:
        """SIGSTOP one job."""
        return self._command("pause", job=job_id)

    def resume(self, job_id: int) -> bool:
        """SIGCONT one job."""
        return self._command("resume", job=job_id)

    def kill(self, job_id: int) -> bool:
        """Terminate one job (a queued one is taken off the queue)."""
        return self._command("kill", job=job_id)

    def requeue(self, job_id: int) -> bool:
        """Run a failed, killed or cancelled job again."""
        return self._command("requeue", job=job_id)

    def cancel(self, job_id: int) -> bool:
        """Take a queued job off the queue."""
        return self._command("cancel", job=job_id)

    def pause_all(self) -> None:
        """No launches, every job stopped."""
        if self._command("pause_all"):
            self._paused_all = True

    def resume_all(self) -> None:
        """Undo pause_all."""
        if self._command("resume_all"):
            self._paused_all = False

    def set_limit(self, limit: int) -> None:
        """The operator's process limit."""
        self._limits_in_flight += 1  # answered (or lost) in _send
        if self._command("set_limit", value=limit):
            self._limit = limit

    def shutdown(self,
                 *,
                 kill: bool = True,
                 interrupted: bool = True,
                 signal: int | None = None) -> None:
        """With kill: the run's `stop` (every job ended, exit 143, as SIGTERM to it); without:
        `drain` (no more launches, the running jobs finish)."""
        del interrupted, signal  # the run's own stop decides its exit code
        self._command("stop" if kill else "drain")

    def kill_all_now(self) -> None:
        """SIGKILL to every job's group."""
        self._command("kill_now")
