"""The database: one async engine, and the one way to open a write transaction.

Rules: SQLite runs in WAL mode with foreign keys and a busy timeout, and every write
transaction starts with BEGIN IMMEDIATE under one in-process lock (SQLite is for one process;
a read that upgrades to a write would otherwise fail with SQLITE_BUSY). PostgreSQL needs
neither and gets neither. Datetimes are always UTC.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def utcnow() -> datetime:
    return datetime.now(UTC)


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
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer") if self.is_sqlite else None
        self._sync_engine = self._create_sync_engine() if self.is_sqlite else None

    def _create_engine(self) -> AsyncEngine:
        if not self.is_sqlite:
            return create_async_engine(self.url, pool_size=10, max_overflow=10)
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
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    async def write_all(self, units: Sequence[Callable[[object], Awaitable]]) -> list:
        """Run write units in one transaction; their results, once committed.

        On SQLite the whole batch crosses to the writer thread once (aiosqlite would cross
        several times per statement); the units' awaits on the connection complete at once there.
        """
        if not self.is_sqlite:
            async with self.write() as conn:
                return [await unit(conn) for unit in units]
        async with self._write_lock:
            return await asyncio.get_running_loop().run_in_executor(self._writer, self._write_sync, units)

    def _write_sync(self, units) -> list:
        with self._sync_engine.connect() as conn:
            conn.info["immediate"] = True
            with conn.begin():
                inline = InlineConnection(conn)
                return [drive(unit(inline)) for unit in units]

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on exit, rolled back on error."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock:
            async with self.engine.connect() as conn:
                if self.is_sqlite:
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
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._writer.shutdown(wait=True)
            self._sync_engine.dispose()


class InlineConnection:
    """A sync connection behind the awaitable surface of AsyncConnection that units use."""

    def __init__(self, conn: sa.Connection):
        self.sync_connection = conn

    async def execute(self, statement, parameters=None):
        return self.sync_connection.execute(statement, parameters)

    async def scalar(self, statement, parameters=None):
        return self.sync_connection.scalar(statement, parameters)

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


def _sqlite_on_begin(conn) -> None:
    immediate = conn.info.pop("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
