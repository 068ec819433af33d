"""Routing: stored messages reach the agent they belong to, now or when that agent is ready.

Rules: routing runs after the commit, from what was stored; a conversation waiting for its
owner stays in the store (state `waiting`) until the owner is available, so nothing waits in
memory and a restart loses nothing. An agent is pushed only their own conversations.
"""
from __future__ import annotations

import asyncio
from functools import partial

import sqlalchemy as sa
import structlog

from chat.commit import GroupCommit
from chat.conversations import conversation_payload, conversation_query, message_payload
from chat.hub import Hub, Pushes
from chat.ingest import Stored
from chat.presence import Presence
from chat.store import utcnow
from chat.store.tables import conversations, messages

log = structlog.get_logger()
BACKLOG = 100  # stored messages waiting to be routed before ingest holds its acknowledgements


class Router:
    def __init__(self, commit: GroupCommit, hub: Hub, presence: Presence):
        self.commit = commit
        self.hub = hub
        self.presence = presence
        self._queue: asyncio.Queue[Stored] = asyncio.Queue()
        self._drained = asyncio.Event()  # set whenever the router took what was queued
        self.teams_of: dict[int, tuple[str, ...]] = {}
        self.on_routed = None  # called with each routed message (the scenarios' inbound events)

    def dispatch(self, stored: Stored) -> None:
        """Route after the commit, in commit order: pushes never overtake one another."""
        self._queue.put_nowait(stored)

    async def caught_up(self) -> None:
        """Wait while more than BACKLOG stored messages wait to be routed.

        Ingest awaits this before it acknowledges, so an SMSC or provider that sends faster
        than agents can be pushed to is slowed down by its own window (or retries) instead of
        the pushes falling ever further behind."""
        while self._queue.qsize() > BACKLOG:
            self._drained.clear()
            await self._drained.wait()

    async def run(self) -> None:
        while True:
            burst = [await self._queue.get()]
            while not self._queue.empty():
                burst.append(self._queue.get_nowait())
            self._drained.set()
            pushes = Pushes()
            for stored in burst:
                try:
                    await self.route(stored, pushes)
                    if self.on_routed:
                        self.on_routed(stored)
                except Exception:  # noqa: BLE001 - the store is the truth; clients sync
                    log.exception("routing.failed")
            try:
                await pushes.flush(self.hub)
            except Exception:  # noqa: BLE001
                log.exception("routing.push_failed")

    async def route(self, stored: Stored, pushes: Pushes) -> None:
        """Push a freshly stored inbound message, or wake its owner's waiting conversations."""
        if stored.duplicate:
            return
        if stored.waiting:
            if self.presence.available(stored.owner_id):
                await pushes.flush(self.hub)  # what was routed before goes first
                await self.assign_waiting(stored.owner_id)
            return
        if stored.new_conversation:
            pushes.add(stored.assigned_id, "conversation", stored.conversation)
        pushes.add(stored.assigned_id, "message", stored.message)

    async def assign_waiting(self, user_id: int) -> int:
        """Open every conversation waiting for this agent and push them; how many there were."""
        claimed = await self.commit.run(partial(claim_waiting, user_id=user_id, teams=self.teams_of.get(user_id, ())))
        pushes = Pushes()
        for conv, msgs in claimed:
            pushes.add(user_id, "conversation", conv)
            for msg in msgs:
                pushes.add(user_id, "message", msg)
        await pushes.flush(self.hub)
        return len(claimed)

    async def push_status(self, payload: dict | None) -> None:
        """Push a status change to its agent (with the others of this loop turn)."""
        if payload:
            payload = dict(payload)
            self.hub.soon(payload.pop("_to"), "status", payload)


async def claim_waiting(conn, user_id: int, teams: tuple[str, ...] = ()) -> list[tuple[dict, list[dict]]]:
    """Assign the conversations waiting for `user_id` (or a team of theirs) to them; each with its messages."""
    mine = sa.or_(conversations.c.owner_id == user_id, conversations.c.team.in_(teams)) if teams else \
        conversations.c.owner_id == user_id
    waiting = sa.and_(conversations.c.state == "waiting", mine)
    ids = list((await conn.scalars(sa.select(conversations.c.id).where(waiting))).all())
    if not ids:
        return []
    await conn.execute(
        conversations.update().where(conversations.c.id.in_(ids))
        .values(state="open", assigned_id=user_id, updated_at=utcnow())
    )
    rows = (await conn.execute(conversation_query().where(conversations.c.id.in_(ids)))).all()
    msgs = (await conn.execute(
        sa.select(messages).where(messages.c.conversation_id.in_(ids)).order_by(messages.c.conversation_id, messages.c.seq)
    )).all()
    by_conv: dict[int, list[dict]] = {i: [] for i in ids}
    for m in msgs:
        by_conv[m.conversation_id].append(message_payload(m))
    return [(conversation_payload(r), by_conv[r.id]) for r in rows]
