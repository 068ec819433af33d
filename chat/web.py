"""HTTP handlers: provider webhooks, agent login, the browser client's files.

Rules: a webhook is answered 2xx only after what it carried is committed (invariant 1); a
bad signature is 403 and stores nothing; a malformed body is 400 naming the field; a number
that is not ours is 404 naming it; a store failure is 503 so the provider retries.
"""
from __future__ import annotations

import json
from pathlib import Path

import structlog
from aiohttp import web

from chat.auth import REFRESH_COOKIE, Unauthorized, check_password, session_payload
from chat.ingest import inbound_unit
from chat.receipts import report_unit
from chat.services import SERVICES, Services
from gateway import GenericWebhook, InboundSms, StatusReport, TwilioWebhook, WebhookError, WebhookReply

log = structlog.get_logger()
STATIC = Path(__file__).resolve().parent / "static"
TWIML_EMPTY = WebhookReply(200, b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")
JSON_OK = WebhookReply(200, b'{"ok":true}', "application/json")


def error(status: int, message: str, field: str | None = None) -> web.Response:
    return web.json_response({"error": message, "field": field}, status=status)


async def twilio_message(request: web.Request) -> web.Response:
    return await _webhook(request, TwilioWebhook, "message", TWIML_EMPTY)


async def twilio_status(request: web.Request) -> web.Response:
    return await _webhook(request, TwilioWebhook, "status", TWIML_EMPTY)


async def generic_message(request: web.Request) -> web.Response:
    return await _webhook(request, GenericWebhook, "message", JSON_OK)


async def generic_status(request: web.Request) -> web.Response:
    return await _webhook(request, GenericWebhook, "status", JSON_OK)


async def _webhook(request: web.Request, kind: type, what: str, reply: WebhookReply) -> web.Response:
    svc = request.app[SERVICES]
    name = request.match_info["connector"]
    parser = svc.webhooks.get(name)
    if not isinstance(parser, kind):
        return error(404, f"no {kind.__name__.removesuffix('Webhook').lower()} connector named {name!r}")
    body = await request.read()
    try:
        item = _parse(parser, what, svc.public_url(request.path_qs), body, request.headers)
    except WebhookError as err:
        log.warning("webhook.refused", connector=name, status=err.status, error=err.message)
        return error(err.status, err.message, err.field)
    if isinstance(item, InboundSms) and item.recipient not in svc.directory.sms_numbers:
        return error(404, f"{item.recipient} is not one of our SMS numbers", "to")
    try:
        await _commit_and_route(svc, item)
    except Exception as err:  # noqa: BLE001 - the provider will retry
        log.exception("webhook.store_failed", connector=name)
        return error(503, f"could not store the {what} ({type(err).__name__}); retry later")
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)


def _parse(parser, what: str, url: str, body: bytes, headers) -> InboundSms | StatusReport:
    args = (url, body, headers) if isinstance(parser, TwilioWebhook) else (body, headers)
    return parser.parse_message(*args) if what == "message" else parser.parse_status(*args)


async def _commit_and_route(svc: Services, item: InboundSms | StatusReport) -> None:
    if isinstance(item, InboundSms):
        stored = await svc.commit.run(inbound_unit(item, svc.directory, svc.presence))
        svc.router.dispatch(stored)
        await svc.router.caught_up()
    else:
        await svc.router.push_status(await svc.commit.run(report_unit(item)))


async def login(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    try:
        body = await request.json()
        name, password = str(body["username"]), str(body["password"])
    except (ValueError, KeyError, TypeError):
        return error(400, "send JSON with username and password")
    try:
        async with svc.db.read() as conn:
            uid = await check_password(conn, name, password)
    except Unauthorized:
        return error(401, "wrong username or password")
    return _session(svc, uid)


async def refresh(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    try:
        uid = svc.tokens.verify(request.cookies.get(REFRESH_COOKIE), "refresh")
    except Unauthorized:
        return error(401, "not logged in")
    return _session(svc, uid)


def _session(svc: Services, uid: int) -> web.Response:
    agent = svc.directory.agents.get(uid)
    if agent is None:
        return error(401, "this user no longer exists")
    response = web.Response(content_type="application/json")
    response.text = json.dumps(session_payload(svc.tokens, agent, response))
    return response


async def logout(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    response.del_cookie(REFRESH_COOKIE, path="/api")
    return response


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def vendor_socketio(request: web.Request) -> web.StreamResponse:
    path = request.app[SERVICES].vendor_dir / "socket.io.min.js"
    if not path.exists():
        return error(500, f"{path} is missing: run `npm ci` in the didchat folder (make demo does it)")
    return web.FileResponse(path)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio/{connector}", twilio_message)
    app.router.add_post("/webhooks/twilio/{connector}/status", twilio_status)
    app.router.add_post("/webhooks/generic/{connector}", generic_message)
    app.router.add_post("/webhooks/generic/{connector}/status", generic_status)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/refresh", refresh)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/healthz", health)
    app.router.add_get("/", index)
    app.router.add_get("/static/vendor/socket.io.min.js", vendor_socketio)
    app.router.add_static("/static/", STATIC)
