"""start_eagerly: a coroutine runs at once up to its first real wait, and from there on as a
task would run it (results, errors, cancellation)."""

# pylint: disable=missing-function-docstring  # test names say what each test checks
from __future__ import annotations

import asyncio

import pytest

from orch_tui.core.eager import start_eagerly


async def test_a_coroutine_that_never_waits_is_done_on_return():
    ran = []

    async def start() -> int:
        ran.append("body")
        return 7

    future = start_eagerly(start())
    assert ran == ["body"], "ran before start_eagerly returned, not on a later turn"
    assert future.done() and future.result() == 7


async def test_an_error_before_any_wait_is_the_futures():

    async def start() -> int:
        raise ValueError("no such binary")

    future = start_eagerly(start())
    assert future.done()
    with pytest.raises(ValueError, match="no such binary"):
        future.result()


async def test_a_coroutine_that_waits_goes_on_as_a_task_and_sees_each_outcome():
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    seen = []

    async def start() -> str:
        seen.append(await first)
        try:
            await second
        except KeyError as exc:
            seen.append(f"caught {exc}")
        await asyncio.sleep(0)  # a bare yield
        return "started"

    task = start_eagerly(start())
    assert not task.done()
    first.set_result("node ready")
    second.set_exception(KeyError("gone"))
    assert await task == "started"
    assert seen == ["node ready", "caught 'gone'"]


@pytest.mark.parametrize("turns", [0, 1], ids=["before-its-first-step", "while-it-waits"])
async def test_cancelling_the_task_cancels_what_the_coroutine_waits_for(turns):
    loop = asyncio.get_running_loop()
    waited = loop.create_future()
    cleaned = []

    async def start() -> None:
        try:
            await waited
        finally:
            cleaned.append(True)

    task = start_eagerly(start())
    for _ in range(turns):
        await asyncio.sleep(0)  # one turn of the loop: the task reaches its wait
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True] and waited.cancelled()
