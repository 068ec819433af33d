"""Workers as tasks that live as long as their part of the app.

Rules: a worker is cancelled when its part stops and given a bounded time to end; one stuck in
a driver call is logged with the frame it waits in (`didchat.worker_stuck`) and left behind, so
it cannot hold the exit past the shutdown budget; one that died of an error is logged, never re-raised.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass

import structlog
from aiohttp import web

log = structlog.get_logger()
CANCEL_WAIT_SECONDS = 3.0  # a worker stuck in a driver call must not hold the exit past the budget


@contextlib.asynccontextmanager
async def running(coro: Coroutine, name: str) -> AsyncIterator[asyncio.Task]:
    """Run `coro` as the task `name` inside the block; cancelled (a bounded wait) when the block ends."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        await cancel([task])


async def cancel(tasks: list[asyncio.Task]) -> None:
    """Cancel workers and wait for them, a bounded time; one that died of an error is logged, not re-raised."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    done, stuck = await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
    for task in stuck:
        log.warning("didchat.worker_stuck", worker=task.get_name(), stack=where(task))
    for task in done:
        error = None if task.cancelled() else task.exception()
        if isinstance(error, Exception):
            log.warning("didchat.worker_failed", worker=task.get_name(), error=type(error).__name__)


def forever() -> Iterator[None]:
    """`for _ in forever():` the loop of a worker whose calls go through a library: it ends when
    the task is cancelled, even where the library swallowed the CancelledError.

    Python 3.11's asyncio.wait_for returns the inner result when the cancel lands in the loop
    iteration that result arrives in (cpython gh-86296, fixed in 3.12), and redis-py sends every
    command through it: a cluster link that kept beating after its node stopped hung a test's
    teardown (about 1 stop in 100 under load, reproduced outside the suite)."""
    task = asyncio.current_task()
    while task is None or not task.cancelling():
        yield
    raise asyncio.CancelledError


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait up to `timeout` seconds for `event`; whether it is set. Not asyncio.wait_for, which on
    Python 3.11 loses a cancel that lands as the event is set (see `forever`)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


def where(task: asyncio.Task) -> str:
    """The innermost frame a task waits in (file:line function), for the log."""
    frames = task.get_stack(limit=20)
    if not frames:
        return "?"
    code = frames[-1].f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{frames[-1].f_lineno} {code.co_name}"


@dataclass
class Stopping:
    """Whether shutdown began, and how much of its time (`seconds`) is left."""

    seconds: float
    began_at: float | None = None

    @property
    def began(self) -> bool:
        return self.began_at is not None

    def begin(self) -> None:
        if self.began_at is None:
            self.began_at = time.monotonic()

    def left(self) -> float:
        """Seconds of the shutdown budget left (all of it while running)."""
        if self.began_at is None:
            return self.seconds
        return max(0.0, self.seconds - (time.monotonic() - self.began_at))


STOPPING = web.AppKey("stopping", Stopping)
