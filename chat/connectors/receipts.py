"""The sweeps of parked status reports (units in chat.domain.statuses): those whose message id
never arrived are deleted after `unknown_status_hours`; those whose id arrived in a transaction
beside their own (another node's, or a batch in flight beside theirs) are applied within
RESCUE_SECONDS and their status pushed."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import structlog
from aiohttp import web

from chat.config import Config
from chat.domain.statuses import EXPIRE_BATCH, STRANDED_BATCH, apply_stranded, expire_reports, stranded
from chat.store import utcnow
from chat.store.context import COMMIT, DB
from chat.workers.routing import ROUTER
from chat.workers.tasks import running

log = structlog.get_logger()
SWEEP_SECONDS = 300  # the longest pause between sweeps (shorter for a shorter expiry)
RESCUE_SECONDS = 2.0  # how often each node looks for stranded reports (one indexed read when there are none)


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


async def rescue(app: web.Application) -> int:
    """Apply every stranded report now and push what moved; how many messages moved."""
    moved, full = 0, True
    while full:
        async with app[DB].read() as conn:
            if not await stranded(conn):
                break
        pushes: list[dict] = await app[COMMIT].run(apply_stranded)
        for push in pushes:
            await app[ROUTER].push_status(push)
        moved, full = moved + len(pushes), len(pushes) == STRANDED_BATCH
    return moved


async def rescue_forever(app: web.Application) -> None:
    while True:
        await asyncio.sleep(RESCUE_SECONDS)
        try:
            if moved := await rescue(app):
                log.info("receipts.rescued", messages=moved)
        except Exception as err:  # noqa: BLE001 - the next look tries again
            log.warning("receipts.rescue_failed", error=type(err).__name__)


async def _sweeping(app: web.Application, keep: timedelta):
    async with running(sweep_forever(app, keep), "status-expiry"), running(rescue_forever(app), "status-rescue"):
        yield


def setup(app: web.Application, config: Config) -> None:
    """The sweep of parked reports older than `unknown_status_hours`, as a cleanup context."""
    keep = timedelta(hours=config.unknown_status_hours)
    app.cleanup_ctx.append(partial(_sweeping, keep=keep))
