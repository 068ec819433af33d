"""The agent's `transcript` call: one conversation they may see and all its messages, for a search result that
`sync` does not list (closed long ago, past its newest 500, on their number but with a colleague).

Rules: who may see it is chat.domain.contacts.visible's rule (the conversation's agent, its number's owner,
supervisors and admins); anything else is refused as a conversation that does not exist. The Conversation is
as `sync` lists it (with `unread` and `opted_out`); the messages are every one, in seq order, as `monitor` gives
them. One read transaction; nothing changes.
"""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from chat.domain.conversations import transcript_payload
from chat.domain.directory import Agent
from chat.domain.history import listed
from chat.domain.lifecycle import visible
from chat.domain.outbound import Id
from chat.store.context import DB


class TranscriptPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    conversation_id: Id


async def transcript(app: web.Application, agent: Agent, payload: TranscriptPayload) -> dict:
    """The conversation as a list shows it, and its messages."""
    async with app[DB].read() as conn:
        conv = await visible(conn, agent, payload.conversation_id)
        [shown] = await listed(conn, [conv])
        return {"ok": True, "conversation": shown, "messages": await transcript_payload(conn, conv.id)}


TRANSCRIPT_CALLS = {"transcript": (TranscriptPayload, transcript)}
