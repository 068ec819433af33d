"""The SQLite fast path (chat.store.fast) gives what SQLAlchemy gives, and checkpoints leave the commit path."""
from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import partial

import pytest
import sqlalchemy as sa

from chat.domain.conversations import ADD_CONTACT, ADD_CONVERSATION, ADD_MESSAGE, BUMP_SEQ, FIND_ACTIVE
from chat.store import Database, migrate
from chat.store.tables import contacts, conversations, messages
from tests.conftest import until

NOW = datetime(2026, 3, 8, 7, 0, 0, 123456, tzinfo=UTC)
BY_ID = sa.select(messages).where(messages.c.id == sa.bindparam("mid"))  # module-level: planned once seen twice


@pytest.fixture
async def db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/fast.db")
    await migrate(database)
    yield database
    await database.dispose()


async def seed(conn, number: str = "+12125551234") -> dict:
    contact = (await conn.execute(ADD_CONTACT, {"number": number, "name": "Carol", "fields": {"tier": "gold"},
                                                "created_at": NOW})).inserted_primary_key[0]
    conv = (await conn.execute(ADD_CONVERSATION, {
        "contact_id": contact, "access_number": "+12125550101", "owner_id": None, "assigned_id": None,
        "state": "open", "presented_number": "+12125550101", "tags": ["vip"], "created_at": NOW, "updated_at": NOW,
    })).inserted_primary_key[0]
    seq = (await conn.execute(BUMP_SEQ, {"cid": conv, "now": NOW})).scalar_one()
    message = (await conn.execute(ADD_MESSAGE, {
        "conversation_id": conv, "seq": seq, "direction": "in", "text": "héllo €", "status": "received",
        "sender": number, "recipient": "+12125550101", "connector": "tw", "media": None,
        "incomplete": True, "created_at": NOW, "updated_at": NOW,
    })).inserted_primary_key[0]
    found = (await conn.execute(FIND_ACTIVE, {"number": number, "access": "+12125550101"})).first()
    fast_row = (await conn.execute(BY_ID, {"mid": message})).one()
    slow_row = (await conn.execute(sa.select(messages).where(messages.c.id == message))).one()  # built per call: SQLAlchemy
    return {"contact": contact, "conv": conv, "seq": seq, "found": found, "fast": fast_row, "slow": slow_row}


async def test_hot_statements_read_and_write_what_sqlalchemy_does(db, tmp_path):
    await db.write_all([seed])  # every statement seen once: the next batch plans them
    [got] = await db.write_all([partial(seed, number="+12125551235")])
    assert db._plans.get(FIND_ACTIVE, ("number", "access")) is not None
    assert got["seq"] == 1
    # rows of a hot statement look like SQLAlchemy's: attributes, _mapping, processed types
    assert got["fast"]._mapping == dict(got["slow"]._mapping)
    assert got["fast"].incomplete is True and got["fast"].text == "héllo €"
    found = got["found"]
    assert (found.id, found.contact_number, found.contact_name) == (got["conv"], "+12125551235", "Carol")
    assert found.tags == ["vip"] and found.contact_fields == {"tier": "gold"} and found.last_seq == 1
    assert found.updated_at.replace(tzinfo=UTC) == NOW
    # what the fast path wrote reads back the same through SQLAlchemy's async engine (aiosqlite)
    async with db.read() as conn:
        row = (await conn.execute(sa.select(conversations.c.tags, conversations.c.updated_at)
                                  .where(conversations.c.id == got["conv"]))).one()
        fields = await conn.scalar(sa.select(contacts.c.fields).where(contacts.c.id == got["contact"]))
    assert row.tags == ["vip"] and row.updated_at.replace(tzinfo=UTC) == NOW and fields == {"tier": "gold"}


async def test_a_failing_hot_statement_fails_only_its_batch_with_sqlalchemys_error(db):
    await db.write_all([seed])

    async def duplicate_seq(conn):  # (conversation_id, seq) is unique
        await conn.execute(ADD_MESSAGE, {"conversation_id": 1, "seq": 1, "direction": "in", "text": "x",
                                         "status": "received", "sender": "a", "recipient": "b", "connector": "tw",
                                         "created_at": NOW, "updated_at": NOW})

    with pytest.raises(sa.exc.IntegrityError):
        await db.write_all([partial(bump, cid=1), duplicate_seq])
    async with db.read() as conn:  # the batch rolled back: the bump did not stay
        assert await conn.scalar(sa.select(conversations.c.last_seq)) == 1


async def bump(conn, cid):
    return (await conn.execute(BUMP_SEQ, {"cid": cid, "now": NOW})).scalar_one()


async def test_checkpoints_run_beside_the_writer(db, tmp_path):
    async def note(conn, i):
        await conn.execute(ADD_CONTACT, {"number": f"+1212555{i:04d}", "created_at": NOW})

    for batch in range(20):
        await db.write_all([partial(note, i=batch * 50 + i) for i in range(50)])
    await until(lambda: db._checkpointer.checkpoints > 0, 5, "a checkpoint")
    assert os.path.exists(f"{tmp_path}/fast.db-wal")
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(contacts)) == 1000
