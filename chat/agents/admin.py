"""The admin API's resources: users, teams, access numbers, callback numbers, connectors, the running configuration.

Rules:
- Each resource is a part of the running configuration (chat.domain.running); a write edits that
  document and applies it as the next revision, on every node at once (chat.workers.running). So
  the API checks exactly what a configuration file is checked for, and a problem names the field of
  the request (`default_number`), or the place elsewhere it breaks (`access_numbers.2.user`).
- Bodies are the configuration's own models (chat.config); a user's `password` and a connector's
  secrets are write-only and never answered (a secret reads `${didchat:stored}`, and a change that
  leaves it out keeps it: chat.domain.secrets), and a user's `teams` are the teams whose members
  name them. A connector's answer adds its live state and the numbers it serves.
- A user, team, callback number or connector another part still names is not deleted: 409, naming
  the parts.
"""
from __future__ import annotations

import functools
import json
import typing
from collections.abc import Callable
from typing import Annotated, Any, Optional, Union

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel, SecretStr, create_model

from chat.agents.api import (
    READ,
    WRITE,
    ApiError,
    Caller,
    Operation,
    add,
    body_of,
    field_error,
    from_problems,
    openapi,
    page,
    validated,
)
from chat.agents.documents import CALLBACKS, CONNECTORS, NUMBERS, TEAMS, USERS, Collection, set_teams
from chat.agents.ops import connector_states
from chat.config import AccessNumberConfig, CallbackNumber, Name, Strict, TeamConfig, UserConfig
from chat.config import Connector as ConnectorConfig
from chat.domain.running import Conflict
from chat.domain.secrets import SECRET_FIELDS, STORED, display
from chat.workers.running import DIRECTORY
from gateway.numbers import InvalidNumber, normalize_number
from scenarios import SourceError

BASE = "/api/v1"
SECRET_NAMES = {name for names in SECRET_FIELDS.values() for name in names}


def _variant(name: str, model: type[BaseModel], drop: frozenset[str] | set[str] = frozenset(), extra: dict | None = None,
             optional: bool = False) -> type[BaseModel]:
    """`model`'s fields (less `drop`, with `extra`) as a new model; `optional`: every field may be left out."""
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        if key not in drop:
            fields[key] = (Optional[info.annotation], None) if optional else (info.annotation, info)  # noqa: UP045
    fields |= extra or {}
    return create_model(name, __base__=Strict, __doc__=model.__doc__, __module__=model.__module__, **fields)


TEAMS_FIELD = (tuple[Name, ...] | None, Field(default=None, description="the teams this user is a member of"))
User = _variant("User", UserConfig, {"password", "password_hash"}, {"teams": TEAMS_FIELD})
NewUser = _variant("NewUser", UserConfig, {"password_hash"}, {
    "password": (SecretStr, Field(min_length=8, max_length=200, description="write-only: never answered")),
    "teams": TEAMS_FIELD})
UserChange = _variant("UserChange", NewUser, {"name"}, optional=True)
Team = _variant("Team", TeamConfig, extra={"name": (Name, ...)})
TeamChange = _variant("TeamChange", TeamConfig, optional=True)
Number = _variant("AccessNumber", AccessNumberConfig)
NumberChange = _variant("AccessNumberChange", AccessNumberConfig, {"number"}, optional=True)
Callback = _variant("CallbackNumber", CallbackNumber, extra={"name": (Name, ...)})
CallbackChange = _variant("CallbackNumberChange", CallbackNumber, optional=True)


SECRET_IN = "write-only: the value, or ${NAME} of an environment variable each node reads it from"
SECRET_OUT = f"never the value: {STORED} (it is stored, sealed), or the ${{NAME}} reference it was given"
STATE = (str, Field(description="an SMPP link's: bound, binding, …, or standby (another node holds the bind), starting; "
                                "an SMS API's: configured"))
SERVES = (tuple[str, ...], Field(description="every number it sends and receives for: its own and the access numbers "
                                             "that name it"))


def _connector_variants(suffix: str, secret: tuple, extra: dict | None = None) -> Any:
    variants = [_variant(f"{cls.__name__.removesuffix('Settings').removesuffix('Connector')}{suffix}", cls, extra=(extra or {}) | {
        name: secret for name in SECRET_FIELDS[cls.model_fields["type"].annotation.__args__[0]]})
        for cls in typing.get_args(typing.get_args(ConnectorConfig)[0])]
    return Annotated[Union[tuple(variants)], Field(discriminator="type")]  # noqa: UP007


Connector = create_model("Connector", __base__=RootModel[_connector_variants(  # type: ignore[call-overload,misc]
    "", (str, Field(description=SECRET_OUT)), {"state": STATE, "serves": SERVES})])
NewConnector = create_model("NewConnector", __base__=RootModel[_connector_variants(  # type: ignore[call-overload,misc]
    "New", (SecretStr, Field(min_length=1, max_length=4096, description=SECRET_IN)))])
ConnectorChange = create_model(  # type: ignore[call-overload]
    "ConnectorChange", __base__=Strict, __doc__="The fields given change; a secret left out is kept.", **{
    key: (Optional[info.annotation if key not in SECRET_NAMES else SecretStr], None)  # noqa: UP045
    for cls in typing.get_args(typing.get_args(ConnectorConfig)[0]) for key, info in cls.model_fields.items()
    if key not in ("name", "type")})


class RunningChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any] = Field(description="the configuration wanted: users (a new one with its password), "
                                                 "access_numbers, callback_numbers, teams, conversations, opt_out_scope")


class Running(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revision: int
    document: dict[str, Any] = Field(description="the running configuration (users without passwords)")


def _shown(request: web.Request, collection: Collection, item: dict, doc: dict, out: type[BaseModel]) -> dict:
    """An item as the API answers it: every field, defaults included, no secrets (a connector's as `display` shows
    them, with its live state and the numbers it serves)."""
    body = dict(item)
    if collection is USERS:
        body = {k: v for k, v in item.items() if k not in ("password", "password_hash")}
        body["teams"] = [t["name"] for t in TEAMS.items(doc) if item["name"] in t.get("members", ())]
    if collection is CONNECTORS:
        body = display({"connectors": [body]})["connectors"][0]
        owners = request.app[DIRECTORY].config.connectors_by_number()
        body["state"] = connector_states(request.app).get(item["name"], "starting")
        body["serves"] = sorted(n for n, owner in owners.items() if owner.name == item["name"])
    return out.model_validate(body).model_dump(mode="json")


async def _change(request: web.Request, who: Caller, edit: Callable[[dict], dict], prefix: Callable[[dict], tuple],
                  passwords: dict[str, str] | None = None):
    running = request.app[DIRECTORY]
    seen: dict[str, Any] = {}

    def editing(doc: dict) -> dict:
        seen["doc"] = edit(doc)
        _keeps_an_admin(seen["doc"], who)
        return seen["doc"]
    try:
        return await running.change(editing, author=who.name, passwords=passwords, address=who.address), seen["doc"]
    except SourceError as err:
        raise from_problems(err.problems, prefix(seen["doc"]) if "doc" in seen else ()) from None
    except Conflict as err:
        raise ApiError(409, "Conflict", f"{err}: other changes kept landing first; send it again") from None


def _keeps_an_admin(doc: dict, who: Caller) -> None:
    """Refuse (409) a change that leaves no enabled admin, or that takes away the calling admin's own access."""
    admins = {u.get("name") for u in doc.get("users") or () if isinstance(u, dict) and u.get("role") == "admin"
              and not u.get("disabled")}
    if not admins:
        raise ApiError(409, "Conflict", "the change would leave no enabled admin: keep one")
    if who.agent is not None and who.agent.role == "admin" and who.name not in admins:
        raise ApiError(409, "Conflict", f"the change would take away your own admin access ({who.name}): "
                                        "have another admin make it")


def _doc(request: web.Request) -> dict:
    """The running document (this node's copy: the newest revision it has swapped in), secrets shown as stored."""
    return display(request.app[DIRECTORY].document)


def _key_of(collection: Collection, request: web.Request) -> str:
    key = request.match_info["key"]
    if collection is NUMBERS:
        try:
            return normalize_number(key)
        except InvalidNumber:
            raise ApiError(404, "Not Found", f"{key!r} is not a phone number") from None
    return key


def _missing(collection: Collection, key: str) -> ApiError:
    return ApiError(404, "Not Found", f"no {collection.name} {key!r}")


# -- generic handlers, one set per collection ---------------------------------------------------------

def _resource(collection: Collection, out: type[BaseModel], new: type[BaseModel], patch: type[BaseModel],
              plural: str, filters: dict[str, Callable[[dict, str], bool]], tag: str) -> list[Operation]:
    async def list_items(request: web.Request, who: Caller) -> web.Response:
        doc = _doc(request)
        items = [_shown(request, collection, i, doc, out) for i in collection.items(doc)]
        for name, keep in filters.items():
            if (value := request.query.get(name)) is not None:
                items = [i for i in items if keep(i, value)]
        return page(request, items)

    async def get_item(request: web.Request, who: Caller) -> web.Response:
        doc, key = _doc(request), _key_of(collection, request)
        item = collection.find(doc, key)
        if item is None:
            raise _missing(collection, key)
        return web.json_response(_shown(request, collection, item, doc, out), headers=_etag(request))

    async def put(request: web.Request, who: Caller, key: str, given: dict, existing: bool) -> tuple[Any, dict]:
        """Add (`existing` False) or change the item `key` with the fields given; the revision and the item."""
        password, teams = (given.pop("password", None), given.pop("teams", None)) if collection is USERS else (None, None)

        def edit(doc: dict) -> dict:
            item = collection.find(doc, key)
            if existing and item is None:
                raise _missing(collection, key)
            if not existing and item is not None:
                raise ApiError(409, "Conflict", f"{collection.name} {key!r} exists already",
                               [field_error([collection.key], "exists already")])
            collection.put(doc, {**(item or {}), **given, collection.key: key})
            if teams is not None:
                set_teams(doc, key, teams)
            return doc
        applied, doc = await _change(request, who, edit, lambda d: collection.location(d, key),
                                     {key: password} if password else None)
        item = collection.find(doc, key)
        assert item is not None
        return applied, _shown(request, collection, item, doc, out)

    async def create_item(request: web.Request, who: Caller) -> web.Response:
        given = validated(new, await body_of(request))
        key = given[collection.key]
        applied, item = await put(request, who, key, given, existing=False)
        return web.json_response(item, status=201, headers={"Location": f"{BASE}/{plural}/{key}",
                                                             "ETag": f'"{applied.revision}"'})

    async def change_item(request: web.Request, who: Caller) -> web.Response:
        key = _key_of(collection, request)
        applied, item = await put(request, who, key, validated(patch, await body_of(request)), existing=True)
        return web.json_response(item, headers={"ETag": f'"{applied.revision}"'})

    async def delete_item(request: web.Request, who: Caller) -> web.Response:
        key = _key_of(collection, request)

        def edit(doc: dict) -> dict:
            if collection.find(doc, key) is None:
                raise _missing(collection, key)
            collection.remove(doc, key)
            if collection is USERS:
                set_teams(doc, key, [])
            return doc
        try:
            await _change(request, who, edit, lambda d: ())
        except ApiError as err:
            if err.status != 422:
                raise
            raise ApiError(409, "Conflict", f"{collection.name} {key!r} is still named elsewhere: change those first ("
                           + "; ".join(f"{e['field']}: {e['detail']}" for e in err.errors) + ")", err.errors) from None
        return web.Response(status=204)

    for fn, verb in ((list_items, "list"), (get_item, "get"), (create_item, "create"), (change_item, "change"),
                     (delete_item, "delete")):
        fn.__name__ = f"{verb}_{plural.replace('-', '_')}"
    item_path = f"{BASE}/{plural}/{{key}}"
    return [
        Operation("GET", f"{BASE}/{plural}", list_items, READ, f"List {plural}", tag, plural, answer=out, listing=True,
                  query=tuple((name, f"only {plural} whose {name} matches") for name in filters)),
        Operation("POST", f"{BASE}/{plural}", create_item, WRITE, f"Create a {collection.name}", tag, plural, body=new,
                  answer=out,
                  status=201, errors=(409,), key_field=collection.key),
        Operation("GET", item_path, get_item, READ, f"Get a {collection.name}", tag, plural, answer=out, errors=(404,)),
        Operation("PATCH", item_path, change_item, WRITE, f"Change a {collection.name} (the fields given)", tag, plural,
                  body=patch, answer=out, errors=(404, 409)),
        Operation("DELETE", item_path, delete_item, WRITE, f"Delete a {collection.name}", tag, plural, status=204,
                  errors=(404, 409)),
    ]


def _etag(request: web.Request) -> dict:
    return {"ETag": f'"{request.app[DIRECTORY].revision}"'}


def _contains(field: str) -> Callable[[dict, str], bool]:
    return lambda item, value: value.lower() in str(item.get(field) or "").lower()


def _equals(field: str) -> Callable[[dict, str], bool]:
    return lambda item, value: str(item.get(field)) == value


def _has(field: str) -> Callable[[dict, str], bool]:
    return lambda item, value: value in (item.get(field) or ())


# -- connectors and the whole configuration -----------------------------------------------------------

async def get_running(request: web.Request, who: Caller) -> web.Response:
    return web.json_response({"revision": request.app[DIRECTORY].revision, "document": _doc(request)},
                             headers=_etag(request))


async def put_running(request: web.Request, who: Caller) -> web.Response:
    body = validated(RunningChange, await body_of(request))
    match = request.headers.get("If-Match", "").strip().strip('"')
    try:
        expect = int(match) if match and match != "*" else None
    except ValueError:
        raise ApiError(412, "Precondition Failed", "If-Match takes a revision, as the ETag gave it") from None
    if isinstance(body["document"], dict):
        _keeps_an_admin(body["document"], who)
    try:
        applied = await request.app[DIRECTORY].apply(body["document"], author=who.name, source="api", expect=expect,
                                                     address=who.address)
    except SourceError as err:
        raise from_problems(err.problems, ()) from None
    except Conflict as err:
        raise ApiError(412, "Precondition Failed", f"{err}, not {expect}: read it again") from None
    return web.json_response({"revision": applied.revision, "document": _doc(request)},
                             headers={"ETag": f'"{applied.revision}"'})


OPERATIONS = [
    *_resource(USERS, User, NewUser, UserChange, "users", {"role": _equals("role"), "team": _has("teams"),
                                                          "q": _contains("name")}, "users"),
    *_resource(TEAMS, Team, Team, TeamChange, "teams", {"member": _has("members"), "q": _contains("name")}, "teams"),
    *_resource(NUMBERS, Number, Number, NumberChange, "numbers", {
        "user": _equals("user"), "team": _equals("team"), "connector": _equals("connector"), "q": _contains("number")},
        "access numbers"),
    *_resource(CALLBACKS, Callback, Callback, CallbackChange, "callback-numbers", {
        "language": _equals("language"), "category": _equals("category"), "q": _contains("name")}, "callback numbers"),
    *_resource(CONNECTORS, Connector, NewConnector, ConnectorChange, "connectors", {
        "type": _equals("type"), "state": _equals("state"), "q": _contains("name")}, "connectors"),
    Operation("GET", f"{BASE}/config", get_running, READ, "The running configuration and its revision", "configuration",
              "config",
              answer=Running),
    Operation("PUT", f"{BASE}/config", put_running, WRITE,
              "Replace the running configuration (If-Match: the revision it was read at)", "configuration", "config",
              body=RunningChange, answer=Running, errors=(409, 412)),
]


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=openapi_json(request.app[VERSION]), content_type="application/json")


VERSION = web.AppKey("openapi_version", str)


@functools.cache
def openapi_json(version: str) -> bytes:
    """The document, made on its first request and kept for the process: pydantic builds its schemas in ~0.35 s of
    CPU, which every start (and every app a test builds) paid before anyone asked for it."""
    return json.dumps(openapi(every_operation(), version)).encode()


def every_operation() -> list[Operation]:
    """The whole admin API: these resources, the records and erasure (governance), the scenario files."""
    from chat.agents import canned_admin, governance, scenario_api

    return [*OPERATIONS, *governance.OPERATIONS, *scenario_api.OPERATIONS, *canned_admin.OPERATIONS]


def setup(app: web.Application, config) -> None:
    from chat.agents.ops import code_head

    operations = every_operation()
    add(app, operations)
    app[VERSION] = code_head()
    app.router.add_get("/api/openapi.json", openapi_document)
