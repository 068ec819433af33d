"""Start-up time: the directory hashes only what must be hashed, off the event loop, and a
restart on an existing database reads each table once and writes only what changed."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from chat.config import Config
from chat.domain.running import start
from chat.store import Database, migrate
from chat.store.tables import access_numbers, users
from gateway.numbers import InvalidNumber, normalize_number

HASH = PasswordHasher().hash("given-password-1")  # one real argon2 hash, given for every user


def numbers(count: int) -> list[str]:
    out = []
    for i in range(20_000):
        try:
            out.append(normalize_number(f"+1212555{i:04d}"))
        except InvalidNumber:
            continue
        if len(out) == count:
            return out
    raise AssertionError("not enough valid numbers")


def settings(count: int, password: str = "password_hash", display: str = "Agent") -> dict:
    """`count` users, each with a personal number; `password` is how their passwords are given."""
    nums = numbers(count)
    secret = HASH if password == "password_hash" else "initial-password"
    return {
        "users": [{"name": f"agent{i}", "display_name": f"{display} {i}", password: secret} for i in range(count)],
        "access_numbers": [{"number": n, "user": f"agent{i}"} for i, n in enumerate(nums)],
        "connectors": [{"type": "generic", "name": "gen", "secret": "s" * 20, "send_url": "http://127.0.0.1:9/",
                        "numbers": nums}],
    }


def config(count: int, password: str = "password_hash", display: str = "Agent") -> Config:
    return Config.model_validate(settings(count, password, display))


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await migrate(database)
    yield database
    await database.dispose()


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """The thread of every argon2 hash computed (what the password was is not recorded)."""
    calls: list[str] = []
    real = PasswordHasher.hash

    def counted(self, password, **kw):
        calls.append(threading.current_thread().name)
        return real(self, password, **kw)

    monkeypatch.setattr(PasswordHasher, "hash", counted)
    return calls


async def sync_directory(db, cfg):
    """A start with `cfg`: its directory."""
    return (await start(db, cfg)).directory


@pytest.fixture
def writes(db) -> list[str]:
    """The INSERT, UPDATE and DELETE statements sent to the database (executemany counts once)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_a_thousand_users_with_password_hash_start_without_hashing_and_restart_without_writing(db, hashes, writes):
    cfg = config(1000)
    first = await sync_directory(db, cfg)
    assert hashes == []  # the config gave every hash: none computed (it was ~0.14 s each)
    assert len(first.agents) == 1000
    async with db.read() as conn:
        assert set((await conn.scalars(sa.select(users.c.password_hash))).all()) == {HASH}
        assert await conn.scalar(sa.select(sa.func.count()).select_from(access_numbers)) == 1000
    assert len(writes) <= 5  # batched: users and numbers (and the revision and its audit record), not a statement per row

    writes.clear()
    again = await sync_directory(db, cfg)
    assert writes == []  # nothing changed: nothing written
    assert hashes == []
    assert {a.name: a.id for a in again.agents.values()} == {a.name: a.id for a in first.agents.values()}


async def test_initial_passwords_are_hashed_once_and_never_overwritten(db, hashes, writes):
    cfg = config(3, password="password")
    await sync_directory(db, cfg)
    assert len(hashes) == 3
    assert threading.main_thread().name not in hashes  # off the event loop, in the hashing pool
    async with db.read() as conn:
        stored = dict((await conn.execute(sa.select(users.c.name, users.c.password_hash))).all())
    assert PasswordHasher().verify(stored["agent0"], "initial-password")

    hashes.clear()
    writes.clear()
    await sync_directory(db, cfg)
    assert hashes == [] and writes == []  # a restart re-hashes nothing and overwrites nothing
    async with db.read() as conn:
        assert dict((await conn.execute(sa.select(users.c.name, users.c.password_hash))).all()) == stored


async def test_a_restart_writes_only_what_changed(db, writes):
    await sync_directory(db, config(50))
    data = settings(50, display="Renamed")
    data["access_numbers"] = data["access_numbers"][1:]  # agent0's number is gone
    data["access_numbers"][0]["user"] = "agent2"  # agent1's number now points at agent2
    writes.clear()
    directory = await sync_directory(db, Config.model_validate(data))
    kinds = sorted(s.lstrip().split(None, 1)[0].upper() for s in writes)
    assert kinds == ["DELETE", "INSERT", "INSERT", "UPDATE", "UPDATE"]  # one batch each: renamed users, the
    # re-pointed number; and the new revision of the running configuration, with its audit record
    assert directory.owners[data["access_numbers"][0]["number"]] == directory.by_name["agent2"].id
    async with db.read() as conn:
        names = set((await conn.scalars(sa.select(users.c.display_name))).all())
        assert names == {f"Renamed {i}" for i in range(50)}
        assert await conn.scalar(sa.select(sa.func.count()).select_from(access_numbers)) == 49
