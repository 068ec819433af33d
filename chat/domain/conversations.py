"""Conversations and their messages in the store, and how they look on the agent's wire.

Rules: every message gets the next per-conversation sequence number inside the transaction
that stores it (invariant 4); one active conversation per (contact, access number)
(invariant 3, backed by a partial unique index). Every decodable inbound message is stored
(invariant 10): `storable_inbound` makes its text storable with gateway.text.storable and keeps
the original payload, base64, in messages.original. Functions take an open connection; the
caller owns the transaction.
"""
from __future__ import annotations

import base64
from datetime import datetime
from functools import cache

import sqlalchemy as sa

from chat.store import as_utc, utcnow
from chat.store.tables import contacts, conversations, messages
from gateway import national, storable

CONVERSATION_COLUMNS = (
    conversations.c.id, conversations.c.contact_id, conversations.c.access_number, conversations.c.owner_id,
    conversations.c.assigned_id, conversations.c.state, conversations.c.presented_number,
    conversations.c.last_seq, conversations.c.read_seq, conversations.c.updated_at,
    conversations.c.tags, conversations.c.team, conversations.c.outcome, conversations.c.closed_at,
    conversations.c.snoozed_until, conversations.c.away_replied_at, conversations.c.away_due_at,
    contacts.c.number.label("contact_number"), contacts.c.name.label("contact_name"),
    contacts.c.fields.label("contact_fields"),
)
MESSAGE_FIELDS = (
    "id", "conversation_id", "seq", "direction", "text", "status", "error", "client_id",
    "sender", "recipient", "segments", "encoding", "incomplete", "created_at", "updated_at",
)


def conversation_query():
    return sa.select(*CONVERSATION_COLUMNS).join(contacts, contacts.c.id == conversations.c.contact_id)


# Not closed, as a literal: SQLite uses the partial index uq_conversations_active only when it
# can prove the query implies the index's condition; with a bound parameter it re-plans the
# statement on every execution (measured: 49 µs against 5 µs).
ACTIVE = conversations.c.state != sa.literal_column("'closed'")

# Statements on the hot path are built once, so the store plans them (chat.store.fast, chat.store.pipeline).
FIND_CONTACT = sa.select(contacts.c.id).where(contacts.c.number == sa.bindparam("number"))
ADD_CONTACT = contacts.insert()
# The contact by its number first, then its conversation by (contact, number): both unique keys, so
# the plan needs no statistics. As a join on contacts.number and access_number, PostgreSQL without
# statistics (autovacuum off, or a young database) sometimes started from every conversation on the
# access number and looked each one's contact up: 200 index probes a message, 3,500 webhooks/s
# instead of 5,200 (bench/README.md, "PostgreSQL's share").
CONTACT_OF_NUMBER = (sa.select(contacts.c.id).where(contacts.c.number == sa.bindparam("number"))
                     .correlate(None).scalar_subquery())  # its own contacts, not the outer query's
FIND_ACTIVE = conversation_query().where(
    conversations.c.contact_id == CONTACT_OF_NUMBER,
    conversations.c.access_number == sa.bindparam("access"),
    ACTIVE,
)
FIND_CONVERSATION = conversation_query().where(conversations.c.id == sa.bindparam("cid"))
ADD_CONVERSATION = conversations.insert()
def _bump(cid: str, now: str):
    """The conversation `cid` names takes its next seq (returned) and `now` as updated_at."""
    return (conversations.update().where(conversations.c.id == sa.bindparam(cid))
            .values(last_seq=conversations.c.last_seq + 1, updated_at=sa.bindparam(now))
            .returning(conversations.c.last_seq))


BUMP_SEQ = _bump("cid", "now")
ADD_MESSAGE = messages.insert()
DISARM = conversations.update().where(conversations.c.id == sa.bindparam("cid")).values(away_due_at=None)  # an agent answered
UNSNOOZE = conversations.update().where(conversations.c.id == sa.bindparam("cid")).values(snoozed_until=None)
LAST_PRESENTER = (
    sa.select(conversations.c.assigned_id)
    .where(conversations.c.contact_id == sa.bindparam("contact"),
           conversations.c.presented_number == sa.bindparam("number"))
    .where(conversations.c.assigned_id.is_not(None))
    .order_by(conversations.c.updated_at.desc()).limit(1)
)


async def contact_id(conn, number: str) -> int:
    """The contact with this number, created if new."""
    found = await conn.scalar(FIND_CONTACT, {"number": number})
    if found is not None:
        return found
    result = await conn.execute(ADD_CONTACT, {"number": number, "created_at": utcnow()})
    return result.inserted_primary_key[0]


async def active_conversation(conn, number: str, access_number: str):
    """The open or waiting conversation of the contact with this number on this access number, if any."""
    return (await conn.execute(FIND_ACTIVE, {"number": number, "access": access_number})).first()


async def get_conversation(conn, conversation_id: int):
    return (await conn.execute(FIND_CONVERSATION, {"cid": conversation_id})).first()


async def open_conversation(conn, contact: int, access_number: str, owner: int | None, assignee: int | None,
                            queue: str | None = None):
    """Start a conversation: open if it has an assignee now, waiting (for its owner, or in `queue`) otherwise."""
    now = utcnow()
    values = {
        "contact_id": contact, "access_number": access_number, "owner_id": owner, "assigned_id": assignee,
        "state": "open" if assignee else "waiting", "presented_number": access_number,
        "created_at": now, "updated_at": now, "team": queue,
    }
    result = await conn.execute(ADD_CONVERSATION, values)
    return await get_conversation(conn, result.inserted_primary_key[0])


async def last_presenter(conn, contact: int, number: str) -> int | None:
    """Who last presented `number` to this contact: replies to a shared number go back to them."""
    return await conn.scalar(LAST_PRESENTER, {"contact": contact, "number": number})


async def least_busy(conn, candidates: list[int]) -> int:
    """Of these agents, the one with the fewest open conversations (the lowest id of equals)."""
    counts = dict((await conn.execute(
        sa.select(conversations.c.assigned_id, sa.func.count())
        .where(conversations.c.state == "open", conversations.c.assigned_id.in_(candidates))
        .group_by(conversations.c.assigned_id)
    )).all())
    return min(candidates, key=lambda uid: (counts.get(uid, 0), uid))


async def append_message(conn, conversation_id: int, **values) -> dict:
    """Store a message as the conversation's next in sequence; returns its payload."""
    return message_payload(await insert_message(conn, conversation_id, **values))


async def insert_message(conn, conversation_id: int, **values) -> dict:
    """Store a message as the conversation's next in sequence; returns the row as stored."""
    now = utcnow()
    row = {"conversation_id": conversation_id, "created_at": now, "updated_at": now, **values}
    if getattr(conn, "updates_in_with", False):  # PostgreSQL's batches: one statement, a round trip less a batch
        params = {f"m_{key}": value for key, value in row.items()}
        row["id"], row["seq"] = (await conn.execute(_add_next(frozenset(row)), params)).one()
        return row
    row["seq"] = (await conn.execute(BUMP_SEQ, {"cid": conversation_id, "now": now})).scalar_one()
    result = await conn.execute(ADD_MESSAGE, row)
    row["id"] = result.inserted_primary_key[0]
    return row


@cache
def _add_next(keys: frozenset[str]):
    """BUMP_SEQ and ADD_MESSAGE as one statement: INSERT ... SELECT the seq its UPDATE returned (in a WITH).
    The conversation's row is locked as BUMP_SEQ locks it, so the seq is the same as in two statements.
    Its parameters are `m_` and the column: named as columns of conversations (created_at), SQLAlchemy
    would also SET them in the UPDATE."""
    bumped = _bump("m_conversation_id", "m_updated_at").cte("bumped")
    names = [c.key for c in messages.c if c.key in keys]
    picked = sa.select(*[sa.bindparam(f"m_{name}", type_=messages.c[name].type) for name in names], bumped.c.last_seq)
    return messages.insert().from_select([*names, "seq"], picked).returning(messages.c.id, messages.c.seq)


def storable_inbound(text: str, original: bytes | None) -> tuple[str, str | None]:
    """The text to store and messages.original: the payload kept whenever the text is not as sent."""
    stored, repaired = storable(text)
    if original is None and repaired:  # a connector that did not keep its payload: keep the text itself
        original = text.encode("utf-8", "surrogatepass")
    return stored, base64.b64encode(original).decode("ascii") if original is not None else None


async def transcript_payload(conn, conversation_id: int) -> list[dict]:
    """Every message of a conversation, notes included, in order, as the agent protocol shows them."""
    rows = (await conn.execute(sa.select(messages).where(messages.c.conversation_id == conversation_id)
                               .order_by(messages.c.seq))).all()
    return [message_payload(r) for r in rows]


def message_payload(row) -> dict:
    """A message as the agent protocol shows it."""
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    out = {k: data.get(k) for k in MESSAGE_FIELDS}
    out["from"], out["to"] = out.pop("sender"), out.pop("recipient")
    out["incomplete"] = bool(out["incomplete"])
    # Sent by didchat itself (a scenario's greeting or away reply, an opt-out confirmation), not by an agent.
    out["automatic"] = data.get("direction") == "out" and data.get("user_id") is None
    out["compliance"] = bool(data.get("compliance"))  # the opt-out or opt-in confirmation
    out["media"] = media_links(data["id"], data.get("media"))
    for key in ("created_at", "updated_at"):
        out[key] = iso(out[key])
    return out


def media_links(message_id: int, media: list | None) -> list[dict]:
    """How the agent protocol shows a message's attachments: didchat's URL for each (GET with the agent's access
    token; chat.agents.media fetches it from the provider, or reads the agent's upload), its type, and an upload's
    file name. The provider's URL is never shown."""
    return [{"url": f"/api/media/{message_id}/{n}", "content_type": item.get("content_type") or "",
             **({"filename": item["filename"]} if item.get("filename") else {})}
            for n, item in enumerate(media or []) if isinstance(item, dict)]


def conversation_payload(row, unread: int | None = None) -> dict:
    """A conversation as the agent protocol shows it."""
    return {
        "id": row.id,
        "contact": {"number": row.contact_number, "name": row.contact_name, "national": national(row.contact_number)[0]},
        "access_number": row.access_number,
        "presented_number": row.presented_number,
        "state": "closed" if row.state == "closed" else "open",
        "last_seq": row.last_seq,
        "read_seq": row.read_seq,
        "unread": unread if unread is not None else max(0, row.last_seq - row.read_seq),
        "tags": list(row.tags or []),
        "updated_at": iso(row.updated_at),
        "queue": row.team,  # the team queue (or shared number) it came through, if any
        "outcome": row.outcome,  # how it was closed (closed only)
        "closed_at": iso(row.closed_at),
        "snoozed_until": iso(row.snoozed_until) if row.state != "closed" else None,
    }


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None
