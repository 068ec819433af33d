"""The outbox's rows (units of work): which row of a conversation may leave, who sends it, what became of it.

Rules:
- Only a conversation's head (its first row) may be claimed, when it is due and free
  (chat.domain.claims): one node sends it, and the order per conversation holds across nodes,
  since a row behind a claimed head is not a head.
- An outcome (sent, backed off, failed for good) is recorded only while the sender still holds
  the row's claim; a node whose claim was taken over records nothing.
- Recording a send claims the conversation's next head for the same node in the same
  transaction, so a busy conversation needs no extra query and no other node can slip in.
- A temporary failure releases the row with its next attempt time (no sooner than the provider's
  Retry-After): whichever node is free then retries it (never two at once).
- A refusal the provider gives because the recipient opted out with it (Twilio's 21610) fails the
  message and records the opt-out for the number it was sent from, as a STOP texted to it would.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import sqlalchemy as sa

from chat.config import OutboxConfig
from chat.domain import claims
from chat.domain.claims import Claim, claim_one_statement, held
from chat.domain.optouts import opted_out_of, record_opt_out
from chat.domain.statuses import ADD_REF, apply_pending, settle_message, status_payload
from chat.store import utcnow
from chat.store.tables import contacts, conversations, messages, outbox
from gateway import SendError, SendResult
from gateway.messages import FAILED

# The row a send needs: the outbox entry, its message's text, addresses and attachments, the contact's opt-out.
DUE_COLUMNS = (outbox, messages.c.text, messages.c.sender, messages.c.recipient, messages.c.compliance, messages.c.media,
               opted_out_of(contacts.c.id, messages.c.sender).label("opted_out"))


def _due_query():
    return (sa.select(*DUE_COLUMNS)
            .join(messages, messages.c.id == outbox.c.message_id)
            .join(conversations, conversations.c.id == outbox.c.conversation_id)
            .join(contacts, contacts.c.id == conversations.c.contact_id))


_earlier = outbox.alias("earlier")
IS_HEAD = ~sa.exists().where(_earlier.c.conversation_id == outbox.c.conversation_id, _earlier.c.id < outbox.c.id)
DUE = outbox.c.next_attempt_at <= sa.bindparam("now")

# A conversation's first outbox row (the only one that may leave now).
HEAD_OF = _due_query().where(outbox.c.conversation_id == sa.bindparam("cid")).order_by(outbox.c.id).limit(1)
DUE_BY_ID = _due_query().where(outbox.c.id == sa.bindparam("oid"))
CLAIM_HEAD = claim_one_statement(outbox, sa.and_(outbox.c.conversation_id == sa.bindparam("cid"), DUE, IS_HEAD))
DROP_HELD = outbox.delete().where(outbox.c.id == sa.bindparam("oid"), held(outbox))
BACK_OFF = outbox.update().where(outbox.c.id == sa.bindparam("oid"), held(outbox)).values(
    attempts=sa.bindparam("tries"), last_error=sa.bindparam("error_text"), next_attempt_at=sa.bindparam("retry_at"),
    **claims.UNCLAIMED)


async def head_of(conn, conversation_id: int):
    return (await conn.execute(HEAD_OF, {"cid": conversation_id})).first()


async def claim_head(conn, conversation_id: int, claim: Claim):
    """Claim the conversation's head if it is due and free; the row a send needs (with its claim_token), or None."""
    got = (await conn.execute(CLAIM_HEAD, {**claim.params(), "cid": conversation_id})).first()
    return None if got is None else (await conn.execute(DUE_BY_ID, {"oid": got.id})).first()


async def claim_due(conn, claim: Claim, limit: int, blocked: tuple[str, ...] = ()) -> list[int]:
    """Claim up to `limit` due, free heads, oldest first, but none of the `blocked` connectors' (another
    node sends those); their ids. (Their rows are read apart, by `claimed`: in the write batch a read
    across four tables would wait for every unit that touched one of them.)"""
    where = sa.and_(DUE, IS_HEAD, outbox.c.connector.not_in(blocked)) if blocked else sa.and_(DUE, IS_HEAD)
    return [row.id for row in await claims.claim(conn, outbox, where, claim, order_by=(outbox.c.id,), limit=limit)]


async def claimed(conn, ids: list[int]) -> list:
    """The rows sends need (with their claim_token), of these outbox ids, oldest first."""
    if not ids:
        return []
    return (await conn.execute(_due_query().where(outbox.c.id.in_(ids)).order_by(outbox.c.id))).all()


async def next_due(conn, blocked: tuple[str, ...] = ()) -> datetime | None:
    """When a head may next be claimed: its next attempt, or the end of the lease that holds it."""
    now = utcnow()
    when = sa.case((outbox.c.claimed_until > now, outbox.c.claimed_until), else_=outbox.c.next_attempt_at)
    query = sa.select(sa.func.min(when)).where(IS_HEAD)
    if blocked:
        query = query.where(outbox.c.connector.not_in(blocked))
    return await conn.scalar(query)


async def renew_claims(conn, tokens: list[str], until: datetime) -> int:
    return await claims.renew(conn, outbox, tokens, until)


async def release_claims(conn, tokens: list[str]) -> None:
    await claims.release(conn, outbox, tokens)


async def release_every_claim(conn) -> None:
    await claims.release_all(conn, outbox)


async def record_sent(conn, row, result: SendResult, claim: Claim) -> tuple[dict | None, object] | None:
    """The provider took the message: keep its ids, drop the outbox row; the status push and the next head
    (claimed), or None when this node's claim was taken over (the outcome is the new holder's to record)."""
    if (await conn.execute(DROP_HELD, {"oid": row.id, "token": row.claim_token})).rowcount == 0:
        return None
    for i, pid in enumerate(result.provider_ids):
        await conn.execute(ADD_REF, {"connector": row.connector, "provider_id": pid, "message_id": row.message_id,
                                     "part": i + 1, "status": result.status})
    if result.provider_ids:
        await apply_pending(conn, row.connector, result.provider_ids)
    return await settle_message(conn, row.message_id), await claim_head(conn, row.conversation_id, claim)


def outcome(result: SendResult | SendError, attempts: int, config: OutboxConfig) -> str:
    """What became of one send: sent, retried (a temporary error with attempts left) or failed."""
    if isinstance(result, SendResult):
        return "sent"
    return "retried" if result.temporary and attempts < config.max_attempts else "failed"


async def record_failure(conn, row, error: SendError, config: OutboxConfig, claim: Claim) -> tuple[dict | None, object] | None:
    """Back off a temporary failure (the row is released), or fail the message for good; the status push and
    the next head (claimed), or None when this node's claim was taken over."""
    attempts = row.attempts + 1
    held_row = {"oid": row.id, "token": row.claim_token}
    if outcome(error, attempts, config) == "retried":
        delay = min(config.backoff_max_seconds, config.backoff_seconds * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
        delay = max(delay, error.retry_after or 0.0)  # the provider said when to come back (429's Retry-After)
        values = {**held_row, "tries": attempts, "error_text": str(error), "retry_at": utcnow() + timedelta(seconds=delay)}
        return (None, None) if (await conn.execute(BACK_OFF, values)).rowcount == 1 else None
    if (await conn.execute(DROP_HELD, held_row)).rowcount == 0:
        return None
    now = utcnow()
    await conn.execute(messages.update().where(messages.c.id == row.message_id).values(status=FAILED, error=str(error), updated_at=now))
    conv = (await conn.execute(sa.select(conversations.c.assigned_id, conversations.c.contact_id)
                               .where(conversations.c.id == row.conversation_id))).one()
    assigned = conv.assigned_id
    if error.opt_out:  # the provider refused: the customer opted out with it (texted STOP to it) from this number
        await record_opt_out(conn, conv.contact_id, row.sender, True, "number")
    status = status_payload(row.message_id, row.conversation_id, FAILED, str(error), now, assigned)
    return status, await claim_head(conn, row.conversation_id, claim)
