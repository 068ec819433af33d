"""Deleting a contact, and the messages past their number's retention.

Rules:
- Deleting a contact removes, in one transaction, everything that holds their number or their text:
  their conversations and messages, the sends still queued and their provider references, the
  scenario runs and timers of those conversations, their pending CRM activities, their opt-outs,
  long-message parts still waiting from their number, the files agents sent them (uploads), and
  the contact record. The audit log
  records that it happened, by the contact's id, never what was deleted.
- Retention: an access number's `retention_days` keeps its messages that long. Older messages are
  deleted (with their queued sends, provider references and the files they attached); a closed
  conversation left with no message goes too. A conversation still open keeps its messages until it is closed and they age.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa

from chat.domain.audit import record
from chat.domain.uploads import attached_ids, delete_uploads
from chat.store import utcnow
from chat.store.tables import (
    contacts,
    conversations,
    crm_outbox,
    messages,
    opt_outs,
    outbox,
    provider_refs,
    scenario_runs,
    scenario_timers,
    smpp_parts,
)

BATCH = 5000  # messages deleted per statement by retention


async def delete_contact(conn, *, number: str, actor: str, address: str = "") -> dict | None:
    """Delete the contact with this number and everything of theirs; what was removed (counts), or None if unknown."""
    contact_id = await conn.scalar(sa.select(contacts.c.id).where(contacts.c.number == number))
    if contact_id is None:
        return None
    convs = sa.select(conversations.c.id).where(conversations.c.contact_id == contact_id).scalar_subquery()
    msgs = sa.select(messages.c.id).where(messages.c.conversation_id.in_(convs)).scalar_subquery()
    counts = {"messages": await _count(conn, messages, messages.c.conversation_id.in_(convs)),
              "conversations": await _count(conn, conversations, conversations.c.contact_id == contact_id)}
    sent = await conn.scalars(sa.select(messages.c.media).where(messages.c.conversation_id.in_(convs),
                                                                messages.c.direction == "out"))
    await delete_uploads(conn, attached_ids(sent.all()))
    await conn.execute(provider_refs.delete().where(provider_refs.c.message_id.in_(msgs)))
    await conn.execute(outbox.delete().where(outbox.c.conversation_id.in_(convs)))
    await conn.execute(crm_outbox.delete().where(crm_outbox.c.conversation_id.in_(convs)))
    await conn.execute(scenario_runs.delete().where(scenario_runs.c.conversation_id.in_(convs)))
    await conn.execute(scenario_timers.delete().where(scenario_timers.c.conversation_id.in_(convs)))
    await conn.execute(messages.delete().where(messages.c.conversation_id.in_(convs)))
    await conn.execute(conversations.delete().where(conversations.c.contact_id == contact_id))
    await conn.execute(opt_outs.delete().where(opt_outs.c.contact_id == contact_id))
    await conn.execute(smpp_parts.delete().where(smpp_parts.c.sender == number))
    await conn.execute(contacts.delete().where(contacts.c.id == contact_id))
    await record(conn, actor=actor, action="contact.deleted", target=f"contact:{contact_id}", address=address,
                 details=counts)
    return counts


async def _count(conn, table, where) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(table).where(where)) or 0)


async def expire_messages(conn, *, now: datetime | None = None, days: Mapping[str, float]) -> int:
    """Delete the messages older than their access number's retention (`days`: number -> days); how many."""
    now = now or utcnow()
    gone = 0
    for number, keep in sorted(days.items()):
        gone += await _expire_number(conn, number, now - timedelta(days=keep))
    if gone:
        await record(conn, actor="system", action="retention.expired", details={"messages": gone})
    return gone


async def _expire_number(conn, number: str, cutoff: datetime) -> int:
    """Delete up to BATCH messages of this number's closed conversations older than `cutoff`; how many."""
    old = (sa.select(messages.c.id, messages.c.media)
           .join(conversations, conversations.c.id == messages.c.conversation_id)
           .where(conversations.c.access_number == number, conversations.c.state == "closed",
                  messages.c.created_at < cutoff).limit(BATCH))
    rows = (await conn.execute(old)).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    await delete_uploads(conn, attached_ids(row.media for row in rows))
    await conn.execute(provider_refs.delete().where(provider_refs.c.message_id.in_(ids)))
    await conn.execute(outbox.delete().where(outbox.c.message_id.in_(ids)))
    await conn.execute(messages.delete().where(messages.c.id.in_(ids)))
    await _drop_empty(conn, number)
    return len(ids)


async def _drop_empty(conn, number: str) -> None:
    """Delete this number's closed conversations that have no message left, and what hangs on them."""
    empty = (sa.select(conversations.c.id).where(
        conversations.c.access_number == number, conversations.c.state == "closed",
        ~sa.exists().where(messages.c.conversation_id == conversations.c.id)))
    empties = list((await conn.scalars(empty)).all())
    if empties:
        for table in (scenario_runs, scenario_timers, crm_outbox):
            await conn.execute(table.delete().where(table.c.conversation_id.in_(empties)))
        await conn.execute(conversations.delete().where(conversations.c.id.in_(empties)))
