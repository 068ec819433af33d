"""The admin API's records and erasure: the audit log, API tokens, and deleting a contact.

Rules: admins only (a supervisor reads none of it); tokens are managed by people, never by a token
(chat.agents.api); a new token is answered once, with its secret, and never again.
"""
from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from chat.agents.api import READ, WRITE, ApiError, Caller, Operation, body_of, field_error, page_of, validated
from chat.domain import audit, tokens
from chat.domain.erasure import delete_contact
from chat.store.context import COMMIT, DB
from gateway.numbers import InvalidNumber, normalize_number

BASE = "/api/v1"
Scope = Literal[tokens.SCOPES]  # type: ignore[valid-type]


class AuditRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    at: str
    actor: str = Field(description="a user's name, token:NAME, cli, file or system")
    action: str = Field(description="config.changed, login, login.failed, token.created, token.revoked, token.used, "
                                    "conversation.transferred, conversation.closed, config.exported, contact.deleted, "
                                    "retention.expired")
    target: str
    address: str
    details: dict | None = None


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    scopes: tuple[Scope, ...] = Field(min_length=1, description="read, write, or RESOURCE:read|write")
    days: float | None = Field(default=90, gt=0, le=3650, description="it expires after this long; null: never")


class TokenInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    scopes: list[str]
    created_by: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    state: Literal["live", "revoked", "expired"]
    token: str | None = Field(default=None, description="the token itself: in the answer to its creation only")


class Deleted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: int
    conversations: int


def _when(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "Bad Request", f"{name} must be an ISO 8601 time, e.g. 2026-12-01T09:00:00Z",
                       [field_error([name], "must be an ISO 8601 time")]) from None
    if value.tzinfo is None:
        raise ApiError(400, "Bad Request", f"{name} needs its UTC offset (…Z or …+01:00)",
                       [field_error([name], "needs its UTC offset")])
    return value


async def list_audit(request: web.Request, who: Caller) -> web.Response:
    since, until = _when(request, "since"), _when(request, "until")
    limit, offset = page_of(request)
    q = request.query
    async with request.app[DB].read() as conn:
        items, total = await audit.query(conn, limit=limit, offset=offset, actor=q.get("actor"), action=q.get("action"),
                                         target=q.get("target"), since=since, until=until)
    return web.json_response({"items": items, "total": total, "limit": limit, "offset": offset})


async def list_tokens(request: web.Request, who: Caller) -> web.Response:
    async with request.app[DB].read() as conn:
        items = await tokens.listing(conn)
    limit, offset = page_of(request)
    return web.json_response({"items": items[offset:offset + limit], "total": len(items), "limit": limit, "offset": offset})


async def create_token(request: web.Request, who: Caller) -> web.Response:
    given = validated(NewToken, await body_of(request))
    secret, shown = await request.app[COMMIT].run(partial(
        tokens.create, name=given["name"], scopes=tuple(dict.fromkeys(given["scopes"])), created_by=who.name,
        days=given.get("days", 90), address=who.address))
    return web.json_response(shown | {"token": secret}, status=201, headers={"Location": f"{BASE}/tokens/{shown['id']}"})


async def revoke_token(request: web.Request, who: Caller) -> web.Response:
    done = await request.app[COMMIT].run(partial(tokens.revoke, token_id=request.match_info["key"], by=who.name,
                                                 address=who.address))
    if not done:
        raise ApiError(404, "Not Found", f"no live token {request.match_info['key']!r}")
    return web.Response(status=204)


async def erase_contact(request: web.Request, who: Caller) -> web.Response:
    key = request.match_info["key"]
    try:
        number = normalize_number(key)
    except InvalidNumber:
        raise ApiError(404, "Not Found", f"{key!r} is not a phone number") from None
    counts = await request.app[COMMIT].run(partial(delete_contact, number=number, actor=who.name, address=who.address))
    if counts is None:
        raise ApiError(404, "Not Found", "no contact with this number")
    return web.json_response(counts)


OPERATIONS = [
    Operation("GET", f"{BASE}/audit", list_audit, READ, "The audit log, newest first", "audit", "audit",
              answer=AuditRecord, listing=True, admin_only=True, query=(
                  ("actor", "who (a user's name, token:NAME, cli, file, system)"),
                  ("action", "what (e.g. config.changed, or login*)"), ("target", "what it was done to"),
                  ("since", "from this time on (ISO 8601 with its offset)"), ("until", "before this time"))),
    Operation("GET", f"{BASE}/tokens", list_tokens, READ, "List API tokens (never their secrets)", "tokens", "tokens",
              answer=TokenInfo, listing=True, admin_only=True),
    Operation("POST", f"{BASE}/tokens", create_token, WRITE, "Create an API token (its secret is in this answer only)",
              "tokens", "tokens", body=NewToken, answer=TokenInfo, status=201, admin_only=True, key_field="id"),
    Operation("DELETE", f"{BASE}/tokens/{{key}}", revoke_token, WRITE, "Revoke an API token (by id or name)", "tokens",
              "tokens", status=204, errors=(404,), admin_only=True),
    Operation("DELETE", f"{BASE}/contacts/{{key}}", erase_contact, WRITE,
              "Delete a contact and everything of theirs: messages, conversations, pending sends and CRM activities",
              "contacts", "contacts", answer=Deleted, errors=(404,), admin_only=True),
]
