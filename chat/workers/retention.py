"""Deleting what is kept no longer: messages past their number's `retention_days` (with the files they
attached), audit records past `retention.audit_days`, uploads no send attached within a day
(chat.domain.erasure, chat.domain.audit, chat.domain.uploads).

Rules: every node looks every `retention.check_seconds` (and soon after it starts); the deletes are
the same rows whichever node runs them, so two nodes at once delete once (unsent uploads: a batch per
transaction, of rows no other node's sweep holds). A failure is logged and the next look tries again.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import sqlalchemy as sa
import structlog
from aiohttp import web

from chat.domain.audit import prune
from chat.domain.erasure import expire_messages
from chat.domain.uploads import SWEEP_BATCH, expire_unsent
from chat.store import utcnow
from chat.store.commit import GroupCommit
from chat.store.context import COMMIT, CONFIG
from chat.workers.running import DIRECTORY, RunningConfig
from chat.workers.tasks import forever, running

log = structlog.get_logger()
FIRST_LOOK_SECONDS = 5.0


async def sweep(commit: GroupCommit, config: RunningConfig, audit_days: float) -> tuple[int, int]:
    """One look: (messages, audit records) deleted; unsent uploads too."""
    days = {n.number: n.retention_days for n in config.config.access_numbers if n.retention_days}
    messages = await commit.run(partial(expire_messages, days=days)) if days else 0
    records = await commit.run(partial(prune, before=utcnow() - timedelta(days=audit_days)))
    unsent = await sweep_unsent(commit)
    if messages or records or unsent:
        log.info("retention.swept", messages=messages, audit_records=records, unsent_uploads=unsent)
    return messages, records


async def sweep_unsent(commit: GroupCommit) -> int:
    """Delete every upload no send attached within a day, a batch per transaction; how many."""
    total, deleted = 0, SWEEP_BATCH
    while deleted == SWEEP_BATCH:
        deleted = await commit.run(expire_unsent)
        total += deleted
    return total


async def _loop(app: web.Application) -> None:
    settings = app[CONFIG].retention
    await asyncio.sleep(FIRST_LOOK_SECONDS)
    for _ in forever():
        try:
            await sweep(app[COMMIT], app[DIRECTORY], settings.audit_days)
        except (sa.exc.SQLAlchemyError, OSError) as err:
            log.warning("retention.failed", error=type(err).__name__)
        await asyncio.sleep(settings.check_seconds)


async def retention_context(app: web.Application):
    async with running(_loop(app), "retention"):
        yield
