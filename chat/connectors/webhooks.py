"""Provider webhooks: inbound messages and status callbacks, answered after the commit.

Rules: a webhook is answered 2xx only after what it carried is committed (invariant 1); a
bad signature is 403 and stores nothing; a signed body that is not JSON on a generic route is
415; a malformed body is 400 naming the field (gateway.webhooks parses every body defensively,
so no body can raise past it); an SMS to a number that is not ours, or not this connector's,
is 404 naming the number and the connector and stores nothing (a connector speaks only for its
own numbers); a store failure is 503 so the provider retries, and only a store failure: text
no database can hold is made storable before the commit (invariant 10), never "retry later".
"""
from __future__ import annotations

import structlog
from aiohttp import web

from chat.config import Config
from chat.connectors.live import PARSERS
from chat.domain.directory import Directory
from chat.domain.inbound import inbound_unit
from chat.domain.statuses import report_unit
from chat.metrics import METRICS
from chat.replies import error
from chat.store.context import COMMIT, CONFIG
from chat.workers.presence import PRESENCE
from chat.workers.routing import ROUTER
from chat.workers.running import DIRECTORY
from gateway import GenericWebhook, InboundSms, StatusReport, TwilioWebhook, WebhookError, WebhookReply

log = structlog.get_logger()
TWIML_EMPTY = WebhookReply(200, b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")
JSON_OK = WebhookReply(200, b'{"ok":true}', "application/json")


async def twilio_message(request: web.Request) -> web.Response:
    """Twilio's incoming SMS."""
    return await _webhook(request, TwilioWebhook, "message", TWIML_EMPTY)


async def twilio_status(request: web.Request) -> web.Response:
    """Twilio's status callback for a message we sent."""
    return await _webhook(request, TwilioWebhook, "status", TWIML_EMPTY)


async def generic_message(request: web.Request) -> web.Response:
    """The generic JSON incoming SMS."""
    return await _webhook(request, GenericWebhook, "message", JSON_OK)


async def generic_status(request: web.Request) -> web.Response:
    """The generic JSON status callback."""
    return await _webhook(request, GenericWebhook, "status", JSON_OK)


async def _webhook(request: web.Request, kind: type, what: str, reply: WebhookReply) -> web.Response:
    """Verify, parse, check the number is this connector's, commit, then answer (the rules above)."""
    app = request.app
    name = request.match_info["connector"]
    parser = app[PARSERS].get(name)
    if not isinstance(parser, kind):
        return error(404, f"no {kind.__name__.removesuffix('Webhook').lower()} connector named {name!r}")
    body = await request.read()
    try:
        item = _parse(parser, what, app[CONFIG].public_url.rstrip("/") + request.path_qs, body, request.headers)
    except WebhookError as err:
        log.warning("webhook.refused", connector=name, status=err.status, error=err.message)
        request.app[METRICS].webhook(name, what, "refused")
        return error(err.status, err.message, err.field)
    assert parser is not None  # isinstance above
    refused = _foreign(app[DIRECTORY].current, name, parser.recipient_field, item) if isinstance(item, InboundSms) else None
    if refused is not None:
        request.app[METRICS].webhook(name, what, "refused")
        return refused
    try:
        duplicate = await _commit_and_route(app, item)
    except Exception as err:  # noqa: BLE001 - the provider will retry
        log.exception("webhook.store_failed", connector=name)
        request.app[METRICS].webhook(name, what, "failed")
        return error(503, f"could not store the {what} ({type(err).__name__}); retry later")
    request.app[METRICS].webhook(name, what, "duplicate" if duplicate else "stored")
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)


def _foreign(directory: Directory, connector: str, field: str, sms: InboundSms) -> web.Response | None:
    """A 404 for an SMS to a number that is not ours or that another connector owns, else None."""
    if sms.recipient not in directory.sms_numbers:
        problem = f"{sms.recipient} is not one of our SMS numbers"
    elif directory.connector_of.get(sms.recipient) != connector:
        problem = f"{sms.recipient} is not a number of connector {connector!r}"
    else:
        return None
    log.warning("webhook.foreign_number", connector=connector, number=sms.recipient)
    return error(404, problem, field)


def _parse(parser, what: str, url: str, body: bytes, headers) -> InboundSms | StatusReport:
    args = (url, body, headers) if isinstance(parser, TwilioWebhook) else (body, headers)
    return parser.parse_message(*args) if what == "message" else parser.parse_status(*args)


async def _commit_and_route(app: web.Application, item: InboundSms | StatusReport) -> bool:
    """Commit and route what a webhook carried; whether it was a message we had already."""
    commit, router = app[COMMIT], app[ROUTER]
    if isinstance(item, InboundSms):
        stored = await commit.run(inbound_unit(item, app[DIRECTORY].current, app[PRESENCE]))
        router.dispatch(stored)
        await router.caught_up()
        return stored.duplicate
    else:
        await router.push_status(await commit.run(report_unit(item)))
        return False


def setup(app: web.Application, config: Config) -> None:
    """The webhook routes; each connector's signature-checking parser is put in app[PARSERS] while it runs
    (chat.connectors.live)."""
    app[PARSERS] = {}
    app.router.add_post("/webhooks/twilio/{connector}", twilio_message)
    app.router.add_post("/webhooks/twilio/{connector}/status", twilio_status)
    app.router.add_post("/webhooks/generic/{connector}", generic_message)
    app.router.add_post("/webhooks/generic/{connector}/status", generic_status)
