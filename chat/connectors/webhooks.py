"""Provider webhooks: inbound messages and status callbacks, answered after the commit.

Rules: a webhook is answered 2xx only after what it carried is committed (invariant 1); a
bad signature is 403 and stores nothing; a signed body that is not JSON on a generic route is
415; a malformed body is 400 naming the field (each provider module parses every body defensively,
so no body can raise past it); an SMS to a number that is not ours, or not this connector's,
is 404 naming the number and the connector and stores nothing (a connector speaks only for its
own numbers); a store failure is 503 so the provider retries, and only a store failure: text
no database can hold is made storable before the commit (invariant 10), never "retry later".
"""
from __future__ import annotations

import asyncio
from functools import partial

import structlog
from aiohttp import web

from chat.config import Config
from chat.connectors.live import PARSERS
from chat.domain.directory import Directory
from chat.domain.inbound import inbound_unit, part_unit, ripe_parts_unit
from chat.domain.parts import webhook_parts_waiting
from chat.domain.statuses import report_unit
from chat.metrics import METRICS
from chat.replies import error
from chat.store.context import COMMIT, CONFIG, DB
from chat.workers.presence import PRESENCE
from chat.workers.routing import ROUTER
from chat.workers.running import DIRECTORY
from chat.workers.tasks import running
from gateway import InboundSms, StatusReport, WebhookError, WebhookRequest
from gateway.providers import Event, Part, Route

log = structlog.get_logger()


async def message(request: web.Request) -> web.Response:
    """A provider's incoming message (some providers post their statuses here too)."""
    return await _webhook(request, "message")


async def status(request: web.Request) -> web.Response:
    """A provider's status callback for a message we sent."""
    return await _webhook(request, "status")


async def _webhook(request: web.Request, route: Route) -> web.Response:
    """Verify, parse, check the numbers are this connector's, commit, then answer (the rules above)."""
    app = request.app
    name, path = request.match_info["connector"], request.match_info["provider"]
    hook = app[PARSERS].get(name)
    if hook is None or hook.path != path:
        return error(404, f"no {path} connector named {name!r}")
    body = await request.read()
    url = app[CONFIG].public_url.rstrip("/") + request.path_qs
    try:
        events = await hook.webhook.read(WebhookRequest(url, body, request.headers, request.method), route)
    except WebhookError as err:
        log.warning("webhook.refused", connector=name, status=err.status, error=err.message)
        app[METRICS].webhook(name, route, "refused")
        return error(err.status, err.message, err.field)
    directory = app[DIRECTORY].current
    for event in events:
        sms = event.sms if isinstance(event, Part) else event
        refused = _foreign(directory, name, sms) if isinstance(sms, InboundSms) else None
        if refused is not None:
            app[METRICS].webhook(name, route, "refused")
            return refused
    try:
        duplicate = await _commit_and_route(app, events)
    except Exception as err:  # noqa: BLE001 - the provider will retry
        log.exception("webhook.store_failed", connector=name)
        app[METRICS].webhook(name, route, "failed")
        return error(503, f"could not store the {route} ({type(err).__name__}); retry later")
    app[METRICS].webhook(name, route, "duplicate" if duplicate else "stored")
    reply = hook.webhook.reply
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)


def _foreign(directory: Directory, connector: str, sms: InboundSms) -> web.Response | None:
    """A 404 for an SMS to a number that is not ours or that another connector owns, else None."""
    if sms.recipient not in directory.sms_numbers:
        problem = f"{sms.recipient} is not one of our SMS numbers"
    elif directory.connector_of.get(sms.recipient) != connector:
        problem = f"{sms.recipient} is not a number of connector {connector!r}"
    else:
        return None
    log.warning("webhook.foreign_number", connector=connector, number=sms.recipient)
    return error(404, problem, "to")


async def _commit_and_route(app: web.Application, events: tuple[Event, ...]) -> bool:
    """Commit and route what a webhook carried, in order; whether it was all had already."""
    commit, router = app[COMMIT], app[ROUTER]
    duplicate = bool(events)
    for event in events:
        if isinstance(event, StatusReport):
            await router.push_status(await commit.run(report_unit(event)))
            duplicate = False
            continue
        directory = app[DIRECTORY].current
        if isinstance(event, Part):
            kept = await commit.run(part_unit(event, directory, app[PRESENCE]))
            if kept is None:  # the message waits for its other parts
                duplicate = False
                continue
            stored = kept
        else:
            stored = await commit.run(inbound_unit(event, directory, app[PRESENCE]))
        router.dispatch(stored)
        await router.caught_up()
        duplicate = duplicate and stored.duplicate
    return duplicate


PARTS_SWEEP_SECONDS = 2.0  # how often each node looks for long messages whose parts were kept on two nodes


async def sweep_parts(app: web.Application) -> int:
    """Store and route every long message whose webhook parts are all kept, or were waited for long enough."""
    async with app[DB].read() as conn:
        if not await webhook_parts_waiting(conn):
            return 0
    stored = await app[COMMIT].run(partial(ripe_parts_unit, directory=app[DIRECTORY].current, presence=app[PRESENCE]))
    for one in stored:
        app[ROUTER].dispatch(one)
    return len(stored)


async def _sweeping(app: web.Application):
    async def forever() -> None:
        while True:
            await asyncio.sleep(PARTS_SWEEP_SECONDS)
            try:
                if swept := await sweep_parts(app):
                    log.info("webhook.parts_joined", messages=swept)
            except Exception as err:  # noqa: BLE001 - the next look tries again
                log.warning("webhook.parts_sweep_failed", error=type(err).__name__)
    async with running(forever(), "webhook-parts"):
        yield


def setup(app: web.Application, config: Config) -> None:
    """The webhook routes; each connector's signature-checking parser is put in app[PARSERS] while it runs
    (chat.connectors.live)."""
    app[PARSERS] = {}
    app.cleanup_ctx.append(_sweeping)
    app.router.add_post("/webhooks/{provider}/{connector}", message)
    app.router.add_post("/webhooks/{provider}/{connector}/status", status)
    # Vonage's SMS API and Plivo may be set to call with GET, the fields in the (signed) query
    app.router.add_get("/webhooks/{provider}/{connector}", message, allow_head=False)
    app.router.add_get("/webhooks/{provider}/{connector}/status", status, allow_head=False)
