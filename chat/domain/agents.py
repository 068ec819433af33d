"""An agent's own state in the store (units of work): the chosen presence, what they have read."""
from __future__ import annotations

import sqlalchemy as sa

from chat.store.tables import conversations, users


async def saved_presence(conn, user_id: int) -> str | None:
    """The state the agent chose last (ready / not ready), kept across logins."""
    return await conn.scalar(sa.select(users.c.presence).where(users.c.id == user_id))


async def save_presence(conn, user_id: int, state: str) -> None:
    await conn.execute(users.update().where(users.c.id == user_id).values(presence=state))


async def mark_read(conn, user_id: int, conversation_id: int, seq: int) -> None:
    """The agent read up to `seq` of a conversation of theirs (never backwards)."""
    await conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id, conversations.c.assigned_id == user_id, conversations.c.read_seq < seq)
        .values(read_seq=seq)
    )
