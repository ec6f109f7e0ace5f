"""The scheduler's time: reading it, sleeping, timers, behind one small protocol.

The orchestrator never asks the loop for the time directly, so tests hand it a fake clock and
drive hours of timeouts, samples and stabilization windows without a real sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


# pylint: disable-next=too-few-public-methods  # a protocol of one method
class Timer(Protocol):
    """A pending call that can be called off (asyncio.TimerHandle is one)."""

    def cancel(self) -> None:
        """Do not run it."""


class Clock(Protocol):
    """Now, sleep and call later: all the scheduler needs of time."""

    def now(self) -> float:
        """Monotonic seconds (event times are in this unit)."""

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of this clock."""

    def call_later(self, seconds: float, callback: Callable[..., object], *args: object) -> Timer:
        """Run `callback(*args)` after `seconds` of this clock, on the loop."""


class LoopClock:
    """The real clock: the running event loop's monotonic time and timers."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def now(self) -> float:
        """The loop's monotonic time."""
        return self._loop.time()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[..., object], *args: object) -> Timer:
        """The loop's own timer."""
        return self._loop.call_later(seconds, callback, *args)


async def wait_at_most(clock: Clock, future: asyncio.Future[None], seconds: float) -> None:
    """Wait for `future` or `seconds` of `clock`, whichever comes first (`future` is left
    alone: the job it stands for keeps running)."""
    if future.done():
        return
    expired: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    timer = clock.call_later(seconds, _settle, expired)
    try:
        await asyncio.wait((future, expired), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
