"""Inbound media an agent may see: which message's attachment, through which connector (a read)."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from chat.domain.directory import Agent
from chat.store.tables import conversations, messages

SUPERVISING = ("supervisor", "admin")


@dataclass(frozen=True)
class Attachment:
    url: str  # the provider's URL (never shown to agents: they fetch through didchat)
    content_type: str
    connector: str


async def attachment(conn, agent: Agent, message_id: int, index: int) -> Attachment | None:
    """The message's `index`th attachment if the agent may see its conversation (theirs, assigned or owned, or any
    for supervisors and admins); None otherwise, so nobody learns which messages exist."""
    row = (await conn.execute(
        sa.select(messages.c.media, messages.c.connector, conversations.c.owner_id, conversations.c.assigned_id)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(messages.c.id == message_id))).first()
    if row is None or not isinstance(row.media, list) or not 0 <= index < len(row.media):
        return None
    if agent.role not in SUPERVISING and agent.id not in (row.owner_id, row.assigned_id):
        return None
    item = row.media[index]
    return Attachment(str(item.get("url", "")), str(item.get("content_type") or "application/octet-stream"),
                      row.connector or "")
