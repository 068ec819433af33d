"""The CRM activity outbox's rows (units of work): claimed by one node, removed once the CRM took them.

Rules: a due, free row is claimed by one node (chat.domain.claims) and posted by it alone; its
outcome (done, or a retry later, which releases it) is recorded only while that node still holds
the claim. Activities are queued by chat.domain.effects, once per idempotency key.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from chat.domain import claims
from chat.domain.claims import Claim, held
from chat.store import utcnow
from chat.store.tables import crm_outbox

DUE = crm_outbox.c.next_attempt_at <= sa.bindparam("now")
CLAIM_DUE = claims.claim_statement(crm_outbox, DUE, order_by=(crm_outbox.c.id,), limit=50)
DONE = crm_outbox.delete().where(crm_outbox.c.id == sa.bindparam("rid"), held(crm_outbox))
RETRY = crm_outbox.update().where(crm_outbox.c.id == sa.bindparam("rid"), held(crm_outbox)).values(
    attempts=crm_outbox.c.attempts + 1, last_error=sa.bindparam("error_text"), next_attempt_at=sa.bindparam("retry_at"),
    **claims.UNCLAIMED)


async def claim_due(conn, claim: Claim) -> list:
    """Claim the due, free activities (up to 50), oldest first; the rows, each with its claim_token."""
    got = (await conn.execute(CLAIM_DUE, claim.params())).all()
    if not got:
        return []
    query = sa.select(crm_outbox).where(crm_outbox.c.id.in_([row.id for row in got])).order_by(crm_outbox.c.id)
    return (await conn.execute(query)).all()


async def next_due(conn) -> datetime | None:
    """When an activity may next be claimed: its next attempt, or the end of the lease that holds it."""
    now = utcnow()
    when = sa.case((crm_outbox.c.claimed_until > now, crm_outbox.c.claimed_until), else_=crm_outbox.c.next_attempt_at)
    return await conn.scalar(sa.select(sa.func.min(when)))


async def done(conn, row_id: int, token: str) -> bool:
    """The CRM took it: remove it (if this claim still holds it)."""
    return (await conn.execute(DONE, {"rid": row_id, "token": token})).rowcount == 1


async def retry(conn, row_id: int, token: str, error: str, delay: float) -> bool:
    """Try again after `delay` seconds, on whichever node is free then (if this claim still holds it)."""
    values = {"rid": row_id, "token": token, "error_text": error, "retry_at": utcnow() + timedelta(seconds=delay)}
    return (await conn.execute(RETRY, values)).rowcount == 1


async def renew_claims(conn, tokens: list[str], until: datetime) -> int:
    return await claims.renew(conn, crm_outbox, tokens, until)


async def release_claims(conn, tokens: list[str]) -> None:
    await claims.release(conn, crm_outbox, tokens)


async def release_every_claim(conn) -> None:
    await claims.release_all(conn, crm_outbox)
