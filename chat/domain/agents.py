"""An agent's own state in the store (units of work): the chosen presence, what they have read, what waits.

(The chosen presence is read at connect together with the session: chat.domain.sessions.live_presence.)
"""
from __future__ import annotations

import sqlalchemy as sa

from chat.domain.waiting import WAITING
from chat.store.tables import conversations, users

# Built once (a statement keeps its cache key): asked whenever an agent becomes ready.
_WAITS = sa.select(sa.exists().where(WAITING, sa.or_(
    conversations.c.owner_id == sa.bindparam("user_id"), conversations.c.team.in_(sa.bindparam("queues", expanding=True)))))


async def save_presence(conn, user_id: int, state: str) -> None:
    await conn.execute(users.update().where(users.c.id == user_id).values(presence=state))


CHOSEN = sa.select(users.c.chosen_number).where(users.c.id == sa.bindparam("uid"))


async def chosen_number(conn, agent) -> str | None:
    """The default number the agent chose, if they still may present it."""
    number = await conn.scalar(CHOSEN, {"uid": agent.id})
    return number if number in agent.may_present else None


async def choose_number(conn, agent, number: str | None) -> str | None:
    """The agent makes `number` (one they may present) their default for new conversations; None: the configured one."""
    if number is not None and number not in agent.may_present:
        raise ValueError(f"you may not present {number}; yours are: {', '.join(agent.may_present) or 'none'}")
    await conn.execute(users.update().where(users.c.id == agent.id).values(chosen_number=number))
    return number


async def mark_read(conn, user_id: int, conversation_id: int, seq: int) -> None:
    """The agent read up to `seq` of a conversation of theirs (never backwards)."""
    await conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id, conversations.c.assigned_id == user_id, conversations.c.read_seq < seq)
        .values(read_seq=seq)
    )


async def anything_waits(conn, user_id: int, queues: tuple[str, ...]) -> bool:
    """Whether a conversation waits for this agent, as its owner or in one of `queues`.

    A read, so that an agent who becomes ready with nothing waiting costs no write unit (the
    claim itself is chat.domain.waiting's)."""
    return bool(await conn.scalar(_WAITS, {"user_id": user_id, "queues": list(queues)}))
