"""The admin HTTP API's plumbing: who calls, problem answers, bodies, lists, and the OpenAPI document.

Rules:
- Every answer that is not a success is RFC 9457 problem+json: `type`, `title`, `status`, `detail`,
  and for a bad body `errors`, one per field, each naming it (`field`, dotted, and `pointer`, a JSON
  pointer into the body). Nothing in a problem repeats a secret the caller sent.
- A caller proves who they are with `Authorization: Bearer` and either an agent's access token (the
  one the login gives) whose session still lives, or an API token (chat.domain.tokens) whose scopes
  allow the operation. Agents get 403 everywhere; supervisors may read (not the audit log, tokens
  or contacts); admins may read and write.
- Lists take `limit` (1-500, default 100) and `offset`, and answer `{items, total, limit, offset}`.
- Each operation is declared once (`Operation`): its route, its models and its answers make the
  OpenAPI 3.1 document served at /api/openapi.json, so the document cannot drift from the routes.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, RootModel, SecretStr, ValidationError
from pydantic.json_schema import models_json_schema

from chat.agents.auth import TOKENS, Unauthorized
from chat.domain import tokens
from chat.domain.directory import Agent
from chat.domain.sessions import session_alive
from chat.domain.tokens import Token
from chat.store.context import COMMIT, DB
from chat.workers.running import DIRECTORY
from scenarios import Problem
from scenarios.source import dotted, error_loc

PROBLEM = "application/problem+json"
STORE_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError)
READ, WRITE = "read", "write"
Handler = Callable[[web.Request, "Caller"], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than success, raised anywhere in a handler."""

    def __init__(self, status: int, title: str, detail: str, errors: Sequence[dict] = (), headers: dict | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors, self.headers = status, title, detail, list(errors), headers


def problem(status: int, title: str, detail: str, errors: Sequence[dict] = (), headers: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = list(errors)
    return web.Response(text=json.dumps(body), status=status, content_type=PROBLEM, headers=headers)


def field_error(path: Sequence[str | int], message: str) -> dict:
    """One field's problem: `field` as the CLI names it (`users[2].name`), `pointer` into the body (RFC 6901)."""
    return {"field": dotted(tuple(path)), "pointer": "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1")
                                                                    for p in path), "detail": message}


def _path(field: str) -> list[str | int]:
    """`users[2].name` as ['users', 2, 'name']."""
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", field)]


def invalid(errors: Iterable[dict], detail: str = "the request body is not valid") -> ApiError:
    errors = list(errors)
    if errors:
        detail = f"{detail}: " + "; ".join(f"{e['field'] or '(body)'}: {e['detail']}" for e in errors[:5])
    return ApiError(422, "Unprocessable Content", detail, errors)


def from_problems(problems: Iterable[Problem], prefix: Sequence[str | int] = ()) -> ApiError:
    """The configuration's problems (chat.config, chat.domain.running) as field errors; a problem under
    `prefix` (the resource the request is about) is named by its path below it."""
    head = list(prefix)
    errors = []
    for p in problems:
        path = _path(p.field)
        if head and path[:len(head)] == head:
            path = path[len(head):]
        errors.append(field_error(path, p.message))
    return invalid(errors, "the change is not valid")


@dataclass(frozen=True)
class Caller:
    """Who calls: an agent with their session's access token, or an API token (chat.domain.tokens)."""

    name: str  # as the audit log records them: the user's name, or token:NAME
    address: str
    agent: Agent | None = None
    token: Token | None = None


UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="didchat"'}
INVALID = {"WWW-Authenticate": 'Bearer realm="didchat", error="invalid_token"'}


async def caller(request: web.Request, op: Operation) -> Caller:
    """Who calls, allowed `op`, or ApiError 401/403."""
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise ApiError(401, "Unauthorized", "give an access token or an API token: Authorization: Bearer TOKEN",
                       headers=UNAUTHORIZED)
    address = request.remote or ""
    if presented.startswith(tokens.PREFIX):
        return await _token_caller(request, op, presented, address)
    agent = await session_agent(request, presented)
    allowed = {"admin": (READ, WRITE), "supervisor": () if op.admin_only else (READ,)}.get(agent.role, ())
    if op.need not in allowed:
        detail = f"{agent.role}s may not {op.need} this resource" if agent.role != "agent" else \
            "agents may not use the admin API"
        raise ApiError(403, "Forbidden", detail)
    return Caller(agent.name, address, agent=agent)


def bearer(request: web.Request) -> str:
    """The request's bearer token, or ApiError 401."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "Unauthorized", "give an access token: Authorization: Bearer TOKEN", headers=UNAUTHORIZED)
    return presented.strip()


async def session_agent(request: web.Request, presented: str) -> Agent:
    """The agent whose live session's access token `presented` is, or ApiError 401."""
    app = request.app
    try:
        claims = app[TOKENS].verify(presented)
        agent = app[DIRECTORY].current.agents.get(claims.user_id)
        async with app[DB].read() as conn:
            alive = agent is not None and await session_alive(conn, claims.session_id, claims.user_id)
    except Unauthorized as err:
        raise ApiError(401, "Unauthorized", f"the access token is not valid: {err}", headers=INVALID) from None
    if agent is None or not alive:
        raise ApiError(401, "Unauthorized", "the session of this token has ended: log in again", headers=INVALID)
    return agent


async def _token_caller(request: web.Request, op: Operation, presented: str, address: str) -> Caller:
    commit = request.app[COMMIT]
    async with request.app[DB].read() as conn:
        token = await tokens.verify(conn, presented)
        seen = await tokens.last_used(conn, token.id) if token is not None else None
    if token is None:
        raise ApiError(401, "Unauthorized", "the API token is not valid (unknown, revoked or expired)", headers=INVALID)
    if op.resource == "tokens" or not token.allows(op.resource, op.need):
        raise ApiError(403, "Forbidden", f"token {token.name!r} has no scope to {op.need} {op.resource}")
    await commit.run(partial(tokens.used, token_id=token.id, address=address, seen_before=seen))
    return Caller(f"token:{token.name}", address, token=token)


async def body_of(request: web.Request) -> dict:
    """The JSON object the request carries, or 415/400."""
    if request.content_type != "application/json":
        raise ApiError(415, "Unsupported Media Type", "send the body as application/json")
    try:
        data = json.loads(await request.text(), parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, "Bad Request", f"the body is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "Unprocessable Content", "the body must be a JSON object",
                       [field_error([], "the body must be a JSON object")])
    return data


def _not_json(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


@web.middleware
async def problems(request: web.Request, handler):
    """What aiohttp itself answers under /api/ (no such route, a method a route lacks, a body too large) as
    problem+json too."""
    try:
        return await handler(request)
    except web.HTTPException as err:
        if not request.path.startswith("/api/") or err.status < 400:
            raise
        headers = {k: v for k, v in err.headers.items() if k.lower() == "allow"}
        return problem(err.status, err.reason, err.text or err.reason, headers=headers or None)


def validated(model: type[BaseModel], data: dict) -> dict:
    """`data` as `model` allows it (only the fields given; secrets in clear), or 422 naming each bad field."""
    try:  # strict, as JSON: 0 is no boolean, "5" no number (the file's YAML has real types; a request must too)
        parsed = model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as err:
        raise invalid(field_error(list(error_loc(data, e)), e["msg"].removeprefix("Value error, "))
                      for e in err.errors()) from None
    inner = parsed.root if isinstance(parsed, RootModel) else parsed  # one model of a union (a connector's type)
    given = inner.model_dump(mode="json", exclude_unset=True)
    for key in given:
        if isinstance(value := getattr(inner, key), SecretStr):
            given[key] = value.get_secret_value()
    return given


def page_of(request: web.Request) -> tuple[int, int]:
    """The request's limit and offset (400 naming the parameter if out of range)."""
    return _int(request, "limit", 100, 1, 500), _int(request, "offset", 0, 0, 10**9)


def page(request: web.Request, items: Sequence[dict]) -> web.Response:
    """One page of `items` by the request's limit and offset."""
    limit, offset = page_of(request)
    return web.json_response({"items": list(items[offset:offset + limit]), "total": len(items),
                              "limit": limit, "offset": offset})


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, "Bad Request", f"{name} must be a whole number from {low} to {high}",
                       [field_error([name], f"must be a whole number from {low} to {high}")])
    return value


@dataclass(frozen=True)
class Operation:
    """One route of the API and how the OpenAPI document describes it."""

    method: str
    path: str
    handler: Handler
    need: str
    summary: str
    tag: str
    resource: str  # what a token's scope names (chat.domain.tokens.RESOURCES, or "tokens": people only)
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None  # the success body (None: 204 No Content)
    status: int = 200
    listing: bool = False  # answer is one item of a page
    query: tuple[tuple[str, str], ...] = ()  # filters: (name, description)
    errors: tuple[int, ...] = field(default=())  # besides 401, 403 (and 400/415/422 with a body)
    admin_only: bool = False  # supervisors may not read it either
    key_field: str | None = None  # a creation's: the field of its answer that names the item (OpenAPI links)


def wrap(op: Operation):
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            who = await caller(request, op)
            return await op.handler(request, who)
        except ApiError as err:
            return problem(err.status, err.title, err.detail, err.errors, err.headers)
    return handle


def add(app: web.Application, operations: Sequence[Operation]) -> None:
    for op in operations:
        app.router.add_route(op.method, op.path, wrap(op))
    app.middlewares.append(problems)


PAGE_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0}},
]
ANSWERS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
           412: "Precondition Failed", 415: "Unsupported Media Type", 422: "Unprocessable Content"}
PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "pointer", "detail"], "properties": {
            "field": {"type": "string"}, "pointer": {"type": "string"}, "detail": {"type": "string"}}}},
    },
}


def openapi(operations: Sequence[Operation], version: str) -> dict:
    """The OpenAPI 3.1 document of `operations`, their schemas from their pydantic models."""
    models = sorted({m for op in operations for m in (op.body, op.answer) if m is not None}, key=lambda m: m.__name__)
    keyed: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((m, "validation") for m in models), *((m, "serialization") for m in models)]
    refs, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    schemas = dict(defs.get("$defs", {})) | {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict] = {}
    for op in operations:
        entry: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": op.handler.__name__,
                                 "security": [{"bearer": []}], "responses": {}}
        params: list[dict[str, Any]] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _path_names(op.path)]
        if op.listing:
            params += PAGE_PARAMS
        params += [{"name": name, "in": "query", "description": text, "schema": {"type": "string"}} for name, text in op.query]
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(op.body, "validation")]}}}
        if op.answer is None:
            entry["responses"][str(op.status)] = {"description": "done"}
        else:
            schema = refs[(op.answer, "serialization")]
            if op.listing:
                schema = {"type": "object", "required": ["items", "total", "limit", "offset"], "properties": {
                    "items": {"type": "array", "items": schema}, "total": {"type": "integer"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}}
            entry["responses"][str(op.status)] = {"description": "done", "content": {"application/json": {"schema": schema}}}
            if op.key_field:  # what was made can be read, changed and deleted next (schemathesis's stateful phase)
                entry["responses"][str(op.status)]["links"] = {
                    other.handler.__name__: {"operationId": other.handler.__name__,
                                             "parameters": {"key": f"$response.body#/{op.key_field}"}}
                    for other in operations if other.path == f"{op.path}/{{key}}"}
        codes = {401, 403, *op.errors} | ({400, 415, 422} if op.body is not None else set()) | ({400} if op.listing else set())
        for code in sorted(codes):
            entry["responses"][str(code)] = {"description": ANSWERS[code], "content": {
                PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "didchat admin API", "version": version,
                 "description": "Users, teams, access numbers, callback numbers and connectors of a running didchat, changed "
                                "without a restart (README, \"Administering didchat\")."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "an access token from POST /api/login (an admin's; a supervisor's reads only), or an "
                           "API token (didchat token create; dct_…) within its scopes"}}},
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
