"""The outbox worker: sends what agents wrote, in order per conversation, through outages.

Rules: a message leaves only after every earlier message of its conversation has left or
failed for good; temporary errors (5xx, throttling, network) are retried with jittered
exponential backoff; permanent errors and exhausted retries fail the message with the
provider's words, which the agent sees. Rows live in the database, so a restart resumes them.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import sqlalchemy as sa
import structlog
from aiohttp import web

from chat.config import OutboxConfig
from chat.domain.outbox import _due_query, head_of
from chat.domain.statuses import ADD_REF, apply_pending, settle_message, status_payload
from chat.metrics import METRICS, Metrics
from chat.store import Database, as_utc, utcnow
from chat.store.commit import GroupCommit
from chat.store.context import COMMIT, CONFIG, DB
from chat.store.fast import hot
from chat.store.tables import conversations, messages, outbox
from chat.workers.routing import ROUTER, Router
from chat.workers.tasks import STOPPING, cancel
from chat.workers.wake import OUTBOX, WAKE, Wake
from gateway import OutboundSms, Sender, SendError, SendResult
from gateway.messages import FAILED

log = structlog.get_logger()
SCAN_RETRY_SECONDS = 1.0  # after a failed scan (the database is down): try again soon, not in a tight loop


class Outbox:
    """Sends outbox rows: one chain per conversation (its rows one after another), many chains at once.

    A chain starts when an agent's message is the head of its conversation's outbox, or when the
    scan finds a due head (at start-up, when woken, and when a retry falls due); each send's
    commit also reads the conversation's next head, so a busy conversation needs no extra query.
    Chains in flight are capped per connector: an SMPP connector's window x 2 (the client keeps
    the window), `outbox.concurrency` for HTTP connectors.
    """

    def __init__(self, db: Database, commit: GroupCommit, router: Router, senders: dict[str, Sender],
                 config: OutboxConfig, callbacks: dict[str, str | None], windows: dict[str, int] | None = None,
                 metrics: Metrics | None = None, wake: Wake | None = None):
        self.db, self.commit, self.router, self.metrics = db, commit, router, metrics
        self.senders, self.config, self.callbacks = senders, config, callbacks
        self._wakes = wake or Wake()
        self._wake = self._wakes.event(OUTBOX)
        self._busy: set[int] = set()  # conversations with a chain running
        self._again: set[int] = set()  # busy conversations offered a new head meanwhile
        # Rows whose send just ended, with the tick it ended at: a scan that started before
        # that may still return them (its snapshot predates the delete), so they are skipped.
        self._ended: dict[int, int] = {}
        self._tick = 0
        windows = windows or {}
        self._slots = {name: asyncio.Semaphore(max(config.concurrency, 2 * windows.get(name, 0))) for name in senders}
        self._default_slots = asyncio.Semaphore(config.concurrency)
        self._sending: set[asyncio.Task] = set()

    def wake(self) -> None:
        """Something was queued: scan now rather than at the next due time (on every node)."""
        self._wakes(OUTBOX)

    def offer(self, head) -> None:
        """A conversation's head row, just committed: send it now unless its chain is running."""
        if head.conversation_id in self._busy:
            self._again.add(head.conversation_id)
        else:
            self._start(head.conversation_id, head)

    async def run(self) -> None:
        while True:
            try:
                await self._scan()
            except Exception as err:  # noqa: BLE001 - a database outage must not end the worker
                log.warning("outbox.scan_failed", error=type(err).__name__)
                await self._sleep(SCAN_RETRY_SECONDS)

    async def _scan(self) -> None:
        self._wake.clear()
        for row in await self._due():
            if row.conversation_id not in self._busy:
                self._start(row.conversation_id, row)
        await self._sleep(await self._next_due())

    async def stop(self, grace: float = 10.0) -> None:
        """Let sends in flight settle (a provider that took one must not get it again after a
        restart), then cancel what is left; their rows stay and go out after the restart."""
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=grace)
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    def _start(self, conversation_id: int, row) -> None:
        self._busy.add(conversation_id)
        task = asyncio.create_task(self._chain(conversation_id, row))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _chain(self, conversation_id: int, row) -> None:
        """Send the conversation's rows in order while the head is due."""
        try:
            while True:
                if row is None:
                    self._again.discard(conversation_id)
                    row = await self.commit.run(partial(head_of, conversation_id=conversation_id))
                if row is None or as_utc(row.next_attempt_at) > utcnow():
                    if conversation_id in self._again:
                        row = None
                        continue
                    if row is not None:
                        self.wake()  # a retry later: the scan sleeps until it is due
                    return
                row = await self._deliver(row)
        except Exception:  # noqa: BLE001 - the rows stay; the scan finds them
            log.exception("outbox.chain_failed", conversation_id=conversation_id)
            self.wake()
        finally:
            self._busy.discard(conversation_id)
            self._again.discard(conversation_id)

    async def _sleep(self, seconds: float | None) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds if seconds is not None else 60)
        except TimeoutError:
            pass

    async def _due(self):
        earlier = outbox.alias("earlier")
        blocked = sa.exists().where(earlier.c.conversation_id == outbox.c.conversation_id, earlier.c.id < outbox.c.id)
        query = _due_query().where(outbox.c.next_attempt_at <= utcnow(), ~blocked).order_by(outbox.c.id).limit(200)
        started = self._tick
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        fresh = [r for r in rows if r.conversation_id not in self._busy and r.id not in self._ended]
        self._ended = {row_id: tick for row_id, tick in self._ended.items() if tick >= started}
        return fresh

    async def _next_due(self) -> float | None:
        async with self.db.read() as conn:
            when = await conn.scalar(sa.select(sa.func.min(outbox.c.next_attempt_at)))
        if when is None:
            return None
        return max(0.05, (as_utc(when) - utcnow()).total_seconds())

    async def _deliver(self, row):
        """Send one row and record the outcome; the conversation's next head (None if none)."""
        slots = self._slots.get(row.connector, self._default_slots)
        try:
            async with slots:
                result = await self._send(row)
            unit = partial(record_sent, row=row, result=result) if isinstance(result, SendResult) else \
                partial(record_failure, row=row, error=result, config=self.config)
            status, head = await self.commit.run(unit)
            if self.metrics is not None:
                self.metrics.outbound(row.connector, outcome(result, row.attempts + 1, self.config))
            await self.router.push_status(status)
            return head
        finally:
            self._ended[row.id] = self._tick
            self._tick += 1

    async def _send(self, row) -> SendResult | SendError:
        if row.opted_out and not row.compliance:  # opt-out is enforced here, whoever queued the message
            return SendError("the customer opted out of SMS (they texted STOP); not sent", temporary=False, code="OPTED_OUT")
        sender = self.senders.get(row.connector)
        if sender is None:
            return SendError(f"connector {row.connector!r} is not configured", temporary=False)
        sms = OutboundSms(row.connector, row.sender, row.recipient, row.text, str(row.message_id),
                          self.callbacks.get(row.connector))
        try:
            return await sender.send(sms)
        except SendError as err:
            log.warning("outbox.send_error", message_id=row.message_id, error=str(err), temporary=err.temporary)
            return err


DROP = hot(outbox.delete().where(outbox.c.id == sa.bindparam("oid")))


async def record_sent(conn, row, result: SendResult) -> tuple[dict | None, object]:
    """The provider took the message: keep its ids, drop the outbox row; the status push and the next head."""
    for i, pid in enumerate(result.provider_ids):
        await conn.execute(ADD_REF, {"connector": row.connector, "provider_id": pid, "message_id": row.message_id,
                                     "part": i + 1, "status": result.status})
    if result.provider_ids:
        await apply_pending(conn, row.connector, result.provider_ids)
    await conn.execute(DROP, {"oid": row.id})
    return await settle_message(conn, row.message_id), await head_of(conn, row.conversation_id)


def outcome(result: SendResult | SendError, attempts: int, config: OutboxConfig) -> str:
    """What became of one send: sent, retried (a temporary error with attempts left) or failed."""
    if isinstance(result, SendResult):
        return "sent"
    return "retried" if result.temporary and attempts < config.max_attempts else "failed"


async def record_failure(conn, row, error: SendError, config: OutboxConfig) -> tuple[dict | None, object]:
    """Back off a temporary failure, or fail the message for good; the status push and the next head."""
    attempts = row.attempts + 1
    if outcome(error, attempts, config) == "retried":
        delay = min(config.backoff_max_seconds, config.backoff_seconds * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
        await conn.execute(outbox.update().where(outbox.c.id == row.id).values(
            attempts=attempts, last_error=str(error), next_attempt_at=utcnow() + timedelta(seconds=delay)))
        return None, await head_of(conn, row.conversation_id)
    now = utcnow()
    await conn.execute(DROP, {"oid": row.id})
    await conn.execute(messages.update().where(messages.c.id == row.message_id).values(status=FAILED, error=str(error), updated_at=now))
    assigned = await conn.scalar(sa.select(conversations.c.assigned_id).where(conversations.c.id == row.conversation_id))
    status = status_payload(row.message_id, row.conversation_id, FAILED, str(error), now, assigned)
    return status, await head_of(conn, row.conversation_id)


OUTBOX_WORKER = web.AppKey("outbox", Outbox)


def outbox_context(senders: Callable[[web.Application], dict[str, Sender]], windows: Callable[[web.Application], dict[str, int]],
                   callbacks: dict[str, str | None]):
    """The outbox worker over `senders(app)` (built once the connectors run). It stops first:
    sends in flight settle while the SMPP links are still bound, within the shutdown budget."""

    async def context(app: web.Application):
        built = senders(app)
        outbox = app[OUTBOX_WORKER] = Outbox(app[DB], app[COMMIT], app[ROUTER], built, app[CONFIG].outbox, callbacks,
                                             windows=windows(app), metrics=app[METRICS], wake=app[WAKE])
        scan = asyncio.create_task(outbox.run(), name="outbox")
        try:
            yield
        finally:
            stopping = app[STOPPING]
            stopping.begin()
            await cancel([scan])  # no new scans of the outbox
            await outbox.stop(grace=max(0.5, stopping.left()))
            for sender in built.values():
                await sender.close()

    return context
