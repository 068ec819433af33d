"""Agent calls for canned replies: `canned` (what the agent may use), `canned_save` and `canned_delete` (their own).

Rules: the rules of the replies are chat.domain.canned's; an agent writes only their own. Whenever a reply an agent
may use changes (here, in another tab, or by an admin: chat.agents.canned_admin), their tabs are pushed
`canned_changed` `{}` and read `canned` again (`tell`).
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from chat.domain.canned import PERSONAL, VARIABLES, Owner, Shortcut, Text, concerned, delete_reply, save_reply, usable_replies
from chat.domain.directory import Agent
from chat.domain.outbound import Id
from chat.store.context import COMMIT, DB
from chat.workers.hub import HUB
from chat.workers.running import DIRECTORY


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SavePayload(Payload):
    id: Id | None = None  # given: change that reply of yours; none: a new one
    shortcut: Shortcut
    text: Text


class DeletePayload(Payload):
    id: Id


async def tell(app: web.Application, owners: Iterable[Owner]) -> None:
    """Push `canned_changed` to every agent whose list these owners' replies are in."""
    for user_id in sorted(concerned(app[DIRECTORY].current, owners)):
        await app[HUB].emit(user_id, "canned_changed", {})


async def listing(app: web.Application, agent: Agent, payload: Payload) -> dict:
    async with app[DB].read() as conn:
        replies = await usable_replies(conn, agent.id, app[DIRECTORY].current.teams_of.get(agent.id, ()))
    return {"ok": True, "replies": replies, "variables": list(VARIABLES)}


async def save(app: web.Application, agent: Agent, payload: SavePayload) -> dict:
    saved = await app[COMMIT].run(partial(save_reply, owner=Owner(PERSONAL, user_id=agent.id), shortcut=payload.shortcut,
                                          text=payload.text, reply_id=payload.id, actor=agent.name))
    await tell(app, saved.owners)
    return {"ok": True, "reply": saved.reply}


async def delete(app: web.Application, agent: Agent, payload: DeletePayload) -> dict:
    owner = await app[COMMIT].run(partial(delete_reply, editor=Owner(PERSONAL, user_id=agent.id), reply_id=payload.id,
                                          actor=agent.name))
    await tell(app, [owner])
    return {"ok": True}


CANNED_CALLS = {"canned": (Payload, listing), "canned_save": (SavePayload, save), "canned_delete": (DeletePayload, delete)}
