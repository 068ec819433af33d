"""Conversations waiting for an agent (units of work): claimed by one agent only, listed for a queue.

Rules: a claim locks the waiting rows in id order, then takes them with one conditional UPDATE
(`state = 'waiting'` checked again), so two agents who become ready at once, on any nodes, never
both get one and never deadlock each other.
"""
from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from chat.domain.conversations import conversation_payload, conversation_query, message_payload
from chat.domain.directory import Directory
from chat.domain.teams import room_of
from chat.store import as_utc, utcnow
from chat.store.tables import conversations, messages

MAX_QUEUE_LISTED = 200  # waiting conversations an agent's sync lists


WAITING = conversations.c.state == sa.literal_column("'waiting'")


async def claim_waiting(conn, user_id: int, teams: tuple[str, ...] = (), directory: Directory | None = None,
                        ) -> list[tuple[dict, list[dict]]]:
    """Assign the conversations waiting for `user_id` to them, and from their queues (`teams`) the oldest
    ones they have room for (chat.domain.teams: capacity); each with its messages."""
    claimed = await _claim(conn, user_id, conversations.c.owner_id == user_id)
    if not teams:
        return claimed
    room = await room_of(conn, directory, user_id) if directory is not None else None
    if room == 0:
        return claimed
    return claimed + await _claim(conn, user_id, sa.and_(conversations.c.owner_id.is_(None), conversations.c.team.in_(teams)),
                                  limit=room)


async def claim_queued(conn, user_id: int, conversation_id: int, queues: tuple[str, ...]) -> list[tuple[dict, list[dict]]]:
    """Assign one conversation waiting in one of `queues` to `user_id`: [it and its messages], or []."""
    if not queues:
        return []
    return await _claim(conn, user_id, sa.and_(conversations.c.id == conversation_id, conversations.c.team.in_(queues)))


async def _claim(conn, user_id: int, which, limit: int | None = None) -> list[tuple[dict, list[dict]]]:
    # The rows are locked first, in the order of their ids: two claimers on any nodes (an agent and
    # her team-mate, say) then take shared rows in one order and cannot deadlock each other (what
    # remains, against a batch of ingest, GroupCommit runs again). Checking `waiting` again in the
    # UPDATE is what makes a claim exclusive: on PostgreSQL a second claimer waits for the first
    # one's row lock, re-reads the row and no longer matches.
    locked = sa.select(conversations.c.id).where(WAITING, which).order_by(conversations.c.id).limit(limit).with_for_update()
    waiting = list((await conn.execute(locked)).scalars().all())
    if not waiting:
        return []
    claim = (conversations.update().where(conversations.c.id.in_(waiting), WAITING)
             .values(state="open", assigned_id=user_id, updated_at=utcnow()).returning(conversations.c.id))
    ids = list((await conn.execute(claim)).scalars().all())
    if not ids:
        return []
    rows = (await conn.execute(conversation_query().where(conversations.c.id.in_(ids)))).all()
    msgs = (await conn.execute(
        sa.select(messages).where(messages.c.conversation_id.in_(ids)).order_by(messages.c.conversation_id, messages.c.seq)
    )).all()
    by_conv: dict[int, list[dict]] = {i: [] for i in ids}
    for m in msgs:
        by_conv[m.conversation_id].append(message_payload(m))
    return [(conversation_payload(r), by_conv[r.id]) for r in rows]


async def queued_for(conn, queues: tuple[str, ...]) -> list[dict]:
    """The conversations waiting in these queues, oldest first, as a sync lists them (each with its queue)."""
    if not queues:
        return []
    rows = (await conn.execute(
        conversation_query().where(WAITING, conversations.c.team.in_(queues))
        .order_by(conversations.c.updated_at).limit(MAX_QUEUE_LISTED)
    )).all()
    now, position = utcnow(), defaultdict[str, int](int)
    out = []
    for r in rows:  # oldest first: each one's place in its own queue
        position[r.team] += 1
        out.append(conversation_payload(r) | {"state": "waiting", "queue": r.team, "position": position[r.team],
                                              "waiting_seconds": round((now - as_utc(r.updated_at)).total_seconds(), 1)})
    return out
