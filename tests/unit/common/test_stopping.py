from __future__ import annotations

import asyncio

import pytest

from common.stopping import Stopped, unless_stopped


async def test_work_that_ends_first_gives_its_result() -> None:
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await unless_stopped(asyncio.Event(), work()) == 7


async def test_a_stop_first_cancels_the_work_and_lets_its_clean_up_run() -> None:
    stop = asyncio.Event()
    cleaned = asyncio.Event()

    async def work() -> int:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()
        return 7

    asyncio.get_running_loop().call_later(0.05, stop.set)
    with pytest.raises(Stopped):
        await asyncio.wait_for(unless_stopped(stop, work()), 5)
    assert cleaned.is_set()


async def test_a_stop_already_set_runs_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    ran = False

    async def work() -> None:
        nonlocal ran
        ran = True

    with pytest.raises(Stopped):
        await unless_stopped(stop, work())
    assert not ran


async def test_failing_work_raises_its_own_error() -> None:
    async def work() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await unless_stopped(asyncio.Event(), work())


async def test_cancelling_the_waiter_cancels_the_work_too() -> None:
    cleaned = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()

    waiter = asyncio.create_task(unless_stopped(asyncio.Event(), work()))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert cleaned.is_set()
