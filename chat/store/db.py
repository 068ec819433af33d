"""The database: one async engine, and the one way to run write units.

Rules: SQLite runs in WAL mode with foreign keys and a busy timeout, and every write
transaction starts with BEGIN IMMEDIATE under one in-process lock (SQLite is for one process;
a read that upgrades to a write would otherwise fail with SQLITE_BUSY). PostgreSQL needs
neither and gets neither. Datetimes are always UTC.

A write unit (`async def unit(conn) -> value`) has the same rules on both databases: it awaits
nothing but the connection (else it fails: "a write unit waited on something other than the
database"), and the store picks the fastest way to run its statements (chat.store.fast for
SQLite, chat.store.pipeline for PostgreSQL). On PostgreSQL a batch that meets a deadlock or a
serialization failure (SQLSTATE 40P01, 40001) runs again, up to RETRIES times, logged at
warning (`store.retried`): no caller of write_all sees one.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import overload

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction, create_async_engine

from chat.store.fast import Plans, build, run
from chat.store.pipeline import Pipeline

log = structlog.get_logger()
WRITER_BUSY_TIMEOUT_MS = 2000  # the writer runs in the event loop's thread: never wait long for a lock
RETRIES = 8  # runs of a batch that meets deadlocks or serialization failures before its callers see one
RETRYABLE = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class Database:
    """The engine plus the write discipline for its dialect."""

    def __init__(self, url: str):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine: AsyncEngine = self._create_engine()
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._sync_engine = self._create_sync_engine() if self.is_sqlite else None
        self._plans = Plans(partial(build, dialect=self._sync_engine.dialect)) if self._sync_engine else None
        self._writer_conn: sa.Connection | None = None
        self._inline: InlineConnection | None = None
        self._pipeline = None if self.is_sqlite else Pipeline(self.engine.dialect)
        self._held: tuple[AsyncConnection, AsyncTransaction] | None = None  # PostgreSQL: begun for the next batch
        file = self.url.database if self.is_sqlite and self.url.database not in (None, "", ":memory:") else None
        self._checkpointer = Checkpointer(file) if file else None

    def _create_engine(self) -> AsyncEngine:
        if not self.is_sqlite:
            # Custom plans always: a generic plan is made once per prepared statement, from the sizes the
            # tables had then, and kept; with autovacuum off nothing replaces it. Made while a table was
            # small it scanned it whole for ever after: SMPP ingest fell from 8,000 to 671 msg/s in one
            # 30,000-message run (bench/README.md, "PostgreSQL's share"). Planning per execution costs
            # ~0.01 ms a message over arrays. LIFO: the batches keep to the connection used last, whose
            # statements are prepared and whose server process is warm, rather than going round all ten.
            return create_async_engine(self.url, pool_size=10, max_overflow=10, pool_use_lifo=True,
                                       connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}})
        if self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url, connect_args={"isolation_level": None, "timeout": 30})
        sa.event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine

    def _create_sync_engine(self) -> sa.Engine:
        url = self.url.set(drivername="sqlite+pysqlite")
        engine = sa.create_engine(url, connect_args={"isolation_level": None, "timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "connect", _sqlite_writer_on_connect)
        sa.event.listen(engine, "begin", _sqlite_writer_on_begin)
        return engine

    async def write_all(self, units: Sequence[Callable[[object], Awaitable]], more: Callable[[], bool] | None = None) -> list:
        """Run write units in one transaction; their results, once committed. `more()`, asked at the
        commit, says another batch waits (PostgreSQL then begins its transaction with this commit).

        On SQLite the batch runs right here, in the event loop's thread, on the fast path
        (chat.store.fast): a batch of 50 inbound messages takes ~3 ms. Handing it to a writer
        thread cost more than it saved: that thread gave up the GIL for every statement and then
        waited for it while the loop ran (bench/README.md: 3,066-3,469 against 3,773-4,063
        durable SMPP messages/s). The writer's busy timeout is short, so a lock held by another
        process fails the batch (the callers answer "try again") instead of stalling the loop.
        """
        if self._pipeline is not None:
            return await self._write_pipelined(units, more)
        assert self._write_lock is not None  # SQLite has one
        async with self._write_lock:
            return self._write_sync(units)

    async def _write_pipelined(self, units, more: Callable[[], bool] | None) -> list:
        """PostgreSQL: the batch's statements in few round trips (chat.store.pipeline), rerun on a
        deadlock or serialization failure, so no caller ever sees one.

        When another batch waits at the commit, the commit and the next batch's BEGIN go in one
        round trip ("COMMIT; BEGIN": a batch of inbound messages is then three trips, not four) and
        the connection is kept for it; otherwise it goes back to the pool, no transaction open."""
        assert self._pipeline is not None  # PostgreSQL has one
        for attempt in range(1, RETRIES + 1):
            try:
                conn, trans = self._held or (None, None)
                self._held = None
                if conn is None or trans is None:
                    conn = await self.engine.connect()
                    trans = await conn.begin()
                try:
                    results = await self._pipeline.run(conn, units)
                    if more is not None and more():
                        await self._pipeline.commit_and_begin(conn)
                        self._held = (conn, trans)
                    else:
                        await trans.commit()
                        await conn.close()
                except BaseException:
                    await _discard(conn, trans)
                    raise
                return results
            except Exception as err:
                sqlstate = getattr(getattr(err, "orig", None), "sqlstate", None)
                if sqlstate not in RETRYABLE or attempt == RETRIES:
                    raise
                log.warning("store.retried", sqlstate=sqlstate, attempt=attempt, units=len(units))
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))  # apart, so the two sides do not meet again
        raise AssertionError("unreachable")

    def _write_sync(self, units) -> list:
        if self._writer_conn is None or self._writer_conn.invalidated:  # one connection, kept: the only writer
            assert self._sync_engine is not None  # SQLite has one, and only SQLite gets here
            self._writer_conn = self._sync_engine.connect()
            assert self._plans is not None  # as for the engine
            self._inline = InlineConnection(self._writer_conn, self._plans)
        with self._writer_conn.begin():
            results = [drive(unit(self._inline)) for unit in units]
        if self._checkpointer is not None:
            self._checkpointer.committed()
        return results

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on exit, rolled back on error.

        A block cannot be run again: a deadlock in it reaches the caller. Work that must not
        see one is a unit, given to write_all (or to GroupCommit).
        """
        lock = self._write_lock or contextlib.nullcontext()
        async with lock:
            async with self.engine.connect() as conn:
                if self.is_sqlite:
                    assert conn.sync_connection is not None  # set once the connection is open
                    conn.sync_connection.info["immediate"] = True
                async with conn.begin():
                    yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction."""
        async with self.engine.connect() as conn:
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
        if self._held is not None:
            await _discard(*self._held)
            self._held = None
        await self.engine.dispose()
        if self._sync_engine is not None:
            if self._writer_conn is not None:
                self._writer_conn.close()
            self._sync_engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.stop()


async def _discard(conn: AsyncConnection, trans: AsyncTransaction) -> None:
    """Roll back and give the connection back; a connection that is broken is dropped by the pool."""
    with contextlib.suppress(Exception):
        await trans.rollback()
    with contextlib.suppress(Exception):
        await conn.close()


class InlineConnection:
    """A sync connection behind the awaitable surface of AsyncConnection that units use.

    Statements planned (chat.store.fast.Plans) run on the sqlite3 connection itself; the rest
    through SQLAlchemy, in the same transaction.
    """

    def __init__(self, conn: sa.Connection, plans: Plans):
        self.sync_connection = conn
        self._dbapi = conn.connection.dbapi_connection
        self._plans = plans

    async def execute(self, statement, parameters=None):
        if parameters is None or isinstance(parameters, dict):
            plan = self._plans.get(statement, tuple(parameters or ()))
            if plan is not None:
                return run(self._dbapi, plan, parameters or {})
        return self.sync_connection.execute(statement, parameters)

    async def scalar(self, statement, parameters=None):
        return (await self.execute(statement, parameters)).scalar()

    async def scalars(self, statement, parameters=None):
        return self.sync_connection.scalars(statement, parameters)


def drive(coro):
    """Run a coroutine that never suspends (it awaits only InlineConnection) to its end."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a write unit waited on something other than the database")


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _sqlite_writer_on_connect(dbapi_conn, _record) -> None:
    """The writer leaves checkpoints to the Checkpointer (and keeps the WAL file from growing for good)."""
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")
    dbapi_conn.execute(f"PRAGMA busy_timeout={WRITER_BUSY_TIMEOUT_MS}")
    dbapi_conn.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")


class Checkpointer:
    """Copies the WAL back into the database file in its own thread, off the commit path.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages; with
    random index pages that was most of the commit cost (bench/README.md). A PASSIVE checkpoint
    from another connection runs beside the writer (SQLite releases the GIL while it works), never
    blocks it, and never loses anything: until a frame is checkpointed, the WAL has it.
    """

    def __init__(self, path: str, interval: float = 0.25):
        self.path, self.interval = path, interval
        self._commits = 0
        self.checkpoints = 0  # PASSIVE checkpoints run so far
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._commits += 1

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        seen = 0
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping.wait(self.interval):
                if self._commits == seen:
                    continue
                seen = self._commits
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as err:  # commits are unaffected; the next round tries again
                    log.warning("sqlite.checkpoint_failed", error=repr(err))
        finally:
            conn.close()


def _sqlite_writer_on_begin(conn) -> None:
    """The writer's transactions: BEGIN IMMEDIATE straight on the driver (SQLAlchemy's own
    statement machinery cost more than the batch's commit)."""
    conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")


def _sqlite_on_begin(conn) -> None:
    immediate = conn.info.pop("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
