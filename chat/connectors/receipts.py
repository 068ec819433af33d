"""The sweep of status reports whose message id never arrived (units in chat.domain.statuses)."""
from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from functools import partial

import structlog
from aiohttp import web

from chat.config import Config
from chat.domain.statuses import EXPIRE_BATCH, expire_reports
from chat.store import utcnow
from chat.store.context import COMMIT

log = structlog.get_logger()
SWEEP_SECONDS = 300  # the longest pause between sweeps (shorter for a shorter expiry)


async def sweep(commit, keep: timedelta) -> int:
    """Delete every parked report older than `keep`, a batch per transaction; how many went."""
    total, deleted = 0, EXPIRE_BATCH
    while deleted == EXPIRE_BATCH:
        deleted = await commit.run(partial(expire_reports, before=utcnow() - keep))
        total += deleted
    return total


async def sweep_forever(app: web.Application, keep: timedelta) -> None:
    """Sweep now (a restart may find a backlog) and then every few minutes."""
    every = min(SWEEP_SECONDS, keep.total_seconds() / 4)
    while True:
        try:
            if deleted := await sweep(app[COMMIT], keep):
                log.info("receipts.expired", reports=deleted, hours=keep.total_seconds() / 3600)
        except Exception as err:  # noqa: BLE001 - the next sweep tries again
            log.warning("receipts.sweep_failed", error=type(err).__name__)
        await asyncio.sleep(every)


async def _sweeping(app: web.Application, keep: timedelta):
    task = asyncio.create_task(sweep_forever(app, keep), name="status-expiry")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application, config: Config) -> None:
    """The sweep of parked reports older than `unknown_status_hours`, as a cleanup context."""
    keep = timedelta(hours=config.unknown_status_hours)
    app.cleanup_ctx.append(partial(_sweeping, keep=keep))
