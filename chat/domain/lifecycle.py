"""A conversation's lifecycle (units of work): closed with an outcome, reopened, snoozed, closed for
inactivity; and the earlier conversations of its contact.

Rules:
- Only the agent a conversation is assigned to closes, reopens or snoozes it. Closing keeps the
  assignee (the closed conversation stays in their list, and they may reopen it).
- A reopen keeps invariant 3 (one active conversation per customer and number): when the customer
  has texted since, and so has a new conversation on that number, the reopen is refused and names it.
- Snoozed is an open conversation with `snoozed_until`: out of the agent's list until then, or until
  the customer texts (chat.domain.inbound clears it). At the time, the unit that clears it (checking
  it is still due) is the one that tells the agent: once across nodes.
- Inactivity: an access number's `inactivity_close_seconds` closes its active conversations that
  long after their last change, outcome "inactive". The unit that closes checks again under the
  row's lock and skips a row another transaction holds: nodes that all see it due close it once.
- The earlier conversations of a conversation's contact (on the same number) are shown to whoever may
  see the conversation (chat.domain.media.may_see: its agent, its number's owner, supervisors and
  admins), the same list to each; to anyone else it is a conversation that does not exist.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from chat.domain.audit import record
from chat.domain.conversations import (
    ACTIVE,
    UNSNOOZE,
    active_conversation,
    conversation_payload,
    conversation_query,
    get_conversation,
    message_payload,
)
from chat.domain.directory import Agent
from chat.domain.media import may_see
from chat.domain.outbound import Refused
from chat.store import as_utc, utcnow
from chat.store.tables import conversations, messages

INACTIVE = "inactive"  # the outcome of a conversation closed for inactivity
MAX_SNOOZE = timedelta(days=366)
DUE_LIMIT = 200  # conversations of each kind handled in one round; the rest in the next
EARLIER_LIMIT = 20  # earlier conversations shown with a conversation
EARLIER_MESSAGES = 200  # the last messages of each


@dataclass(frozen=True)
class Outcomes:
    """What an agent may give as a close's outcome (the configuration's `conversations`)."""

    choices: tuple[str, ...] = ()
    required: bool = False

    def check(self, outcome: str | None) -> str | None:
        if outcome is None or not outcome.strip():
            if self.required:
                raise Refused(f"pick an outcome: {', '.join(self.choices)}", "outcome")
            return None
        if outcome not in self.choices:
            listed = f"one of {', '.join(self.choices)}" if self.choices else "none (no outcomes are configured)"
            raise Refused(f"unknown outcome {outcome[:64]!r}; give {listed}", "outcome")
        return outcome


async def assigned_to(conn, agent: Agent, conversation_id: int):
    """The conversation, if it is assigned to this agent (else Refused, naming nothing of it)."""
    conv = await get_conversation(conn, conversation_id)
    if conv is None or conv.assigned_id != agent.id:
        raise Refused(f"no conversation {conversation_id} is yours", "conversation_id")
    return conv


async def close_conversation(conn, agent: Agent, conversation_id: int, outcome: str | None = None,
                             outcomes: Outcomes = Outcomes()) -> dict:
    """The agent ends a conversation, with an outcome if given; the customer's next SMS starts a new one."""
    conv = await assigned_to(conn, agent, conversation_id)
    if conv.state == "closed":
        raise Refused(f"conversation {conversation_id} is closed already", "conversation_id")
    now = utcnow()
    await conn.execute(conversations.update().where(conversations.c.id == conv.id).values(
        state="closed", outcome=outcomes.check(outcome), closed_at=now, closed_by=agent.id, reply_due_at=None,
        snoozed_until=None, updated_at=now))
    await record(conn, actor=agent.name, action="conversation.closed", target=f"conversation:{conv.id}",
                 details={"outcome": outcome} if outcome else None)
    return conversation_payload(await get_conversation(conn, conv.id))


async def reopen_conversation(conn, agent: Agent, conversation_id: int) -> dict:
    """The agent opens a conversation they closed (or that was closed while theirs) again."""
    conv = await assigned_to(conn, agent, conversation_id)
    if conv.state != "closed":
        raise Refused(f"conversation {conversation_id} is not closed", "conversation_id")
    newer = await active_conversation(conn, conv.contact_number, conv.access_number)
    if newer is not None:
        raise Refused(f"{conv.contact_number} has texted since: conversation {newer.id} on {conv.access_number} "
                      "is open; continue there", "conversation_id")
    await conn.execute(conversations.update().where(conversations.c.id == conv.id).values(
        state="open", outcome=None, closed_at=None, closed_by=None, updated_at=utcnow()))
    return conversation_payload(await get_conversation(conn, conv.id))


async def snooze_conversation(conn, agent: Agent, conversation_id: int, until: datetime | None) -> dict:
    """Keep an open conversation out of the list until `until` (None: back now)."""
    conv = await assigned_to(conn, agent, conversation_id)
    if conv.state == "closed":
        raise Refused(f"conversation {conversation_id} is closed; reopen it first", "conversation_id")
    now = utcnow()
    if until is not None and not now < until <= now + MAX_SNOOZE:
        raise Refused("until must be in the future, at most a year ahead", "until")
    await conn.execute(conversations.update().where(conversations.c.id == conv.id).values(snoozed_until=until))
    return conversation_payload(await get_conversation(conn, conv.id))


async def wake_snoozed(conn, conversation_id: int, now: datetime) -> tuple[int, dict] | None:
    """Un-snooze a conversation whose time has come: (its agent, its payload), or None if it was not due any more."""
    woken = await conn.execute(UNSNOOZE.where(conversations.c.snoozed_until <= now, ACTIVE), {"cid": conversation_id})
    if woken.rowcount != 1:
        return None
    conv = await get_conversation(conn, conversation_id)
    return conv.assigned_id, conversation_payload(conv)


async def close_inactive(conn, conversation_id: int, idle_seconds: float, now: datetime) -> tuple[int | None, dict] | None:
    """Close a conversation idle for `idle_seconds` (checked again here, under its lock): (its agent, its payload)."""
    locked = (conversations.select().with_only_columns(conversations.c.id)
              .where(conversations.c.id == conversation_id, ACTIVE,
                     conversations.c.updated_at < now - timedelta(seconds=idle_seconds))
              .with_for_update(skip_locked=True))
    if await conn.scalar(locked) is None:
        return None
    await conn.execute(conversations.update().where(conversations.c.id == conversation_id).values(
        state="closed", outcome=INACTIVE, closed_at=now, closed_by=None, reply_due_at=None, snoozed_until=None,
        updated_at=now))
    conv = await get_conversation(conn, conversation_id)
    return conv.assigned_id, conversation_payload(conv)


def _idle(inactivity: Mapping[str, float], now: datetime):
    """Active conversations idle longer than their number's inactivity_close_seconds (None: no number has it)."""
    if not inactivity:
        return None
    return sa.or_(*(sa.and_(conversations.c.access_number == number,
                            conversations.c.updated_at < now - timedelta(seconds=seconds))
                    for number, seconds in inactivity.items()))


async def due_lifecycle(conn, now: datetime, inactivity: Mapping[str, float]) -> tuple[list[int], list[tuple[int, str]]]:
    """(snoozed conversations whose time has come, idle ones to close with their access numbers): a read;
    the units check again."""
    snoozed = (await conn.scalars(sa.select(conversations.c.id).where(
        conversations.c.snoozed_until <= now, ACTIVE).limit(DUE_LIMIT))).all()
    idle = _idle(inactivity, now)
    inactive = [] if idle is None else (await conn.execute(
        sa.select(conversations.c.id, conversations.c.access_number).where(ACTIVE, idle).limit(DUE_LIMIT))).all()
    return list(snoozed), [(cid, number) for cid, number in inactive]


async def next_lifecycle_due(conn, inactivity: Mapping[str, float]) -> datetime | None:
    """When the next snooze ends or the next idle conversation is due to close, or None."""
    times = [await conn.scalar(sa.select(sa.func.min(conversations.c.snoozed_until)).where(ACTIVE))]
    if inactivity:
        rows = (await conn.execute(sa.select(conversations.c.access_number, sa.func.min(conversations.c.updated_at))
                                   .where(ACTIVE, conversations.c.access_number.in_(list(inactivity)))
                                   .group_by(conversations.c.access_number))).all()
        times += [as_utc(oldest) + timedelta(seconds=inactivity[number]) for number, oldest in rows if oldest]
    pending = [as_utc(t) for t in times if t is not None]
    return min(pending) if pending else None


async def visible(conn, agent: Agent, conversation_id: int):
    """The conversation if the agent may see it (chat.domain.media.may_see); else Refused as for one that does
    not exist."""
    conv = await get_conversation(conn, conversation_id)
    if conv is None or not may_see(agent, conv):
        raise Refused(f"no conversation {conversation_id}", "conversation_id")
    return conv


async def earlier_conversations(conn, agent: Agent, conversation_id: int) -> list[dict]:
    """The contact's earlier conversations on the same number, newest first, each with its last messages."""
    conv = await visible(conn, agent, conversation_id)
    rows = (await conn.execute(conversation_query().where(
        conversations.c.contact_id == conv.contact_id, conversations.c.access_number == conv.access_number,
        conversations.c.id < conv.id,
    ).order_by(conversations.c.id.desc()).limit(EARLIER_LIMIT))).all()
    out = []
    for row in rows:
        last = (await conn.execute(sa.select(messages).where(messages.c.conversation_id == row.id)
                                   .order_by(messages.c.seq.desc()).limit(EARLIER_MESSAGES))).all()
        out.append(conversation_payload(row) | {"messages": [message_payload(m) for m in reversed(last)]})
    return out
