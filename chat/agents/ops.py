"""The operator's view: liveness, readiness, metrics, and a shutdown that tells the agents.

Rules:
- /livez (and its old name /healthz) answers while the process runs, and checks nothing else.
- /readyz is 200 only while the database answers within READY_TIMEOUT, its schema is at this
  code's Alembic head, and shutdown has not begun; otherwise 503 with every reason. Connectors
  are reported (an SMPP link bound or not) but do not decide readiness: an SMSC that is down
  is no reason for a load balancer to stop sending us webhooks and agents. With Redis, the
  cluster is reported too (this node, the other nodes alive, Redis up or what of it fails), and
  does not decide readiness either: without Redis a node still serves (chat.workers.cluster).
- /metrics holds no secret and no message content (chat.metrics); it is unauthenticated and
  belongs on an internal network.
- Once shutdown began, new work is answered 503 with Retry-After (webhooks, new Socket.IO
  connections); agents are told `server_restarting` and their sockets closed, so their tabs
  reconnect to the next server instead of holding the process open.
"""
from __future__ import annotations

import asyncio
import functools
import sqlite3
import time

import structlog
from aiohttp import web

from chat.config import Config, SmppConnector
from chat.domain.queues import queue_depths
from chat.metrics import CONTENT_TYPE, LINKS, METRICS, Metrics
from chat.replies import error
from chat.store.context import DB
from chat.workers.cluster import LINK
from chat.workers.hub import NAMESPACE
from chat.workers.running import DIRECTORY
from chat.workers.tasks import STOPPING, Stopping

log = structlog.get_logger()
READY_TIMEOUT = 2.0  # seconds a readiness probe waits for the database
NOTICE_TIMEOUT = 2.0  # seconds to tell the agents and close their sockets
RETRY_AFTER = "5"
RESTARTING = {"text": "didchat is restarting; reconnecting…"}




async def live(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def ready(request: web.Request) -> web.Response:
    """200 when this node can take work, 503 with the reasons when it cannot."""
    app = request.app
    problems = ["shutting down"] if app[STOPPING].began else []
    db = app.get(DB)
    problems += ["starting"] if db is None else await database_problems(db)
    body = {"ok": not problems, "problems": problems, "connectors": connector_states(app)}
    if (link := app.get(LINK)) is not None:
        body["cluster"] = link.state()
    return web.json_response(body, status=503 if problems else 200)


async def metrics(request: web.Request) -> web.Response:
    """Every metric, in Prometheus' text format."""
    db = request.app.get(DB)
    if db is not None:
        await sample_queues(request.app[METRICS], db)
    return web.Response(body=request.app[METRICS].text(), headers={"Content-Type": CONTENT_TYPE})


async def sample_queues(metrics: Metrics, db) -> None:
    """The outbox's and CRM outbox's depth and oldest age (left as they were if the database fails)."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with db.read() as conn:
                for name, (depth, oldest) in (await queue_depths(conn)).items():
                    metrics.queue(name, depth, oldest)
    except Exception as err:  # noqa: BLE001 - the scrape still answers; readiness names the problem
        log.warning("metrics.queue_failed", error=type(err).__name__)


async def database_problems(db) -> list[str]:
    """Why the database cannot serve this code now (none when it can)."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            revision = await database_revision(db)
    except Exception as err:  # noqa: BLE001 - every failure is a reason to report
        return [f"database: {type(err).__name__}: {first_line(err)}"]
    if revision != code_head():
        return [f"migrations: the database is at {revision or 'no revision'}, this code needs {code_head()}; "
                "run `didchat migrate`"]
    return []


async def database_revision(db) -> str | None:
    """The database's Alembic revision, read as a new request would read it."""
    if db.is_sqlite:  # pooled SQLite connections keep reading a file that was removed or overwritten
        return await asyncio.to_thread(_sqlite_revision, db.url.database)
    from alembic.migration import MigrationContext

    async with db.read() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def _sqlite_revision(path: str) -> str | None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=READY_TIMEOUT)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    finally:
        conn.close()


@functools.cache
def code_head() -> str:
    """The newest migration this code ships (constant while the process runs)."""
    from alembic.script import ScriptDirectory

    from chat.store.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def first_line(err: BaseException) -> str:
    """An error's own message, short (SQLAlchemy appends the statement and a link)."""
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0][:200] if text else ""


def connector_states(app: web.Application) -> dict[str, str]:
    """Each connector's state: an SMPP link's (bound, binding, ..., or standby where another node
    holds its bind: no problem for readiness); an HTTP connector is configured."""
    links = {link.cfg.name: link.metrics()["state"] for link in app[LINKS]}
    return {c.name: links.get(c.name, "stopped") if isinstance(c, SmppConnector) else "configured"
            for c in app[DIRECTORY].config.connectors}


@web.middleware
async def refuse_new_work(request: web.Request, handler):
    """Once shutdown began: 503 to webhooks and to new Socket.IO connections."""
    if request.app[STOPPING].began:
        if request.path.startswith("/webhooks/"):
            return error(503, "didchat is shutting down; retry", headers={"Retry-After": RETRY_AFTER})
        if request.path.startswith("/socket.io/") and "sid" not in request.query:
            return error(503, "didchat is restarting; reconnect", headers={"Retry-After": RETRY_AFTER})
    return await handler(request)


@web.middleware
async def time_webhooks(request: web.Request, handler):
    """The acknowledgement latency of every webhook, by connector and kind (message or status)."""
    route = request.match_info.route.resource
    if route is None or not route.canonical.startswith("/webhooks/"):
        return await handler(request)
    started = time.perf_counter()
    try:
        return await handler(request)
    finally:
        kind = "status" if route.canonical.endswith("/status") else "message"
        request.app[METRICS].acknowledged(request.match_info.get("connector", ""), kind, time.perf_counter() - started)


async def tell_agents(app: web.Application, sio) -> None:
    """Shutdown began: tell every agent the server is restarting, then close their sockets."""
    stopping = app[STOPPING]
    if stopping.began:
        return
    stopping.begin()
    sockets = list(sio.eio.sockets.values())
    log.info("didchat.stopping", sockets=len(sockets), seconds=stopping.seconds)
    try:
        async with asyncio.timeout(min(NOTICE_TIMEOUT, stopping.left())):
            await sio.emit("server_restarting", RESTARTING, namespace=NAMESPACE, ignore_queue=True)  # this node's agents only
            if sio.eio.sockets:  # (engine.io fails on none; some may have left during the emit)
                await sio.eio.disconnect()  # engine.io closes: the clients reconnect (a Socket.IO disconnect would not)
            for socket in sockets:
                # After the close packet a websocket's writer waits for the client, which may
                # never answer (browsers ignore it): this ends the writer, which closes the
                # websocket, so aiohttp's shutdown does not wait out its timeout on it.
                await socket.queue.put(None)
    except TimeoutError:
        log.warning("didchat.agents_not_told", sockets=len(sockets))


def setup(app: web.Application, config: Config) -> None:
    """The operator's routes, the shutdown gate and the metrics registry."""
    app[STOPPING] = Stopping(config.shutdown_seconds)
    app[LINKS] = []
    app[METRICS] = Metrics([c.name for c in config.connectors])  # then the running ones' (chat.connectors.live)
    app.middlewares.extend([refuse_new_work, time_webhooks])
    app.router.add_get("/livez", live)
    app.router.add_get("/healthz", live)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
