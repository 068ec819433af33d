"""Opt-outs per sender number (units' helpers): a STOP to one of our numbers stops that number only,
or all of them with `opt_out_scope: account`.

Rules:
- An SMS to a contact from number N is refused when they opted out of N or of all numbers ("*"):
  the agent's send, a scenario's reply and, whoever queued it, the outbox (compliance confirmations
  excepted).
- START (any opt-in) to number N lifts the opt-out of N and the account-wide one; with the account
  scope it lifts every one of the contact's.
- contacts.opted_out stays the summary: true while any opt-out of the contact stands.
"""
from __future__ import annotations

import sqlalchemy as sa

from chat.store import utcnow
from chat.store.tables import contacts, opt_outs

ALL = "*"  # the account-wide opt-out's number


def opted_out_of(contact_id, number):
    """An SQL condition: the contact opted out of SMS from `number` (columns or values)."""
    return sa.exists().where(opt_outs.c.contact_id == contact_id, opt_outs.c.number.in_([number, ALL]))


OPTED_OUT = sa.select(opted_out_of(sa.bindparam("contact"), sa.bindparam("number")))


async def opted_out_from(conn, contact_id: int, number: str) -> bool:
    return bool(await conn.scalar(OPTED_OUT, {"contact": contact_id, "number": number}))


async def record_opt_out(conn, contact_id: int, number: str, opted_out: bool, scope: str) -> None:
    """Record an opt-out (or an opt-in) texted to `number`, by the configured scope (see Rules)."""
    mine = opt_outs.c.contact_id == contact_id
    if opted_out:
        key = ALL if scope == "account" else number
        have = await conn.scalar(sa.select(opt_outs.c.number).where(mine, opt_outs.c.number == key))
        if have is None:
            await conn.execute(opt_outs.insert().values(contact_id=contact_id, number=key, created_at=utcnow()))
    elif scope == "account":
        await conn.execute(opt_outs.delete().where(mine))
    else:
        await conn.execute(opt_outs.delete().where(mine, opt_outs.c.number.in_([number, ALL])))
    left = await conn.scalar(sa.select(sa.func.count()).select_from(opt_outs).where(mine))
    await conn.execute(contacts.update().where(contacts.c.id == contact_id).values(opted_out=bool(left)))


async def opted_out_conversations(conn, rows) -> set[int]:
    """Of these conversation rows, those whose contact opted out of the number they present (one read)."""
    contact_ids = sorted({row.contact_id for row in rows})
    if not contact_ids:
        return set()
    stops: dict[int, set[str]] = {}
    for cid, number in (await conn.execute(sa.select(opt_outs.c.contact_id, opt_outs.c.number)
                                           .where(opt_outs.c.contact_id.in_(contact_ids)))).all():
        stops.setdefault(cid, set()).add(number)
    return {row.id for row in rows if stops.get(row.contact_id, set()) & {row.presented_number, ALL}}
