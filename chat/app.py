"""The app factory: `create_app(config)` builds the aiohttp app the CLI runs and the tests use."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import socketio
import socketio.packet
import structlog
from aiohttp import web

from chat.agents import AgentNamespace
from chat.auth import Tokens, secret_key
from chat.automation import Automation
from chat.commit import GroupCommit
from chat.config import Config, SmppConnector
from chat.crm import CrmOutbox
from chat.directory import sync_directory
from chat.hub import Hub
from chat.outbox import Outbox
from chat.presence import Presence
from chat.receipts import report_unit
from chat.routing import Router
from chat.scenario_files import ScenarioFiles
from chat.services import SERVICES, Services, build_senders, status_callbacks, webhook_parsers
from chat.store import Database, migrate
from chat.web import add_routes

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
    add_routes(app, config)
    return app


def smpp_connections(svc: Services, config: Config) -> list:
    """The SMPP connectors' clients (imported only when some are configured)."""
    wanted = [c for c in config.connectors if isinstance(c, SmppConnector)]
    if not wanted:
        return []
    from chat.smpp import SmppConnection

    return [SmppConnection(svc, c) for c in wanted]


async def _services(app: web.Application, config: Config, sio, run_migrations: bool):
    files = ScenarioFiles(config, lambda text: notify_admins(app[SERVICES], text))  # a broken file stops start-up here
    db = Database(config.database())
    if run_migrations:
        await migrate(db)
    directory = await sync_directory(db, config)
    commit = GroupCommit(db)
    hub, presence = Hub(sio), Presence(config.presence_grace_seconds)
    tokens = Tokens(secret_key(config.secret_key.get_secret_value() if config.secret_key else None, config.data_dir), config.token_minutes * 60)
    svc = Services(config, db, directory, tokens, presence, commit, hub, Router(commit, hub, presence), webhook_parsers(config))
    svc.router.teams_of = directory.teams_of
    svc.http = aiohttp.ClientSession()

    async def report(item) -> None:
        await svc.router.push_status(await commit.run(report_unit(item)))

    senders = build_senders(config, report)
    smpp = smpp_connections(svc, config)
    senders.update({c.cfg.name: c.sender for c in smpp})
    svc.outbox = Outbox(db, commit, svc.router, senders, config.outbox, status_callbacks(config),
                        windows={c.cfg.name: c.cfg.window for c in smpp})
    svc.crm = CrmOutbox(db, commit, svc.http)
    svc.automation = Automation(svc, files)
    svc.router.on_routed = svc.automation.inbound
    await svc.automation.load()
    app[SERVICES] = svc
    for connection in smpp:
        connection.start()
    tasks = [asyncio.create_task(coro, name=name) for name, coro in (
        ("outbox", svc.outbox.run()), ("routing", svc.router.run()), ("crm", svc.crm.run()),
        ("timers", svc.automation.run_timers()), ("scenario-files", files.watch()))]
    log.info("didchat.started", database=db.url.render_as_string(hide_password=True), agents=len(directory.agents))
    yield
    for connection in smpp:
        await connection.stop()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await svc.outbox.stop()
    await svc.automation.stop()
    for sender in senders.values():
        await sender.close()
    await svc.http.close()
    await commit.close()
    await db.dispose()


async def notify_admins(svc: Services, text: str) -> None:
    """A notice on every admin's screen (and in the log, by the caller)."""
    for agent in svc.directory.agents.values():
        if agent.role == "admin":
            await svc.hub.emit(agent.id, "notice", {"level": "error", "text": text})
