"""The app factory: `create_app(config)` builds the aiohttp app the CLI runs and the tests use."""
from __future__ import annotations

import asyncio
from functools import partial

import aiohttp
import socketio
import socketio.packet
import structlog
from aiohttp import web

from chat.agents.auth import Tokens, secret_key
from chat.agents.login import LOGIN
from chat.agents.namespace import AgentNamespace
from chat.agents.ops import LINKS, STOPPING, tell_agents
from chat.config import Config, SmppConnector
from chat.domain.directory import sync_directory
from chat.domain.statuses import report_unit
from chat.metrics import METRICS, Live, Metrics
from chat.services import SERVICES, Services, build_senders, status_callbacks, webhook_parsers
from chat.store import Database, migrate
from chat.store.commit import GroupCommit
from chat.web import add_routes
from chat.workers.automation import Automation
from chat.workers.crm import CrmOutbox
from chat.workers.hub import Hub
from chat.workers.outbox import Outbox
from chat.workers.presence import Presence
from chat.workers.routing import Router
from chat.workers.scenario_files import ScenarioFiles

log = structlog.get_logger()


class TextPacket(socketio.packet.Packet):
    """Socket.IO packets whose data is JSON text, never bytes (nothing we push holds bytes).

    python-socketio walks every item of an outgoing payload looking for binary attachments; for
    a burst of 100 messages that walk was a fifth of the cost of routing it (bench/README.md).
    """

    @classmethod
    def data_is_binary(cls, data) -> bool:
        return isinstance(data, (bytes, bytearray))


def create_app(config: Config, *, run_migrations: bool = True) -> web.Application:
    """The whole didchat service for `config`."""
    app = web.Application(client_max_size=1024 * 1024)
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=10, ping_timeout=10, serializer=TextPacket)
    sio.attach(app)
    sio.register_namespace(AgentNamespace(lambda: app[SERVICES]))
    app.cleanup_ctx.append(lambda a: _services(a, config, sio, run_migrations))
    app.on_shutdown.append(partial(tell_agents, sio=sio))
    add_routes(app, config)
    return app


class MeasuredHub(Hub):
    """The hub, timing each inbound message from its commit to its push (the operator's latency)."""

    def __init__(self, sio: socketio.AsyncServer, metrics: Metrics):
        super().__init__(sio)
        self.metrics = metrics

    async def emit(self, user_id: int | None, event: str, payload, skip_sid: str | None = None) -> None:
        await super().emit(user_id, event, payload, skip_sid)
        self.metrics.pushed(event, payload)


def smpp_connections(svc: Services, config: Config) -> list:
    """The SMPP connectors' clients (imported only when some are configured)."""
    wanted = [c for c in config.connectors if isinstance(c, SmppConnector)]
    if not wanted:
        return []
    from chat.connectors.smpp import SmppConnection

    return [SmppConnection(svc, c) for c in wanted]


async def _services(app: web.Application, config: Config, sio, run_migrations: bool):
    files = ScenarioFiles(config, lambda text: notify_admins(app[SERVICES], text))  # a broken file stops start-up here
    db = Database(config.database())
    if run_migrations:
        await migrate(db)
    directory = await sync_directory(db, config)
    commit = GroupCommit(db)
    hub, presence = MeasuredHub(sio, app[METRICS]), Presence(config.presence_grace_seconds)
    tokens = Tokens(secret_key(config.secret_key.get_secret_value() if config.secret_key else None, config.data_dir), config.token_minutes * 60)
    svc = Services(config, db, directory, tokens, presence, commit, hub, Router(commit, hub, presence, directory), webhook_parsers(config))
    svc.http = aiohttp.ClientSession()

    async def report(item) -> None:
        await svc.router.push_status(await commit.run(report_unit(item)))

    senders = build_senders(config, report)
    smpp = smpp_connections(svc, config)
    senders.update({c.cfg.name: c.sender for c in smpp})
    svc.outbox = Outbox(db, commit, svc.router, senders, config.outbox, status_callbacks(config),
                        windows={c.cfg.name: c.cfg.window for c in smpp}, metrics=app[METRICS])
    svc.crm = CrmOutbox(db, commit, svc.http)
    svc.automation = Automation(svc, files)
    svc.router.on_routed = svc.automation.inbound
    await svc.automation.load()
    app[SERVICES] = svc
    app[LINKS][:] = smpp
    for connection in smpp:
        connection.start()
    scan = asyncio.create_task(svc.outbox.run(), name="outbox")
    tasks = [asyncio.create_task(coro, name=name) for name, coro in (
        ("routing", svc.router.run()), ("crm", svc.crm.run()),
        ("timers", svc.automation.run_timers()), ("scenario-files", files.watch()))]
    log.info("didchat.started", database=db.url.render_as_string(hide_password=True), agents=len(directory.agents))
    with app[METRICS].watching(Live(app[METRICS], smpp, svc.router, presence, lambda: app[LOGIN].guard.failures)):
        yield
    await _stop_work(app, svc, smpp, scan, tasks)
    for sender in senders.values():
        await sender.close()
    await svc.http.close()
    await commit.close()
    await db.dispose()


async def _stop_work(app: web.Application, svc: Services, smpp: list, scan: asyncio.Task, workers: list[asyncio.Task]) -> None:
    """Wind down in order, within the shutdown budget: sends in flight settle while the SMPP
    links are still bound, then the links unbind (inbound in flight is committed first), then
    the workers stop."""
    stopping = app[STOPPING]
    stopping.begin()
    await _cancel([scan])  # no new scans of the outbox
    await svc.outbox.stop(grace=max(0.5, stopping.left()))
    for connection in smpp:
        await connection.stop(grace=max(0.5, stopping.left()))
    app[LINKS].clear()
    await _cancel(workers)
    await svc.automation.stop()


CANCEL_WAIT_SECONDS = 3.0  # a worker stuck in a driver call must not hold the exit past the budget


async def _cancel(tasks: list[asyncio.Task]) -> None:
    """Cancel workers and wait for them, a bounded time; one that died of an error is logged, not re-raised."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    done, stuck = await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
    for task in stuck:
        log.warning("didchat.worker_stuck", worker=task.get_name(), stack=_where(task))
    for task in done:
        error = None if task.cancelled() else task.exception()
        if isinstance(error, Exception):
            log.warning("didchat.worker_failed", worker=task.get_name(), error=type(error).__name__)


def _where(task: asyncio.Task) -> str:
    """The innermost frame a task waits in (file:line function), for the log."""
    frames = task.get_stack(limit=20)
    if not frames:
        return "?"
    code = frames[-1].f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{frames[-1].f_lineno} {code.co_name}"


async def notify_admins(svc: Services, text: str) -> None:
    """A notice on every admin's screen (and in the log, by the caller)."""
    for agent in svc.directory.agents.values():
        if agent.role == "admin":
            await svc.hub.emit(agent.id, "notice", {"level": "error", "text": text})
