"""The CRM activity outbox: each activity a scenario saves reaches the CRM once it acknowledges.

Rules: an activity is stored once per idempotency key (chat.domain.effects) and posted as JSON with
that key in `Idempotency-Key` until the CRM answers 2xx, with jittered backoff through outages;
only then is it removed. Each row is claimed by one node (chat.domain.crm_outbox), renewed while
it posts and free again after `cluster.claim_seconds` if that node died. A CRM that honours the
key sees it exactly once.
"""
from __future__ import annotations

import random
from functools import partial

import aiohttp
import structlog
from aiohttp import web

from chat.config import ClusterConfig
from chat.domain.claims import Holding
from chat.domain.crm_outbox import claim_due, done, next_due, release_claims, release_every_claim, renew_claims, retry
from chat.store import Database, as_utc, utcnow
from chat.store.context import COMMIT, CONFIG, DB
from chat.store.lease import holder_name
from chat.workers.tasks import running, wait_set
from chat.workers.wake import CRM, WAKE, Wake

log = structlog.get_logger()
BACKOFF_MAX = 300.0
SCAN_RETRY_SECONDS = 1.0  # after a failed round (the database is down): try again soon, not in a tight loop
ROUND = 50  # activities claimed at once (chat.domain.crm_outbox)


class CrmOutbox:
    def __init__(self, db: Database, commit, http: aiohttp.ClientSession, backoff: float = 1.0, wake: Wake | None = None,
                 cluster: ClusterConfig | None = None):
        self.db, self.commit, self.http, self.backoff = db, commit, http, backoff
        cluster = cluster or ClusterConfig()
        self.holder = holder_name(cluster.node_name)
        self.holding = Holding(commit, renew_claims, cluster.claim_seconds, min(cluster.heartbeat_seconds, cluster.claim_seconds / 3))
        self._max_pause = min(60.0, cluster.claim_seconds)
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
            await wait_set(self._wake, min(pause, self._max_pause))

    async def _round(self) -> float:
        """Claim what is due and post it; how long until the next row may be claimed."""
        self._wake.clear()
        rows = await self.commit.run(partial(claim_due, claim=self.holding.claim(self.holder)))
        self.holding.tokens.update(row.claim_token for row in rows)
        try:
            for row in rows:
                await self._deliver(row)
        finally:
            await self._let_go()
        return 0.0 if len(rows) == ROUND else await self._next_due()

    async def _let_go(self) -> None:
        """Release what a round claimed and did not finish (it was cancelled, or the database failed)."""
        left, self.holding.tokens = sorted(self.holding.tokens), set()
        if left:
            try:
                await self.commit.run(partial(release_claims, tokens=left))
            except Exception as err:  # noqa: BLE001 - they lapse after claim_seconds instead
                log.warning("crm.release_failed", error=type(err).__name__, rows=len(left))

    async def _next_due(self) -> float:
        async with self.db.read() as conn:
            when = await next_due(conn)
        return 60.0 if when is None else max(0.05, (as_utc(when) - utcnow()).total_seconds())

    async def _deliver(self, row) -> None:
        error = await self._post(row)
        if error is None:
            if await self.commit.run(partial(done, row_id=row.id, token=row.claim_token)):
                log.info("crm.activity_saved", key=row.key)
            else:
                log.warning("crm.claim_lost", key=row.key)  # another node took it over and posts it too (same key)
        else:
            delay = min(BACKOFF_MAX, self.backoff * 2 ** row.attempts) * random.uniform(0.8, 1.2)
            await self.commit.run(partial(retry, row_id=row.id, token=row.claim_token, error=error, delay=delay))
            log.warning("crm.activity_retry", key=row.key, error=error, in_seconds=round(delay, 2))
        self.holding.tokens.discard(row.claim_token)

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


CRM_OUTBOX = web.AppKey("crm_outbox", CrmOutbox)
HTTP = web.AppKey("http", aiohttp.ClientSession)  # one client for scenario calls and CRM activities


async def http_context(app: web.Application):
    async with aiohttp.ClientSession() as http:
        app[HTTP] = http
        yield


async def crm_context(app: web.Application):
    """The CRM outbox's worker, for as long as the app runs (on SQLite, one process: claims left
    by a previous run are freed first)."""
    crm = app[CRM_OUTBOX] = CrmOutbox(app[DB], app[COMMIT], app[HTTP], wake=app[WAKE], cluster=app[CONFIG].cluster)
    if app[DB].is_sqlite:
        await app[COMMIT].run(release_every_claim)
    async with running(crm.holding.keep(), "crm-claims"), running(crm.run(), "crm"):
        yield
