"""The control socket's server, on the run's event loop.

Each client gets the run's snapshot, then every event, and may send commands. The run never
waits for a client: the bus listener only appends the event to the client's bounded queue, and
a writer task of the client's own encodes and writes. When a queue fills, samples are coalesced
(the newest per job and per node is all a screen shows); if that does not make room, the client
is dropped with a logged reason. A client that sends garbage, an oversize line or dies is
dropped the same way; the listener is detached on every exit path. When the run ends, clients
get its last events, but one that has stopped reading is cut at once: it must not hold the
run's exit (scripts wait for the headless exit code)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orch_tui import __version__
from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.control.commands import CommandHandler
from orch_tui.core.fstype import network_filesystem
from orch_tui.core.control.location import (SOCKET_NAME, bind_private, fallback_base, fallback_name,
                                            fits, open_private_folder, record_path)
from orch_tui.core.controller import RunControl
from orch_tui.core.statedir import StateDir

#: Messages a client may have queued before its samples are coalesced.
MAX_QUEUED = 4096
#: Bytes the transport may buffer for a client before its writer waits (and its queue grows).
WRITE_BUFFER = 256 * 1024
#: A client must say hello within this many seconds.
HELLO_TIMEOUT = 10.0
#: How long a closing server lets its clients flush (the run's last events) before cutting them.
FLUSH_TIMEOUT = 2.0
#: A client whose socket has not taken its backlog in this long is not reading: a closing server
#: cuts it without waiting (a stalled client held the 2,000-job benchmark's exit for all of
#: FLUSH_TIMEOUT, +40% wall time). Long enough for a busy screen that still reads.
STALL_TIMEOUT = 1.0
#: A client's writer writes at most this often, everything queued at once: the first message
#: after a quiet spell goes at once, a burst in a few writes. One send per event was most of
#: what a reading client cost the 2,000-job benchmark's run (py-spy: the per-event path 5-7% of
#: the run's samples, sends 3-5%); batched, 2.8% and 0.5%, and the client's CPU 0.9 -> 0.6 s.
WRITE_INTERVAL = 0.005

Item = ev.Event | dict[str, Any]


def peer_uid(sock: socket.socket) -> int:
    """The connecting process's uid, from the kernel (SO_PEERCRED: pid, uid, gid)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def may_connect(uid: int, owner: int) -> bool:
    """Only the run's owner and root may watch or command a run."""
    return uid in (owner, 0)


def _sample_key(item: Item) -> tuple[str, object] | None:
    if isinstance(item, ev.JobSample):
        return "job", item.job_id
    if isinstance(item, ev.SystemSample):
        return "node", item.node
    if isinstance(item, ev.CalibrationProgress):
        return "calibration", item.job_id
    return None


def coalesce(items: deque[Item]) -> deque[Item]:
    """Keep only the newest sample per job and per node; everything else, in order."""
    seen: set[tuple[str, object]] = set()
    kept: list[Item] = []
    for item in reversed(items):
        key = _sample_key(item)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        kept.append(item)
    kept.reverse()
    return deque(kept)


class Dropped(Exception):
    """This client is dropped; the message says why (for the log)."""


class Left(Dropped):
    """The client closed its end: the normal end of a `status` or a detached screen, which no
    screen is told of (a notice on every screen at every `status` is noise)."""


# One connected client: its queue, its writer and its reader.
# pylint: disable-next=too-many-instance-attributes
class Client:
    """A connected, greeted client: queued messages out, commands in."""

    def __init__(self, server: ControlServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, name: str) -> None:
        self.server, self.reader, self.writer, self.name = server, reader, writer, name
        self.queue: deque[Item] = deque()
        self.wakeup = asyncio.Event()
        self.dropped: str | None = None
        self.closing = False
        self.coalesced = 0
        #: When the writer began waiting for the socket to take more (None: not waiting).
        self.blocked_since: float | None = None
        self.commands = CommandHandler(server.host)

    def __call__(self, event: ev.Event) -> None:
        """The bus listener: O(1) on the run's side, whatever the client does."""
        self.commands.observe(event)
        self.push(event)

    def push(self, item: Item) -> None:
        """Queue a message; coalesce, then drop the client, when it falls too far behind."""
        if self.dropped is not None:
            return
        self.queue.append(item)
        if len(self.queue) >= self.server.max_queued:
            before = len(self.queue)
            self.queue = coalesce(self.queue)
            self.coalesced += before - len(self.queue)
            if len(self.queue) > self.server.max_queued * 3 // 4:
                self.drop(f"fell behind ({len(self.queue)} messages queued)")
                return
        self.wakeup.set()

    def drop(self, reason: str, *, flush: bool = False, quiet: bool = False) -> None:
        """Cut this client off now (the run does not wait for it); `flush` lets the transport
        send what it already holds (an error line) without anyone waiting for it; `quiet`: a
        client that left, which is not logged."""
        if self.dropped is not None:
            return
        self.dropped = reason
        self.queue.clear()
        self.server.host.detach(self)
        if flush:
            self.writer.transport.close()
        else:
            self.writer.transport.abort()
        self.wakeup.set()
        if not quiet:
            self.server.log(f"control client {self.name} dropped: {reason}")

    async def write_loop(self) -> None:
        """Encode and write queued messages, all of them in one write at most every
        WRITE_INTERVAL; waiting on the socket here never slows the run."""
        while self.dropped is None:
            if not self.queue:
                if self.closing:
                    self.writer.close()  # flushes what the transport holds
                    self.blocked_since = self.server.clock()
                    await self.writer.wait_closed()
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            lines, size = [], 0
            while self.queue and size < WRITE_BUFFER:
                item = self.queue.popleft()
                line = wire.encode(item if isinstance(item, dict) else wire.event_message(item))
                lines.append(line)
                size += len(line)
            self.writer.write(b"".join(lines))
            self.blocked_since = self.server.clock()
            await self.writer.drain()
            self.blocked_since = None
            await asyncio.sleep(WRITE_INTERVAL)  # what comes meanwhile goes in the next write

    def stalled(self, now: float, patience: float) -> bool:
        """True when the writer has waited `patience` seconds for the socket to take its
        backlog: a client that reads catches up in microseconds (a local socket)."""
        return (self.dropped is None and self.blocked_since is not None
                and now - self.blocked_since >= patience)

    async def read_loop(self) -> None:
        """Commands in, replies queued with the events (in order)."""
        while self.dropped is None:
            line = await self.reader.readline()
            if not line:
                raise Left("disconnected")
            try:
                cmd = wire.parse_command(wire.decode(line))
            except wire.ProtocolError as exc:
                # Straight to the transport, ahead of the queue: the client learns why.
                self.queue.clear()
                self.writer.write(wire.encode(wire.error(str(exc))))
                raise Dropped(f"bad message: {exc}") from None
            ok, message = self.commands.run(cmd)
            self.push(wire.reply(cmd.request, ok, message))


# The socket, its descriptors, its clients and their tasks.
# pylint: disable-next=too-many-instance-attributes
class ControlServer:
    """Serves `host` (a RunControl) on the run's control socket until closed."""

    # pylint: disable-next=too-many-arguments
    def __init__(self,
                 host: RunControl,
                 state: StateDir,
                 *,
                 max_queued: int = MAX_QUEUED,
                 log: Callable[[str], None] | None = None,
                 owner: int | None = None) -> None:
        """`log` gets one line per dropped or refused client (default: a Notice on the bus of
        `host`, if it has one, which run.log records)."""
        self.host = host
        self.state = state
        self.max_queued = max_queued
        self.flush_timeout = FLUSH_TIMEOUT
        self.stall_timeout = STALL_TIMEOUT
        self.owner = os.geteuid() if owner is None else owner
        self._log = log
        self.path: Path | None = None
        self._sock: socket.socket | None = None
        self._dir_fd = -1
        self._state_fd = -1
        self._recorded = False
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[Client] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    # --- the socket

    def bind(self) -> Path:
        """Create the listening socket now (synchronously: clients may connect at once; they
        are accepted when `start` runs). Raises StateError when it cannot be made safely, and
        OSError when the process is out of descriptors."""
        if self._sock is not None and self.path is not None:
            return self.path
        try:
            # Our own descriptors: the session closes the state folder's when the run ends.
            self._state_fd = os.dup(self.state.fd)
            natural = self.state.path / SOCKET_NAME
            # A Unix socket cannot live on a network filesystem (core/fstype.py): the local
            # runtime folder instead, recorded as for a path too long to bind.
            if fits(natural) and network_filesystem(self.state.output_dir) is None:
                self._dir_fd = os.dup(self.state.fd)
                path, self._recorded = natural, False
            else:
                self._dir_fd = open_private_folder(fallback_base())
                path = fallback_base() / fallback_name(self.state.output_dir)
                self._recorded = True
            self._sock = bind_private(self._dir_fd, path.name, path)
            self.path = path
            record_path(self._state_fd, self.state.path, path if self._recorded else None)
        except BaseException:
            self.close()  # out of descriptors midway (EMFILE): nothing of it is left open
            raise
        return path

    async def start(self) -> Path:
        """Bind (if not done) and accept clients on the running loop."""
        path = self.bind()
        if self._server is None:
            self._server = await asyncio.start_unix_server(self._serve,
                                                           sock=self._sock,
                                                           limit=wire.MAX_LINE)
        return path

    def close(self) -> None:
        """Stop accepting, remove the socket (and its record); connected clients get what is
        queued for them (see `wait_closed`), then are disconnected."""
        if self._server is not None:
            self._server.close()
        elif self._sock is not None:
            self._sock.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path.name, dir_fd=self._dir_fd)
            if self._recorded:
                with contextlib.suppress(OSError):
                    record_path(self._state_fd, self.state.path, None)
            self.path = None
        for name in ("_dir_fd", "_state_fd"):
            if getattr(self, name) >= 0:
                os.close(getattr(self, name))
                setattr(self, name, -1)
        for client in list(self._clients):
            client.closing = True
            client.wakeup.set()

    async def wait_closed(self, timeout: float | None = None) -> None:
        """After `close`: let clients flush for at most `timeout` (`flush_timeout`), then cut
        the rest; a client that stalls (takes nothing for `stall_timeout`) is cut as soon as it
        does."""
        deadline = self.clock() + (self.flush_timeout if timeout is None else timeout)
        while self._handlers and (now := self.clock()) < deadline:
            for client in list(self._clients):
                if client.stalled(now, self.stall_timeout):
                    client.drop(f"stopped reading (nothing taken in {self.stall_timeout:g} s)")
            waits = [
                client.blocked_since + self.stall_timeout for client in self._clients
                if client.dropped is None and client.blocked_since is not None
            ]
            await asyncio.wait(set(self._handlers),
                               timeout=min([deadline, *waits]) - now,
                               return_when=asyncio.FIRST_COMPLETED)
        for client in list(self._clients):
            client.drop("the run is over")
        for task in list(self._handlers):
            task.cancel()

    @staticmethod
    def clock() -> float:
        """The loop's monotonic clock (stall and flush deadlines)."""
        return asyncio.get_running_loop().time()

    @property
    def clients(self) -> int:
        """How many clients are connected and greeted."""
        return len(self._clients)

    def log(self, line: str) -> None:
        """One line about a client (dropped, refused), never blocking the caller."""
        if self._log is not None:
            self._log(line)
            return
        bus = getattr(self.host, "bus", None)
        if isinstance(bus, ev.EventBus):
            notice = ev.Notice(time=self.host.clock(), level=ev.NoticeLevel.INFO, message=line)
            # Not from inside another listener's call: on the loop's next turn.
            asyncio.get_running_loop().call_soon(bus.publish, notice)

    # --- one client

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._session(reader, writer)
        finally:
            self._handlers.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock)
        name = f"uid {uid}"
        if not may_connect(uid, self.owner):
            self.log(f"control client refused: {name} is not the run's owner "
                     f"(uid {self.owner}) or root")
            writer.write(wire.encode(wire.error("permission denied: not the run's owner")))
            with contextlib.suppress(OSError):
                await asyncio.wait_for(writer.drain(), 1.0)
            return
        try:
            line = await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT)
            hello = wire.decode(line)
            wire.check_hello(hello, peer="the client")
        except (wire.ProtocolError, ValueError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            self.log(f"control client {name} refused: {reason}")
            with contextlib.suppress(OSError, wire.ProtocolError):
                writer.write(wire.encode(wire.error(reason)))
                await asyncio.wait_for(writer.drain(), 1.0)
            return
        if isinstance(hello.get("pid"), int):
            name = f"pid {hello['pid']} ({name})"
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        await self._attached(Client(self, reader, writer, name))

    async def _attached(self, client: Client) -> None:
        client.push(wire.hello(os.getpid(), __version__))
        snapshot = self.host.attach(client)  # no event can come between these two lines
        client.commands.seed(snapshot)
        client.push(wire.snapshot_message(snapshot))
        self._clients.add(client)
        writer = asyncio.create_task(client.write_loop(), name=f"control {client.name} out")
        reader = asyncio.create_task(client.read_loop(), name=f"control {client.name} in")
        try:
            done, _pending = await asyncio.wait({writer, reader},
                                                return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if isinstance(exc, Dropped):
                        client.drop(str(exc), flush=True, quiet=isinstance(exc, Left))
                    else:
                        client.drop(f"{type(exc).__name__}: {exc}")
        finally:
            self.host.detach(client)
            self._clients.discard(client)
            for task in (writer, reader):
                task.cancel()
            await asyncio.gather(writer, reader, return_exceptions=True)
