"""The outbox worker: sends what agents wrote, in order per conversation, through outages.

Rules: a message leaves only after every earlier message of its conversation has left or
failed for good; temporary errors (5xx, throttling, network) are retried with jittered
exponential backoff; permanent errors and exhausted retries fail the message with the
provider's words, which the agent sees. Rows live in the database, so a restart resumes them.
"""
from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from functools import partial

import sqlalchemy as sa
import structlog

from chat.commit import GroupCommit
from chat.config import OutboxConfig
from chat.receipts import apply_pending, settle_message, status_payload
from chat.routing import Router
from chat.store import Database, as_utc, utcnow
from chat.store.tables import contacts, conversations, messages, outbox, provider_refs
from gateway import OutboundSms, SendError, Sender, SendResult
from gateway.messages import FAILED

log = structlog.get_logger()


class Outbox:
    def __init__(self, db: Database, commit: GroupCommit, router: Router, senders: dict[str, Sender],
                 config: OutboxConfig, callbacks: dict[str, str | None]):
        self.db, self.commit, self.router = db, commit, router
        self.senders, self.config, self.callbacks = senders, config, callbacks
        self._wake = asyncio.Event()
        self._busy: set[int] = set()  # conversations with a send in flight
        # Rows whose send just ended, with the tick it ended at: a query that started before
        # that may still return them (its snapshot predates the delete), so they are skipped.
        self._ended: dict[int, int] = {}
        self._tick = 0
        self._slots = asyncio.Semaphore(config.concurrency)
        self._sending: set[asyncio.Task] = set()

    def wake(self) -> None:
        """Something was queued: look now rather than at the next due time."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            rows = await self._due()
            for row in rows:
                self._busy.add(row.conversation_id)
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(row))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            await self._sleep(await self._next_due() if not rows else 0.05)

    async def stop(self, grace: float = 10.0) -> None:
        """Let sends in flight settle (a provider that took one must not get it again after a
        restart), then cancel what is left; their rows stay and go out after the restart."""
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=grace)
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _sleep(self, seconds: float | None) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds if seconds is not None else 60)
        except TimeoutError:
            pass

    async def _due(self):
        earlier = outbox.alias("earlier")
        blocked = sa.exists().where(earlier.c.conversation_id == outbox.c.conversation_id, earlier.c.id < outbox.c.id)
        query = (
            sa.select(outbox, messages.c.text, messages.c.sender, messages.c.recipient, messages.c.compliance,
                      contacts.c.opted_out)
            .join(messages, messages.c.id == outbox.c.message_id)
            .join(conversations, conversations.c.id == outbox.c.conversation_id)
            .join(contacts, contacts.c.id == conversations.c.contact_id)
            .where(outbox.c.next_attempt_at <= utcnow(), ~blocked)
            .order_by(outbox.c.id).limit(200)
        )
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

    async def _deliver(self, row) -> None:
        try:
            result = await self._send(row)
            unit = partial(record_sent, row=row, result=result) if isinstance(result, SendResult) else \
                partial(record_failure, row=row, error=result, config=self.config)
            await self.router.push_status(await self.commit.run(unit))
        except Exception:  # noqa: BLE001 - the row stays; it is tried again
            log.exception("outbox.deliver_failed", message_id=row.message_id)
        finally:
            self._ended[row.id] = self._tick
            self._tick += 1
            self._busy.discard(row.conversation_id)
            self._slots.release()
            self.wake()

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


async def record_sent(conn, row, result: SendResult) -> dict | None:
    """The provider took the message: keep its ids, drop the outbox row."""
    refs = [{"connector": row.connector, "provider_id": pid, "message_id": row.message_id, "part": i + 1,
             "status": result.status} for i, pid in enumerate(result.provider_ids)]
    if refs:
        await conn.execute(provider_refs.insert(), refs)
        await apply_pending(conn, row.connector, result.provider_ids)
    await conn.execute(outbox.delete().where(outbox.c.id == row.id))
    return await settle_message(conn, row.message_id)


async def record_failure(conn, row, error: SendError, config: OutboxConfig) -> dict | None:
    """Back off a temporary failure, or fail the message for good."""
    attempts = row.attempts + 1
    if error.temporary and attempts < config.max_attempts:
        delay = min(config.backoff_max_seconds, config.backoff_seconds * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
        await conn.execute(outbox.update().where(outbox.c.id == row.id).values(
            attempts=attempts, last_error=str(error), next_attempt_at=utcnow() + timedelta(seconds=delay)))
        return None
    now = utcnow()
    await conn.execute(outbox.delete().where(outbox.c.id == row.id))
    await conn.execute(messages.update().where(messages.c.id == row.message_id).values(status=FAILED, error=str(error), updated_at=now))
    assigned = await conn.scalar(sa.select(conversations.c.assigned_id).where(conversations.c.id == row.conversation_id))
    return status_payload(row.message_id, row.conversation_id, FAILED, str(error), now, assigned)
