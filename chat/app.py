"""The app factory: `create_app(config)` builds the aiohttp app the CLI runs and the tests use.

Rules: each long-lived part starts and stops in its own module's cleanup context and is reached
through its typed AppKey; the order below is the start order (the cluster's check, then the store), and the stop order
is its reverse: the outbox settles while the SMPP links are still bound, then the links unbind
(inbound in flight is committed first), then the workers stop, then the store closes.
"""
from __future__ import annotations

from functools import partial

import socketio
import socketio.packet
import structlog
from aiohttp import web

from chat.agents.auth import TOKENS, Tokens
from chat.agents.loop import loop_health
from chat.agents.namespace import AgentNamespace
from chat.agents.ops import tell_agents
from chat.config import Config, SmppConnector
from chat.connectors.live import CONNECTORS, connectors_context
from chat.domain.secrets import secret_key
from chat.metrics import LINKS, METRICS, Live, Metrics
from chat.store.context import COMMIT, CONFIG, DB, store_context
from chat.web import add_routes
from chat.workers.automation import AUTOMATION, automation_context
from chat.workers.cluster import cluster_context, socket_manager
from chat.workers.crm import crm_context, http_context
from chat.workers.hub import HUB, Hub
from chat.workers.outbox import outbox_context
from chat.workers.presence import PRESENCE, Presence
from chat.workers.retention import retention_context
from chat.workers.routing import ROUTER, routing_context
from chat.workers.running import DIRECTORY, running_context
from chat.workers.wake import WAKE, Wake

log = structlog.get_logger()


class TextPacket(socketio.packet.Packet):
    """Socket.IO packets whose data is JSON text, never bytes (nothing we push holds bytes).

    python-socketio walks every item of an outgoing payload looking for binary attachments; for
    a burst of 100 messages that walk was a fifth of the cost of routing it (bench/README.md).
    """

    @classmethod
    def data_is_binary(cls, data) -> bool:
        return isinstance(data, (bytes, bytearray))


class MeasuredHub(Hub):
    """The hub, timing each inbound message from its commit to its push (the operator's latency)."""

    def __init__(self, sio: socketio.AsyncServer, metrics: Metrics):
        super().__init__(sio)
        self.metrics = metrics

    async def emit(self, user_id: int | None, event: str, payload, skip_sid: str | None = None) -> None:
        await super().emit(user_id, event, payload, skip_sid)
        self.metrics.pushed(event, payload)


def create_app(config: Config, *, run_migrations: bool = True) -> web.Application:
    """The whole didchat service for `config`."""
    app = web.Application(client_max_size=1024 * 1024)
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=25, ping_timeout=10, serializer=TextPacket,
                               client_manager=socket_manager(config))
    sio.attach(app)
    sio.register_namespace(AgentNamespace(app))
    app[CONFIG] = config
    app[TOKENS] = Tokens(secret_key(config.secret_key.get_secret_value() if config.secret_key else None, config.data_dir),
                         config.token_minutes * 60)
    app[PRESENCE] = Presence(config.presence_grace_seconds)
    app[WAKE] = Wake()
    app.cleanup_ctx.extend([
        cluster_context,  # first: a node refused by the cluster touches nothing
        partial(store_context, run_migrations=run_migrations),
        running_context,
        http_context,
        routing_context(on_routed=lambda app, stored: app[AUTOMATION].inbound(stored)),
        crm_context,
        retention_context,
        automation_context,
        connectors_context,
        outbox_context(lambda app: app[CONNECTORS]),
        _started,
    ])
    add_routes(app, config)  # each module its routes, and after the parts above its own cleanup context
    app.cleanup_ctx.append(loop_health)  # last: it freezes the heap of everything started before it
    app[HUB] = MeasuredHub(sio, app[METRICS])
    app.on_shutdown.append(partial(tell_agents, sio=sio))
    return app


async def _started(app: web.Application):
    """Every part runs: say so, and let the operator's metrics read the live parts."""
    from chat.agents.login import LOGIN

    smpp = sum(isinstance(c, SmppConnector) for c in app[DIRECTORY].config.connectors)
    log.info("didchat.started", database=app[DB].url.render_as_string(hide_password=True), agents=len(app[DIRECTORY].current.agents),
             smpp_connectors=smpp)
    links: list = app[LINKS]
    live = Live(app[METRICS], links, app[ROUTER], app[PRESENCE], lambda: app[LOGIN].guard.failures, app[COMMIT])
    with app[METRICS].watching(live):
        yield
