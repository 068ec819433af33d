"""The connectors this node runs, kept in step with the running configuration.

Rules:
- Every connector of the running configuration runs on every node: an SMS API's webhook parser,
  sender and status-callback address; an SMPP connector's link (its lease picks the node that binds).
- A change is in force at once, without a restart: a connector added starts; one removed stops (an
  SMPP link unbinds within the shutdown budget and gives its lease up; its messages still queued
  fail, naming it, unless it comes back first); one whose settings or secrets changed is replaced (a
  new sender and parser in one step; an SMPP link unbinds, then binds with the new settings, its
  queued messages waiting as they do on a standby node). A change of its numbers only replaces
  nothing: numbers are read from the running directory at each message.
- Changes are applied one after the other, the newest last. An SMS API's old sender is closed once
  a send on it could have ended (RETIRE_SECONDS), so no send in flight is cut.
"""
from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from chat.config import Config, Connector, SmppConnector
from chat.connectors.providers import Hook, http_sender, status_callback, webhook_parser
from chat.connectors.smpp import SmppConnection, smpp_link
from chat.domain.directory import Directory
from chat.domain.statuses import report_unit
from chat.metrics import LINKS, METRICS
from chat.store.context import COMMIT
from chat.workers.routing import ROUTER
from chat.workers.running import DIRECTORY
from chat.workers.tasks import STOPPING
from gateway import Sender, Webhook

log = structlog.get_logger()
RETIRE_SECONDS = 15.0  # longer than an SMS API send may take (gateway.providers.base.SenderContext: 10 s)
PARSERS = web.AppKey("webhook_parsers", dict[str, Hook])  # connector name -> its webhook reader (chat.connectors.webhooks)


class Connectors:
    """This node's connectors: what the outbox sends through (chat.workers.outbox.Sending), what webhooks are checked
    with, and the SMPP links (app[LINKS], for the operator's views)."""

    def __init__(self, app: web.Application):
        self.app = app
        self.parsers: dict[str, Hook] = app[PARSERS]
        self.senders: dict[str, Sender] = {}
        self.callbacks: dict[str, str | None] = {}
        self.links: list[SmppConnection] = app[LINKS]
        self._running: dict[str, Connector] = {}  # name -> the settings it runs with
        self._wanted: Config | None = None
        self._changing: asyncio.Task | None = None
        self._retired: dict[asyncio.Task, Sender | Webhook] = {}  # old senders (readers) closing once their sends could have ended

    def windows(self) -> dict[str, int]:
        return {link.cfg.name: link.cfg.window for link in self.links}

    def can_send(self, name: str) -> bool:
        return all(link.leader for link in self.links if link.cfg.name == name)

    def paces(self, name: str, sender: str) -> tuple[tuple[str, float], ...]:
        pace = getattr(self._running.get(name), "pace", None)  # SMS APIs' (an SMPP link paces itself: rate_limit)
        return pace.rates(name, sender) if pace is not None else ()

    def changed(self, directory: Directory) -> None:
        """The running configuration changed (chat.workers.running.RunningConfig.on_change): follow it."""
        assert directory.config is not None
        self._wanted = directory.config
        if self._changing is None or self._changing.done():
            self._changing = asyncio.create_task(self._follow(), name="connectors-follow")

    async def _follow(self) -> None:
        while self._wanted is not None:
            wanted, self._wanted = self._wanted, None
            try:
                await self.apply(wanted)
            except Exception:  # noqa: BLE001 - the next change tries again; what runs keeps running
                log.exception("connectors.change_failed")

    async def apply(self, config: Config) -> None:
        """Start, replace and stop connectors until they are `config`'s."""
        wanted = {c.name: c for c in config.connectors}
        for name in [n for n in self._running if n not in wanted]:
            await self._stop(name)
            log.info("connector.removed", connector=name)
        for name, conn in wanted.items():
            old = self._running.get(name)
            if old is None:
                await self._start(conn)
                log.info("connector.added", connector=name, type=conn.type)
            elif _settings(old) != _settings(conn):
                await self._replace(old, conn)
                log.info("connector.changed", connector=name, type=conn.type)
            else:
                self._running[name] = conn
                for link in self.links:
                    if link.cfg.name == name and isinstance(conn, SmppConnector):
                        link.cfg = conn  # the same settings, its numbers changed
        self.callbacks.clear()
        self.callbacks.update({c.name: status_callback(config.public_url, c) for c in config.connectors})
        self.app[METRICS].connectors = frozenset(wanted)

    async def _start(self, conn: Connector) -> None:
        self._running[conn.name] = conn
        if isinstance(conn, SmppConnector):
            link = smpp_link(self.app, conn)
            self.links.append(link)
            self.senders[conn.name] = link.sender
            link.start()
            return
        sender = http_sender(conn, self._report)
        if sender is not None:
            self.senders[conn.name] = sender
        parser = webhook_parser(conn)
        if parser is not None:
            self.parsers[conn.name] = parser

    async def _replace(self, old: Connector, new: Connector) -> None:
        previous = self.senders.get(old.name)
        if isinstance(old, SmppConnector):  # the old link unbinds (its sender refusing, temporarily, meanwhile)
            await self._stop(old.name, keep_sender=True)
        else:
            self._close_parser(old.name)
        await self._start(new)  # then the new sender and parser take the old ones' place, in one step
        if previous is not None and not isinstance(old, SmppConnector):
            self._retire(previous)

    async def _stop(self, name: str, keep_sender: bool = False) -> None:
        self._running.pop(name, None)
        self._close_parser(name)
        sender = self.senders.get(name) if keep_sender else self.senders.pop(name, None)
        link = next((link for link in self.links if link.cfg.name == name), None)
        if link is not None:
            self.links.remove(link)
            await link.stop(grace=max(0.5, self.app[STOPPING].seconds))
        elif sender is not None:
            self._retire(sender)

    def _close_parser(self, name: str) -> None:
        """Take the connector's webhook reader out; what it runs ends once webhooks being read could have been."""
        parser = self.parsers.pop(name, None)
        if parser is not None:
            self._retire(parser.webhook)

    def _retire(self, sender: Sender | Webhook) -> None:
        async def later() -> None:
            await asyncio.sleep(RETIRE_SECONDS)
            await sender.close()
        task = asyncio.create_task(later(), name="connector-retire")
        self._retired[task] = sender
        task.add_done_callback(lambda done: self._retired.pop(done, None))

    async def _report(self, item) -> None:
        """The loopback's statuses."""
        app = self.app
        await app[ROUTER].push_status(await app[COMMIT].run(report_unit(item)))

    async def close(self) -> None:
        """Unbind every link (within what is left of the shutdown budget) and close every sender."""
        if self._changing is not None:
            self._changing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._changing
        stopping = self.app[STOPPING]
        for link in list(self.links):
            await link.stop(grace=max(0.5, stopping.left()))
        self.links.clear()
        retired = list(self._retired.items())
        for task, _ in retired:
            task.cancel()
        senders = [s for name, s in self.senders.items() if not isinstance(self._running.get(name), SmppConnector)]
        parsers = [parser.webhook for parser in self.parsers.values()]
        self.parsers.clear()
        for sender in [*senders, *parsers, *(sender for _, sender in retired)]:
            await sender.close()


def _settings(conn: Connector) -> Connector:
    """What a connector runs with, besides its numbers (secrets compared by value)."""
    return conn.model_copy(update={"numbers": ()})


CONNECTORS = web.AppKey("connectors", Connectors)


async def connectors_context(app: web.Application):
    """The running configuration's connectors, from the start and after every change; unbound and closed after the
    outbox settled (it stops first)."""
    running = app[DIRECTORY]
    connectors = app[CONNECTORS] = Connectors(app)
    await connectors.apply(running.config)
    running.on_change(connectors.changed)
    try:
        yield
    finally:
        await connectors.close()
