"""What an agent's client is missing: its conversations, messages past its cursors, new statuses.

Rules: an agent gets only conversations assigned to them; messages come in (conversation,
seq) order, exactly those with seq above the client's cursor for that conversation.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from chat.domain.conversations import conversation_payload, conversation_query, iso, message_payload
from chat.domain.optouts import opted_out_conversations
from chat.store.tables import conversations, messages

MAX_CONVERSATIONS = 500  # the newest; the `search` call (chat.domain.search) pages through all of them
# An unread message: from the customer, after what the agent read (of the conversation in the same query).
UNREAD = sa.and_(messages.c.direction == "in", messages.c.seq > conversations.c.read_seq)


async def sync_for(conn, user_id: int, cursors: dict[int, int], since: float | None) -> dict:
    """The sync answer for this agent."""
    server_time = time.time()
    rows = (await conn.execute(
        conversation_query().where(conversations.c.assigned_id == user_id)
        .order_by(conversations.c.updated_at.desc()).limit(MAX_CONVERSATIONS)
    )).all()
    ids = [r.id for r in rows]
    return {
        "ok": True,
        "server_time": server_time,
        "conversations": await listed(conn, rows),
        "messages": await _missed(conn, ids, cursors),
        "statuses": await _statuses(conn, ids, cursors, since),
    }


async def listed(conn, rows) -> list[dict]:
    """Conversation rows (conversation_query's) as a list shows them: with their unread count, and `opted_out`."""
    unread = await _unread(conn, [r.id for r in rows])
    stopped = await opted_out_conversations(conn, rows)
    return [conversation_payload(r, unread.get(r.id, 0)) | {"opted_out": r.id in stopped} for r in rows]


async def _unread(conn, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    query = (
        sa.select(messages.c.conversation_id, sa.func.count())
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(messages.c.conversation_id.in_(ids), UNREAD)
        .group_by(messages.c.conversation_id)
    )
    return {cid: n for cid, n in (await conn.execute(query)).all()}


def _after_cursor(ids: list[int], cursors: dict[int, int]):
    return sa.or_(*(
        sa.and_(messages.c.conversation_id == cid, messages.c.seq > cursors.get(cid, 0)) for cid in ids
    ))


async def _missed(conn, ids: list[int], cursors: dict[int, int]) -> list[dict]:
    if not ids:
        return []
    query = sa.select(messages).where(_after_cursor(ids, cursors)).order_by(messages.c.conversation_id, messages.c.seq)
    return [message_payload(m) for m in (await conn.execute(query)).all()]


async def _statuses(conn, ids: list[int], cursors: dict[int, int], since: float | None) -> list[dict]:
    if not ids or since is None:
        return []
    after = datetime.fromtimestamp(since, UTC)
    query = sa.select(messages.c.id, messages.c.conversation_id, messages.c.status, messages.c.error, messages.c.updated_at).where(
        messages.c.conversation_id.in_(ids), messages.c.direction == "out", messages.c.updated_at >= after,
        ~_after_cursor(ids, cursors),
    )
    return [
        {"id": r.id, "conversation_id": r.conversation_id, "status": r.status, "error": r.error, "updated_at": iso(r.updated_at)}
        for r in (await conn.execute(query)).all()
    ]
