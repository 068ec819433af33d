"""Leases: one node of a cluster holds a named thing (an SMPP connector's bind) at a time.

Rules:
- On PostgreSQL a lease is a session-level advisory lock (pg_try_advisory_lock) on a connection
  of its own, opened for that lease and nothing else: the lock lives exactly as long as that
  connection. A node that dies (SIGKILL, a crash) loses it when the kernel closes its socket, at
  once; no clock and no time to live, so a stalled event loop (a long GC pass) cannot let two
  nodes hold it. (A Redis lock with a fencing token was the other choice; a token fences only a
  resource that checks it, and an SMSC checks none.)
- `take()` every heartbeat: it tries the lock when not held, and checks that it still holds it
  when held (pg_locks, within `check_seconds`); a check that fails or times out is a lost lease,
  its connection is dropped, and the caller gives up what the lease guards at once.
- A partition: the server frees the lock of a node it cannot reach after about `lease_seconds`
  (TCP keepalives and tcp_user_timeout on the lease's connection); the holder notices after at
  most heartbeat + check_seconds, before that. A heartbeat that does not leave that margin is
  logged (`lease.unsafe`) at start.
- Session locks need a session: no pooler in transaction mode between a node and PostgreSQL.
- Advisory locks are per database, so clusters on different databases never meet; the key is a
  63-bit hash of the lease's name.
- On SQLite (one process, one node) a lease is always held.
- A failure to reach the database is logged once per streak (`lease.unavailable`), never per try.
"""
from __future__ import annotations

import asyncio
import hashlib
import math
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg
import structlog

from chat.store.db import Database

log = structlog.get_logger()
# What a lost or unreachable database raises through asyncpg (a killed backend can leave its protocol
# in a state that answers InternalClientError).
FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
CONNECT_SECONDS = 5.0  # a lease's connection that cannot open in this time is "not held", tried again next heartbeat

_HELD = """SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
           AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1)"""


class Lease(Protocol):
    name: str

    async def take(self) -> bool:
        """True when this node holds the lease now: taken now, or still held."""

    async def release(self) -> None:
        """Give the lease up (another node may take it at once)."""


class AlwaysHeld:
    """The lease of a node that is the only one: SQLite."""

    def __init__(self, name: str):
        self.name = name

    async def take(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class AdvisoryLease:
    """A PostgreSQL advisory lock held on a connection of its own."""

    def __init__(self, db: Database, name: str, *, lease_seconds: float, check_seconds: float, node: str):
        self.name, self.key = name, lease_key(name)
        self.check_seconds = check_seconds
        self._connect_args = db.url.translate_connect_args(username="user")
        self._settings = server_settings(lease_seconds, check_seconds, f"didchat {node} lease {name}"[:63])
        self._conn: asyncpg.Connection | None = None
        self._held = False
        self._failing = False

    async def take(self) -> bool:
        try:
            async with asyncio.timeout(self.check_seconds + (CONNECT_SECONDS if self._conn is None else 0)):
                self._held = await (self._check() if self._held else self._try())
        except FAILURES as err:
            self._unavailable(err)
            self._drop()
            return False
        if self._failing:
            log.info("lease.available", lease=self.name)
            self._failing = False
        return self._held

    async def _try(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(**self._connect_args, timeout=CONNECT_SECONDS,
                                               server_settings=self._settings, statement_cache_size=0)
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key))

    async def _check(self) -> bool:
        assert self._conn is not None  # held means connected
        if await self._conn.fetchval(_HELD, self.key):
            return True
        self._drop()  # whatever took the lock from this session, start again on a fresh one
        return False

    def _unavailable(self, err: BaseException) -> None:
        if self._held or not self._failing:
            log.warning("lease.unavailable", lease=self.name, held=self._held, error=type(err).__name__)
        self._failing = True

    def _drop(self) -> None:
        """Forget the connection at once, without a goodbye (it may be cut off): the server frees the lock."""
        self._held = False
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def release(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is None:
            return
        try:
            async with asyncio.timeout(self.check_seconds):
                await conn.close()  # the lock goes with the session
        except FAILURES:
            conn.terminate()


def lease(db: Database, name: str, *, heartbeat_seconds: float, lease_seconds: float, node: str | None = None) -> Lease:
    """The lease named `name` for this node: always held on SQLite, an advisory lock on PostgreSQL."""
    if db.is_sqlite:
        return AlwaysHeld(name)
    check = check_seconds(heartbeat_seconds, lease_seconds)
    if heartbeat_seconds + check >= lease_seconds:
        log.warning("lease.unsafe", lease=name, heartbeat_seconds=heartbeat_seconds, lease_seconds=lease_seconds,
                    hint="a partitioned holder may not notice before the server frees its lease: "
                         "make cluster.heartbeat_seconds at most a third of cluster.lease_seconds")
    return AdvisoryLease(db, name, lease_seconds=lease_seconds, check_seconds=check,
                         node=holder_name(node))


def holder_name(configured: str | None) -> str:
    """This node's name in leases, claims and presence: `cluster.node_name`, else host-pid."""
    return (configured or f"{socket.gethostname()}-{os.getpid()}")[:64]


def check_seconds(heartbeat_seconds: float, lease_seconds: float) -> float:
    """How long one check of a held lease may take: the holder's margin before the server frees it."""
    return max(0.2, min(heartbeat_seconds, lease_seconds / 4))


def server_settings(lease_seconds: float, check_seconds: float, application_name: str) -> dict[str, str]:
    """The lease connection's settings: the server gives up on a silent peer after ~lease_seconds."""
    idle = max(1, math.floor(lease_seconds / 2))
    probes = max(1, math.ceil(lease_seconds) - idle)  # one a second after `idle` seconds of silence
    return {"tcp_keepalives_idle": str(idle), "tcp_keepalives_interval": "1", "tcp_keepalives_count": str(probes),
            "tcp_user_timeout": str(int(lease_seconds * 1000)), "statement_timeout": str(int(check_seconds * 1000)),
            "application_name": application_name}


def lease_key(name: str) -> int:
    """The advisory lock's key for a lease name: positive, 63 bits."""
    return int.from_bytes(hashlib.sha256(f"didchat.lease:{name}".encode()).digest()[:8], "big") >> 1


async def hold(lease: Lease, every: float, changed: Callable[[bool], Awaitable[None]]) -> None:
    """Take or check `lease` every `every` seconds; `changed(held)` with the first answer and each
    change; until cancelled (the caller releases the lease)."""
    held: bool | None = None
    while True:
        now = await lease.take()
        if now is not held:
            try:
                await changed(now)
            except Exception:  # noqa: BLE001 - a failure to start or give up must not end the loop
                log.exception("lease.change_failed", lease=lease.name, held=now)
            held = now
        await asyncio.sleep(every)
