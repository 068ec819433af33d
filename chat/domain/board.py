"""The supervisor's board (reads and units of work): agents with presence and load, queues with their
waits, every conversation with filters; assign, take over, monitor.

Rules:
- Only supervisors and admins (chat.agents.namespace checks the role); agents never see it.
- Assigning or taking over moves a conversation as a transfer does (chat.domain.transfers.hand_over),
  from whoever had it, with a note saying who moved it; the agent who loses it is told.
- Monitoring reads a conversation and its messages; it changes nothing and the customer sees nothing.
- A conversation nobody can take is flagged `stuck`: it waits for an owner who is not available, or
  in a queue none of whose members is available.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from chat.domain.audit import record
from chat.domain.conversations import conversation_payload, conversation_query, get_conversation, transcript_payload
from chat.domain.directory import ADMINS, Agent, Directory
from chat.domain.outbound import Refused
from chat.domain.teams import open_counts
from chat.domain.transfers import Available, Target, Transferred, hand_over
from chat.store import as_utc, utcnow
from chat.store.tables import conversations

BOARD_LIMIT = 200
SUPERVISING = ("supervisor", "admin")


class Presence(Available, Protocol):
    def state(self, user_id: int) -> str: ...


@dataclass(frozen=True)
class Filters:
    state: str | None = None  # open | waiting | closed
    user: str | None = None  # assigned to, or waiting for, this user
    queue: str | None = None
    number: str | None = None  # access number
    stuck: bool = False


def may_supervise(agent: Agent) -> None:
    if agent.role not in SUPERVISING:
        raise Refused("only supervisors and admins see the board", "event")


async def board(conn, directory: Directory, presence: Presence, filters: Filters) -> dict:
    """Agents, queues and conversations as a supervisor sees them now."""
    now = utcnow()
    counts = await open_counts(conn, list(directory.agents))
    agents = [{"name": a.name, "display_name": a.display_name, "role": a.role, "presence": presence.state(a.id),
               "open": counts.get(a.id, 0), "capacity": directory.capacity(a.id)}
              for a in sorted(directory.agents.values(), key=lambda a: a.display_name.lower())]
    waiting = (await conn.execute(sa.select(conversations.c.team, sa.func.count(), sa.func.min(conversations.c.updated_at))
                                  .where(conversations.c.state == "waiting").group_by(conversations.c.team))).all()
    queues = [{"name": team or "(an owner)", "waiting": n, "oldest_seconds": round((now - as_utc(oldest)).total_seconds(), 1),
               "members_available": sum(presence.available(u) for u in directory.queues.get(team or "", ()))}
              for team, n, oldest in waiting]
    query = conversation_query().order_by(conversations.c.updated_at.desc()).limit(BOARD_LIMIT)
    if filters.state:
        query = query.where(conversations.c.state == filters.state)
    else:
        query = query.where(conversations.c.state != "closed")
    if filters.user:
        who = directory.by_name.get(filters.user)
        uid = who.id if who else -1
        query = query.where(sa.or_(conversations.c.assigned_id == uid, conversations.c.owner_id == uid))
    if filters.queue:
        query = query.where(conversations.c.team == filters.queue)
    if filters.number:
        query = query.where(conversations.c.access_number == filters.number)
    rows = (await conn.execute(query)).all()
    listed = []
    for row in rows:
        item = conversation_payload(row) | {"state": row.state, "assigned": _name(directory, row.assigned_id),
                                            "owner": _name(directory, row.owner_id), "stuck": _stuck(row, directory, presence)}
        if not filters.stuck or item["stuck"]:
            listed.append(item)
    return {"agents": agents, "queues": queues, "conversations": listed}


def _name(directory: Directory, uid: int | None) -> str | None:
    agent = directory.agents.get(uid) if uid is not None else None
    return agent.name if agent else None


def _stuck(row, directory: Directory, presence: Presence) -> bool:
    if row.state != "waiting":
        return False
    if row.owner_id is not None:
        return not presence.available(row.owner_id)
    members = directory.queues.get(row.team or ADMINS, ())
    return not any(presence.available(u) for u in members)


async def move(conn, supervisor: Agent, conversation_id: int, target: Target, directory: Directory,
               teams: Mapping[str, tuple[str, ...]], presence: Available, taking_over: bool = False) -> Transferred:
    """Give any open or waiting conversation to `target` (the supervisor, taking it over), from whoever had it."""
    may_supervise(supervisor)
    conv = await get_conversation(conn, conversation_id)
    if conv is None or conv.state == "closed":
        raise Refused(f"no open conversation {conversation_id}", "conversation_id")
    by = supervisor.display_name or supervisor.name
    def note(label: str) -> str:
        return f"Taken over by {by}" if taking_over else f"Assigned to {label} by {by}"
    done = await hand_over(conn, conv, conv.assigned_id, target, note, directory, teams, presence, user_id=supervisor.id)
    await record(conn, actor=supervisor.name, action="conversation.taken_over" if taking_over else "conversation.assigned",
                 target=f"conversation:{conversation_id}", details={"to": target.user or f"team:{target.team}"})
    return done


async def monitor(conn, supervisor: Agent, conversation_id: int) -> dict:
    """A conversation and its messages, read-only."""
    may_supervise(supervisor)
    conv = await get_conversation(conn, conversation_id)
    if conv is None:
        raise Refused(f"no conversation {conversation_id}", "conversation_id")
    return {"conversation": conversation_payload(conv) | {"state": conv.state},
            "messages": await transcript_payload(conn, conversation_id)}
