"""The CRM activity outbox: each activity a scenario saves reaches the CRM once it acknowledges.

Rules: an activity is stored once per idempotency key (chat.domain.effects) and posted as JSON with
that key in `Idempotency-Key` until the CRM answers 2xx, with jittered backoff through outages;
only then is it removed. A CRM that honours the key sees it exactly once.
"""
from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from functools import partial

import aiohttp
import sqlalchemy as sa
import structlog
from aiohttp import web

from chat.store import Database, as_utc, utcnow
from chat.store.context import COMMIT, DB
from chat.store.tables import crm_outbox
from chat.workers.tasks import running
from chat.workers.wake import CRM, WAKE, Wake

log = structlog.get_logger()
BACKOFF_MAX = 300.0
SCAN_RETRY_SECONDS = 1.0  # after a failed round (the database is down): try again soon, not in a tight loop


class CrmOutbox:
    def __init__(self, db: Database, commit, http: aiohttp.ClientSession, backoff: float = 1.0, wake: Wake | None = None):
        self.db, self.commit, self.http, self.backoff = db, commit, http, backoff
        self._wakes = wake or Wake()
        self._wake = self._wakes.event(CRM)

    def wake(self) -> None:
        self._wakes(CRM)

    async def run(self) -> None:
        while True:
            try:
                pause = await self._round()
            except Exception as err:  # noqa: BLE001 - a database outage must not end the worker
                log.warning("crm.scan_failed", error=type(err).__name__)
                pause = SCAN_RETRY_SECONDS
            try:
                await asyncio.wait_for(self._wake.wait(), pause)
            except TimeoutError:
                pass

    async def _round(self) -> float:
        """Post what is due; how long until the next row falls due."""
        self._wake.clear()
        for row in await self._due():
            await self._deliver(row)
        return await self._next_due()

    async def _due(self):
        async with self.db.read() as conn:
            query = sa.select(crm_outbox).where(crm_outbox.c.next_attempt_at <= utcnow()).order_by(crm_outbox.c.id).limit(50)
            return (await conn.execute(query)).all()

    async def _next_due(self) -> float:
        async with self.db.read() as conn:
            when = await conn.scalar(sa.select(sa.func.min(crm_outbox.c.next_attempt_at)))
        return 60.0 if when is None else max(0.05, (as_utc(when) - utcnow()).total_seconds())

    async def _deliver(self, row) -> None:
        error = await self._post(row)
        if error is None:
            await self.commit.run(partial(_done, row_id=row.id))
            log.info("crm.activity_saved", key=row.key)
            return
        delay = min(BACKOFF_MAX, self.backoff * 2 ** row.attempts) * random.uniform(0.8, 1.2)
        await self.commit.run(partial(_retry, row_id=row.id, error=error, delay=delay))
        log.warning("crm.activity_retry", key=row.key, error=error, in_seconds=round(delay, 2))

    async def _post(self, row) -> str | None:
        headers = {**(row.headers or {}), "Idempotency-Key": row.key}
        try:
            async with self.http.post(row.url, json=row.body, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=15)) as answer:
                if 200 <= answer.status < 300:
                    return None
                return f"HTTP {answer.status}: {(await answer.text())[:200]}"
        except (aiohttp.ClientError, TimeoutError) as err:
            return f"{type(err).__name__}: {err}"


async def _done(conn, row_id: int) -> None:
    await conn.execute(crm_outbox.delete().where(crm_outbox.c.id == row_id))


async def _retry(conn, row_id: int, error: str, delay: float) -> None:
    await conn.execute(crm_outbox.update().where(crm_outbox.c.id == row_id).values(
        attempts=crm_outbox.c.attempts + 1, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=delay)))


CRM_OUTBOX = web.AppKey("crm_outbox", CrmOutbox)
HTTP = web.AppKey("http", aiohttp.ClientSession)  # one client for scenario calls and CRM activities


async def http_context(app: web.Application):
    async with aiohttp.ClientSession() as http:
        app[HTTP] = http
        yield


async def crm_context(app: web.Application):
    """The CRM outbox's worker, for as long as the app runs."""
    crm = app[CRM_OUTBOX] = CrmOutbox(app[DB], app[COMMIT], app[HTTP], wake=app[WAKE])
    async with running(crm.run(), "crm"):
        yield
