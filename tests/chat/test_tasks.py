"""Workers end when they are cancelled, even where Python 3.11 or a library loses the cancel."""
from __future__ import annotations

import asyncio

import pytest

from chat.workers.tasks import forever, wait_set


async def test_a_cancel_that_lands_as_the_event_is_set_is_not_lost():
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_set(event, 5))
    await asyncio.sleep(0)
    event.set()
    waiting.cancel()  # the same loop iteration: asyncio.wait_for on 3.11 returns True here (gh-86296)
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_wait_set_says_whether_the_event_came():
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_set(event, 5) is True


async def test_a_worker_loop_ends_when_a_library_swallowed_its_cancel():
    rounds = 0

    async def swallowing_call():  # what redis-py's command path does when the reply and the cancel coincide
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return

    async def worker():
        nonlocal rounds
        for _ in forever():
            rounds += 1
            await swallowing_call()

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.01)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert task in done and task.cancelled() and rounds == 1
