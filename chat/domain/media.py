"""Media an agent may see: which message's attachment, and where its bytes are (a read).

Rules: an inbound attachment is the provider's URL, fetched through the message's connector; an outbound one is
an agent's upload (chat.domain.uploads), read from the store. Either is shown only to whoever may see the
conversation; to anyone else it does not exist.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from chat.domain.directory import Agent
from chat.store.tables import conversations, messages

SUPERVISING = ("supervisor", "admin")


def may_see(agent: Agent, conv) -> bool:
    """Whether the agent may see a conversation (a row with owner_id and assigned_id): theirs, or any for
    supervisors and admins."""
    return agent.role in SUPERVISING or agent.id in (conv.owner_id, conv.assigned_id)


@dataclass(frozen=True)
class Attachment:
    url: str  # the provider's URL (never shown to agents: they fetch through didchat); "" for an upload
    content_type: str
    connector: str
    upload_id: int | None = None  # an agent's upload (outbound): read from the store, not from a provider
    filename: str | None = None


async def attachment(conn, agent: Agent, message_id: int, index: int) -> Attachment | None:
    """The message's `index`th attachment if the agent may see its conversation (theirs, assigned or owned, or any
    for supervisors and admins); None otherwise, so nobody learns which messages exist."""
    row = (await conn.execute(
        sa.select(messages.c.media, messages.c.connector, conversations.c.owner_id, conversations.c.assigned_id)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(messages.c.id == message_id))).first()
    if row is None or not isinstance(row.media, list) or not 0 <= index < len(row.media):
        return None
    if not may_see(agent, row):
        return None
    item = row.media[index]
    upload = item.get("upload_id")
    return Attachment(str(item.get("url", "")), str(item.get("content_type") or "application/octet-stream"),
                      row.connector or "", int(upload) if isinstance(upload, int) else None, item.get("filename"))
