"""A minimal client of the control socket: hello, the snapshot, events, commands.

Replies are matched to commands by request number; everything else the server says (events, an
error before it hangs up) comes out of `events()` in order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

from orch_tui import __version__
from orch_tui.core import wire
from orch_tui.core.snapshot import RunSnapshot

_END: dict[str, Any] = {"kind": "end"}
#: The run's lines may be long (a snapshot of 100,000 jobs); wire.MAX_LINE bounds only ours.
READ_LIMIT = 1 << 30


# The connection, its reply futures, its event queue and its reader task.
# pylint: disable-next=too-many-instance-attributes
class ControlClient:
    """One connection to a run's control socket (use `async with ControlClient.connect(p)`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.server_hello: dict[str, Any] = {}
        self.snapshot: RunSnapshot | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._requests = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def connect(cls, path: Path) -> ControlClient:
        """The client for `path`; connecting happens on `async with`."""
        return cls(path)

    async def __aenter__(self) -> ControlClient:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, exchange hellos (ProtocolError on a version mismatch or a refusal), read
        the snapshot, then start reading the rest."""
        self._reader, self._writer = await asyncio.open_unix_connection(self.path, limit=READ_LIMIT)
        self._writer.write(wire.encode(wire.hello(os.getpid(), __version__)))
        await self._writer.drain()
        self.server_hello = await self._expect("hello")
        wire.check_hello(self.server_hello)
        self.snapshot = wire.parse_snapshot(await self._expect("snapshot"))
        self._pump = asyncio.create_task(self._read_all(), name="control client")

    async def _expect(self, kind: str) -> dict[str, Any]:
        assert self._reader is not None
        line = await self._reader.readline()
        if not line:
            raise wire.ProtocolError(f"the server hung up before its {kind}")
        message = wire.decode(line, limit=None)
        if message.get("kind") == "error":
            raise wire.ProtocolError(str(message.get("message")))
        if message.get("kind") != kind:
            raise wire.ProtocolError(f"expected {kind}, got {message.get('kind')!r}")
        return message

    async def _read_all(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                message = wire.decode(line, limit=None)
                request = message.get("request")
                future = (self._replies.pop(request, None)
                          if message.get("kind") == "reply" and isinstance(request, int) else None)
                if future is not None:
                    if not future.done():
                        future.set_result(message)
                else:
                    self._events.put_nowait(message)
        except (OSError, ValueError, wire.ProtocolError):
            pass
        finally:
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ConnectionError("the run's control socket closed"))
            self._replies.clear()
            self._events.put_nowait(_END)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every message after the snapshot (events, errors), until the server hangs up;
        `wire.parse_event` makes an event message the Event it carries."""
        while (message := await self._events.get()) is not _END:
            yield message
        self._events.put_nowait(_END)  # a second iteration ends at once too

    async def send(self,
                   cmd: str,
                   *,
                   job: int | None = None,
                   value: int | None = None) -> dict[str, Any]:
        """Send a command and wait for its reply (`ok`, `message`)."""
        assert self._writer is not None, "open first"
        if self._pump is None or self._pump.done():
            raise ConnectionError("the run's control socket closed")
        request = next(self._requests)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request] = future
        self._writer.write(wire.encode(wire.command(cmd, request=request, job=job, value=value)))
        await self._writer.drain()
        return await future

    async def close(self) -> None:
        """Hang up (the run goes on)."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._writer is not None:
            self._writer.close()
            # Shielded: a close cancelled while it waits (RemoteRun.close cancels the reader
            # that was closing this client) must not cancel the transport's one close-waiter
            # future, which a second close then awaits (it raised CancelledError there).
            with contextlib.suppress(OSError):
                await asyncio.shield(self._writer.wait_closed())
