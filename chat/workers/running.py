"""This node's running configuration: the directory everything reads, swapped whole when a revision lands.

Rules:
- Whatever needs users, numbers, teams or policies reads `RunningConfig.current` when it needs
  them, never a copy taken at start, so a change is in force from the next message on.
- A change made on this node (`change`) is applied in the store (chat.domain.running), swapped in
  here at once, and the other nodes are woken (topic "config"); each reads the newest revision and
  swaps too. A node that misses the wake-up finds the revision at its next look (POLL_SECONDS).
- Parts that keep something derived from the configuration (scenario bindings, away policies)
  subscribe with `on_change` and rebuild it from the new directory; a revision this node cannot
  run (a connector's secret it cannot unseal, or an environment variable it lacks) is logged and the
  last good one keeps running.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
import structlog
from aiohttp import web

from chat.config import Config
from chat.domain.directory import Directory
from chat.domain.running import Applied, Check, Conflict, apply, current_revision, latest, load, start
from chat.store import Database
from chat.store.context import CONFIG, DB
from chat.workers.scenario_files import problems
from chat.workers.tasks import forever, running
from chat.workers.wake import WAKE, Wake
from scenarios import SourceError

log = structlog.get_logger()
CONFIG_TOPIC = "config"
POLL_SECONDS = 2.0  # how often a node looks for a revision it was not woken for
ATTEMPTS = 5  # changes prepared again when another change landed first


class RunningConfig:
    def __init__(self, db: Database, node: Config, applied: Applied, wake: Wake,
                 check: Check | None = None):
        self.db, self.node, self.wake, self.check = db, node, wake, check
        self.current: Directory = applied.directory
        self.revision = applied.revision
        self.document: dict = applied.document or {}  # as stored (secrets sealed): chat.domain.secrets.display shows it
        self._listeners: list[Callable[[Directory], None]] = []
        self._movers: list[Callable[[Applied], Awaitable[None]]] = []

    @property
    def config(self) -> Config:
        """The running configuration (this node's settings with the running users, numbers and teams)."""
        assert self.current.config is not None
        return self.current.config

    def on_change(self, listener: Callable[[Directory], None]) -> None:
        self._listeners.append(listener)

    def on_moves(self, mover: Callable[[Applied], Awaitable[None]]) -> None:
        """`mover` tells the agents of the conversations a change here moved (chat.workers.routing)."""
        self._movers.append(mover)

    def _swap(self, applied: Applied) -> None:
        if applied.revision <= self.revision:
            return
        self.current, self.revision, self.document = applied.directory, applied.revision, applied.document or {}
        for listener in self._listeners:
            listener(applied.directory)
        log.info("config.running", revision=applied.revision)

    async def change(self, edit: Callable[[dict], Any], *, author: str, source: str = "api",
                     passwords: dict[str, str] | None = None, address: str = "") -> Applied:
        """Apply `edit` (the running document -> the wanted one) as the next revision, here and on every node.
        SourceError names what is wrong with the result; Conflict after ATTEMPTS changes by others in between."""
        for _ in range(ATTEMPTS):
            async with self.db.read() as conn:
                row = await latest(conn)
            wanted = edit(copy.deepcopy(row.document) if row is not None else {})
            try:
                applied = await self.apply(wanted, author=author, source=source, expect=row.revision if row else 0,
                                           passwords=passwords, address=address)
            except (Conflict, sa.exc.IntegrityError):
                continue
            return applied
        raise Conflict(self.revision)

    async def apply(self, wanted: Any, *, author: str, source: str, expect: int | None = None,
                    passwords: dict[str, str] | None = None, where: str | None = None, address: str = "") -> Applied:
        """Make `wanted` (a managed document, or a file's Config) the running configuration; swap it in here, wake
        the other nodes."""
        applied = await apply(self.db, self.node, wanted, source=source, author=author, expect=expect, passwords=passwords,
                              check=self.check, address=address, **({"where": where} if where else {}))
        if applied.changed:
            self._swap(applied)
            self.wake(CONFIG_TOPIC)
            if applied.moved:
                for mover in self._movers:
                    await mover(applied)
        return applied

    async def refresh(self) -> None:
        """Swap in the newest revision if it is newer than the one running here."""
        async with self.db.read() as conn:
            revision = await current_revision(conn)
        if revision > self.revision:
            self._swap(await load(self.db, self.node))

    async def watch(self) -> None:
        """Refresh when woken (another node changed it), and every POLL_SECONDS."""
        event = self.wake.event(CONFIG_TOPIC)
        for _ in forever():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await event.wait()
            event.clear()
            try:
                await self.refresh()
            except SourceError as err:
                log.error("config.cannot_run", revision=self.revision, error=str(err),
                          hint="this node lacks a secret the running configuration names (its secret_key, or an environment variable)")
            except (sa.exc.SQLAlchemyError, OSError) as err:
                log.warning("config.refresh_failed", error=type(err).__name__)


DIRECTORY = web.AppKey("directory", RunningConfig)


async def running_context(app: web.Application):
    """The running configuration (the file's, if it changed since it was last applied), before anything routes."""
    node = app[CONFIG]
    try:
        applied = await start(app[DB], node, check=problems)
    except SourceError as err:
        raise SystemExit(f"the running configuration cannot start:\n{err}") from None
    holder = app[DIRECTORY] = RunningConfig(app[DB], node, applied, app[WAKE], check=problems)
    async with running(holder.watch(), "config-watch"):
        yield
