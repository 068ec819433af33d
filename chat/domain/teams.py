"""Dealing a team's conversations to its members (units of work): round robin, least busy, or offered
to all; within each member's capacity; first come, first served.

Rules:
- A team's queue is dealt under its cursor row's lock (team_cursors, FOR UPDATE): two nodes never
  deal one team at once, and the round robin goes on where the last deal, on any node, left it.
- A member takes a conversation only while they are available and have room: fewer open
  conversations than their capacity (chat.domain.directory: their own, else their teams').
- First come, first served: a new conversation is given at once only when none of the team waits
  before it; when a member gets room (closes one, becomes ready), the oldest waiting go first.
- `offer_all` deals nothing: the conversation waits in the queue, which every member sees (sync's
  `queue`), and the first to claim it takes it (chat.domain.waiting.claim_queued).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from chat.domain.directory import Directory, TeamRule
from chat.store import utcnow
from chat.store.tables import conversations, team_cursors

WAITING = conversations.c.state == sa.literal_column("'waiting'")
CURSOR = sa.select(team_cursors.c.last_user_id).where(team_cursors.c.team == sa.bindparam("t_team")).with_for_update()
MOVE_CURSOR = (team_cursors.update().where(team_cursors.c.team == sa.bindparam("t_team"))
               .values(last_user_id=sa.bindparam("uid"), updated_at=sa.bindparam("now")))


async def open_counts(conn, users: Sequence[int], moving: int | None = None) -> dict[int, int]:
    """Open conversations per user (but `moving`, the one being dealt)."""
    if not users:
        return {}
    rows = (await conn.execute(sa.select(conversations.c.assigned_id, sa.func.count())
                               .where(conversations.c.state == "open", conversations.c.assigned_id.in_(list(users)),
                                      conversations.c.id != (moving or 0))
                               .group_by(conversations.c.assigned_id))).all()
    return dict(rows)


async def room_of(conn, directory: Directory, user_id: int) -> int | None:
    """How many more open conversations the user may take from team queues (None: no limit)."""
    cap = directory.capacity(user_id)
    if cap is None:
        return None
    return max(0, cap - (await open_counts(conn, [user_id])).get(user_id, 0))


async def someone_waits(conn, team: str, moving: int | None = None) -> bool:
    return await conn.scalar(sa.select(conversations.c.id).where(
        WAITING, conversations.c.team == team, conversations.c.id != (moving or 0)).limit(1)) is not None


async def pick_member(conn, team: str, rule: TeamRule, directory: Directory, available: Callable[[int], bool],
                      exclude: int | None = None, moving: int | None = None) -> int | None:
    """The member who takes the team's next conversation now, by its rule (the cursor moved), or None:
    it waits (offer_all, nobody available with room, or others wait before it). `exclude`: a member
    who may not take it (who gives it); `moving`: the conversation, when it exists already."""
    if rule.distribution == "offer_all":
        return None
    last = await conn.scalar(CURSOR, {"t_team": team})  # the team's lock (see Rules)
    ready = [uid for uid in rule.members if uid != exclude and available(uid)]
    if not ready or await someone_waits(conn, team, moving):
        return None
    counts = await open_counts(conn, ready, moving)
    room = [uid for uid in ready if (cap := directory.capacity(uid)) is None or counts.get(uid, 0) < cap]
    if not room:
        return None
    if rule.distribution == "round_robin":
        order = list(rule.members)
        start = order.index(last) + 1 if last in order else 0
        turn = order[start:] + order[:start]
        chosen = next(uid for uid in turn if uid in room)
    else:
        chosen = min(room, key=lambda uid: (counts.get(uid, 0), rule.members.index(uid)))
    await conn.execute(MOVE_CURSOR, {"t_team": team, "uid": chosen, "now": utcnow()})
    return chosen
