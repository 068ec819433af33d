"""Group commit: many small write units share one transaction, each caller waits for its commit.

Rules: a unit is a coroutine function of an open connection that awaits nothing else, safe to
run again; its result is handed back only after the transaction that ran it has committed
(invariant 1). If a batch fails, each of its units runs again alone, so one bad unit fails only
its own caller; deadlocks and serialization failures never reach a caller (the store runs the
batch again: chat.store.db). One batch at a time, also on PostgreSQL: batches side by side
number a conversation's messages out of the order they were handed in (a later unit's batch can
reach the conversation's row first), and two or three in flight gave no more messages a second
(bench/README.md, "PostgreSQL's share": their rounds wait on this one event loop). While more
units wait, the store begins the next batch's transaction with this one's commit (`more`: one
round trip for both, chat.store.db). A report parked beside the send that names its id, which
another node's transaction beside its own can cause, is applied by the receipts sweep
(chat.domain.statuses).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from chat.store import Database

T = TypeVar("T")
Unit = Callable[[Any], Awaitable[T]]
Item = tuple[Unit, asyncio.Future]
log = structlog.get_logger()


class GroupCommit:
    def __init__(self, db: Database, max_batch: int = 256):
        self.db = db
        self.max_batch = max_batch
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.batches = 0  # committed batches and the units they held, for /metrics (their ratio: how full batches are)
        self.units = 0

    async def run(self, unit: Unit[T]) -> T:
        """Run `unit` in a write transaction and return its result once committed."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="group-commit")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((unit, future))
        return await future

    async def close(self) -> None:
        """Stop; callers still waiting get an error (nothing of theirs was committed)."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while not self._queue.empty():
            _settle(self._queue.get_nowait()[1], error=RuntimeError("didchat is shutting down"))

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)  # one turn of the loop: what the ready tasks queue joins this batch
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[Item]) -> None:
        try:
            results = await self._transaction([unit for unit, _ in batch])
        except asyncio.CancelledError:
            _settle_all(batch, RuntimeError("didchat is shutting down"))
            raise
        except Exception as err:  # noqa: BLE001 - retried one by one below
            await self._failed(batch, err)
            return
        self.batches += 1
        self.units += len(batch)
        for (_, future), result in zip(batch, results):
            _settle(future, result=result)

    async def _failed(self, batch: list[Item], err: Exception) -> None:
        if len(batch) == 1:
            _settle(batch[0][1], error=err)
            return
        log.warning("commit.batch_failed", size=len(batch), error=repr(err))
        for item in batch:
            await self._commit([item])

    async def _transaction(self, units: list[Unit]) -> list:
        return await self.db.write_all(units, more=self._waiting)

    def _waiting(self) -> bool:
        return not self._queue.empty()


def _settle_all(batch: list[Item], error: BaseException) -> None:
    for _, future in batch:
        _settle(future, error=error)


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
