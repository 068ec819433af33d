"""Agent calls for the contact panel: `contact` (the contact of a conversation) and `contact_rename`.

Rules: the rules are chat.domain.contacts'. A new name is pushed as `contact` `{"number", "name"}` to every tab of
every agent with that contact in their list (the renaming tab too): the client sets the name of each of its
conversations with that contact number, as `sync` gives it in each Conversation's `contact`.
"""
from __future__ import annotations

from functools import partial

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from chat.domain.contacts import clean_name, contact_panel, rename_contact
from chat.domain.directory import Agent
from chat.domain.outbound import Id
from chat.store.context import COMMIT, DB
from chat.workers.hub import HUB


class ContactPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    conversation_id: Id


class RenamePayload(ContactPayload):
    name: str | None = Field(strict=True)  # "" or null clears it


async def contact(app: web.Application, agent: Agent, payload: ContactPayload) -> dict:
    async with app[DB].read() as conn:
        return {"ok": True, "contact": await contact_panel(conn, agent, payload.conversation_id)}


async def rename(app: web.Application, agent: Agent, payload: RenamePayload) -> dict:
    name = clean_name(payload.name)  # refused here, not in the unit: a unit that raises fails its whole batch once
    renamed = await app[COMMIT].run(partial(rename_contact, agent=agent, conversation_id=payload.conversation_id, name=name))
    for user_id in renamed.users:
        await app[HUB].emit(user_id, "contact", renamed.contact)
    return {"ok": True, "contact": renamed.contact}


CONTACT_CALLS = {"contact": (ContactPayload, contact), "contact_rename": (RenamePayload, rename)}
