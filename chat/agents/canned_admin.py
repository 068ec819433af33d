"""The admin API's canned replies: the global ones and each team's (agents keep their own: chat.agents.canned_calls).

Rules: the replies' rules are chat.domain.canned's; a team reply names a team of the running configuration. Admins
write (each write in the audit log), supervisors and tokens with `read` read. After a write, the agents whose list
it changed are pushed `canned_changed` (every agent for a global reply, the team's members for a team's).
"""
from __future__ import annotations

import re
from functools import partial

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from chat.agents.api import READ, WRITE, ApiError, Caller, Operation, body_of, field_error, invalid, page_of, validated
from chat.agents.canned_calls import tell
from chat.config import Name
from chat.domain.canned import (
    GLOBAL,
    TEAM,
    NoSuchReply,
    Owner,
    Scope,
    Shortcut,
    ShortcutTaken,
    Text,
    delete_reply,
    save_reply,
    shared_replies,
    shared_reply,
)
from chat.domain.outbound import STORE_INT_MAX, Refused
from chat.store.context import COMMIT, DB
from chat.workers.running import DIRECTORY

BASE = "/api/v1/canned-replies"
KEY = re.compile(r"[0-9]{1,10}")


class NewCannedReply(BaseModel):
    """A global reply (every agent may use it), or a team's (its members may)."""

    model_config = ConfigDict(extra="forbid")
    scope: Scope
    team: Name | None = Field(default=None, description="a team's reply: the team (a key of teams); none for a global one")
    shortcut: Shortcut = Field(description="what an agent types after /; once per scope, whatever its case")
    text: Text = Field(description="it may hold {contact.name}, {contact.number}, {agent.name}, {agent.display_name}")


class CannedReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    scope: Scope
    team: str | None
    shortcut: str
    text: str
    created_at: str
    updated_at: str


def _key(request: web.Request) -> int:
    key = request.match_info["key"]
    if not KEY.fullmatch(key) or not 1 <= int(key) <= STORE_INT_MAX:
        raise ApiError(404, "Not Found", f"no canned reply {key[:40]!r} (replies are named by their id)")
    return int(key)


def _owner(request: web.Request, given: dict) -> Owner:
    """Whose reply the body makes, or 422 naming `team`."""
    team = given.get("team")
    if given["scope"] == GLOBAL:
        if team is not None:
            raise invalid([field_error(["team"], "a global reply has no team; give scope team for a team's")])
        return Owner(GLOBAL)
    if team is None:
        raise invalid([field_error(["team"], "a team's reply names its team")])
    if team not in request.app[DIRECTORY].config.teams:
        raise invalid([field_error(["team"], f"no team named {team!r} in teams")])
    return Owner(TEAM, team)


async def _save(request: web.Request, who: Caller, reply_id: int | None) -> dict:
    given = validated(NewCannedReply, await body_of(request))
    owner = _owner(request, given)
    try:
        saved = await request.app[COMMIT].run(partial(save_reply, owner=owner, shortcut=given["shortcut"],
                                                      text=given["text"], reply_id=reply_id, actor=who.name,
                                                      address=who.address))
    except NoSuchReply as err:
        raise ApiError(404, "Not Found", str(err)) from None
    except ShortcutTaken as err:
        raise ApiError(409, "Conflict", str(err), [field_error(["shortcut"], str(err))]) from None
    except Refused as err:
        raise invalid([field_error([err.field or ""], str(err))]) from None
    await tell(request.app, saved.owners)
    return saved.reply


async def list_canned_replies(request: web.Request, who: Caller) -> web.Response:
    limit, offset = page_of(request)
    q = request.query
    async with request.app[DB].read() as conn:
        items, total = await shared_replies(conn, limit=limit, offset=offset, scope=q.get("scope"), team=q.get("team"),
                                            q=q.get("q"))
    return web.json_response({"items": items, "total": total, "limit": limit, "offset": offset})


async def create_canned_reply(request: web.Request, who: Caller) -> web.Response:
    reply = await _save(request, who, None)
    return web.json_response(reply, status=201, headers={"Location": f"{BASE}/{reply['id']}"})


async def get_canned_reply(request: web.Request, who: Caller) -> web.Response:
    reply_id = _key(request)
    async with request.app[DB].read() as conn:
        reply = await shared_reply(conn, reply_id)
    if reply is None:
        raise ApiError(404, "Not Found", f"no canned reply {reply_id}")
    return web.json_response(reply)


async def change_canned_reply(request: web.Request, who: Caller) -> web.Response:
    return web.json_response(await _save(request, who, _key(request)))


async def delete_canned_reply(request: web.Request, who: Caller) -> web.Response:
    reply_id = _key(request)
    try:
        owner = await request.app[COMMIT].run(partial(delete_reply, editor=Owner(GLOBAL), reply_id=reply_id,
                                                      actor=who.name, address=who.address))
    except NoSuchReply as err:
        raise ApiError(404, "Not Found", str(err)) from None
    await tell(request.app, [owner])
    return web.Response(status=204)


TAG, RESOURCE, ITEM = "canned replies", "canned-replies", f"{BASE}/{{key}}"
OPERATIONS = [
    Operation("GET", BASE, list_canned_replies, READ, "List the global and team canned replies", TAG, RESOURCE,
              answer=CannedReply, listing=True, query=(("scope", "only global or team replies"),
                                                       ("team", "only this team's"), ("q", "only shortcuts holding this"))),
    Operation("POST", BASE, create_canned_reply, WRITE, "Create a global or team canned reply", TAG, RESOURCE,
              body=NewCannedReply, answer=CannedReply, status=201, errors=(409,), key_field="id"),
    Operation("GET", ITEM, get_canned_reply, READ, "Get a canned reply", TAG, RESOURCE, answer=CannedReply, errors=(404,)),
    Operation("PUT", ITEM, change_canned_reply, WRITE, "Replace a canned reply (scope, team, shortcut and text)", TAG,
              RESOURCE, body=NewCannedReply, answer=CannedReply, errors=(404, 409)),
    Operation("DELETE", ITEM, delete_canned_reply, WRITE, "Delete a canned reply", TAG, RESOURCE, status=204,
              errors=(404,)),
]
