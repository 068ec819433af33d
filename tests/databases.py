"""Migrated template databases: a test's fresh database is a copy of one, not ~18 migrations run again.

Rules:
- One template per pytest process and database kind (each xdist worker has its own, named with its
  worker id and process id: workers and concurrent runs never share one nor race on one), built
  when a test first needs it from the migrations present then (`chat.store.migrate`, as the app
  and `didchat migrate` run them). Its name carries a digest of the migration files; when they
  change during the run, the next test gets a new template. No schema is ever stored.
- PostgreSQL: `CREATE DATABASE "test" TEMPLATE "tpl"`. PostgreSQL refuses that while any session is
  connected to the template, so the build closes every connection it opened.
- SQLite: a copy of the migrated file; the template is left with its WAL checkpointed into it and
  no -wal or -shm file, so the copy is the whole database.
- Templates are dropped at the end of the session; ones left by a process of this host that died
  are dropped when a new one is built (only when nobody is connected to them).
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import socket
import sqlite3
import threading
from pathlib import Path

import asyncpg

from chat.store import Database, migrate
from chat.store.migrate import SCRIPTS

PREFIX = "didchat_tpl_"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]  # process ids mean something on this host only
TEMPLATE_NAME = re.compile(rf"^{PREFIX}[0-9a-f]+_(?P<host>[0-9a-f]+)_\w+_(?P<pid>\d+)$")


def migrations_digest() -> str:
    """A digest of what migrating runs: the Alembic scripts and chat.store.migrate."""
    digest = hashlib.sha256()
    files = {path.relative_to(SCRIPTS).as_posix(): path for path in SCRIPTS.rglob("*.py")}
    files["chat.store.migrate"] = Path(migrate.__code__.co_filename)
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def asyncpg_url(admin_dsn: str, name: str) -> str:
    """The SQLAlchemy URL of database `name` on the server of `admin_dsn`."""
    return admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


async def migrated(url: str) -> None:
    """Bring the database at `url` to the newest schema; every connection opened is closed again."""
    db = Database(url)
    try:
        await migrate(db)
    finally:
        await db.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Templates:
    """This process's templates (see the module's rules)."""

    def __init__(self, admin_dsn: str, directory: Path):
        self.admin_dsn, self.directory = admin_dsn, directory
        self._postgres: tuple[str, str] | None = None  # (digest, database name)
        self._sqlite: tuple[str, Path] | None = None  # (digest, file)

    async def postgres(self, admin: asyncpg.Connection) -> str:
        """The name of a migrated template database on `admin`'s server (built if needed)."""
        digest = migrations_digest()
        if self._postgres and self._postgres[0] == digest:
            return self._postgres[1]
        if self._postgres:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self._postgres[1]}" WITH (FORCE)')
            self._postgres = None
        await self._drop_stale(admin)
        name = f"{PREFIX}{digest}_{HOST}_{WORKER}_{os.getpid()}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a dead process's, under our pid
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await migrated(asyncpg_url(self.admin_dsn, name))
        except BaseException:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            raise
        self._postgres = (digest, name)
        return name

    async def _drop_stale(self, admin: asyncpg.Connection) -> None:
        """Drop templates that processes of this host left when they died."""
        names = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", PREFIX.replace("_", r"\_") + "%")
        for (name,) in names:
            match = TEMPLATE_NAME.match(name)
            if match and match["host"] == HOST and not _alive(int(match["pid"])):
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')  # not WITH (FORCE): in use is not stale
                except asyncpg.PostgresError:
                    pass

    async def sqlite(self) -> Path:
        """A migrated SQLite file to copy (built if needed)."""
        digest = migrations_digest()
        if self._sqlite and self._sqlite[0] == digest:
            return self._sqlite[1]
        path = self.directory / f"template-{digest}.db"
        for leftover in (path, *_sidecars(path)):
            leftover.unlink(missing_ok=True)
        await migrated(f"sqlite+aiosqlite:///{path}")
        conn = sqlite3.connect(path)  # all of the WAL into the file (if any is left); the last close removes it
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        left = [p.name for p in _sidecars(path) if p.exists()]
        assert not left, f"the SQLite template {path} still has {left}: a copy of the file alone would miss them"
        self._sqlite = (digest, path)
        return path

    async def copy_sqlite(self, target: Path) -> None:
        """`target`: a new SQLite database with the newest schema."""
        shutil.copyfile(await self.sqlite(), target)

    def close(self) -> None:
        """Drop this process's PostgreSQL template (the SQLite one goes with pytest's temporary directory)."""
        if self._postgres is None:
            return
        name, self._postgres = self._postgres[1], None

        async def drop() -> None:
            admin = await asyncpg.connect(self.admin_dsn, timeout=3)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()

        errors: list[BaseException] = []

        def run() -> None:  # a thread of its own: whatever event loop the caller's thread may have
            try:
                asyncio.run(drop())
            except BaseException as error:  # noqa: BLE001 - raised below, in the caller's thread
                errors.append(error)

        thread = threading.Thread(target=run, name="drop-template")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
