"""chat.domain.inbound's units on SQLite and PostgreSQL, many to a batch as ingest runs them.

Invariants 2 (a provider's retry is stored once), 3 (one active conversation per customer and
number) and 4 (a conversation's messages numbered in the order they came) hold inside one
batch as they hold across batches, on both databases.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial

import pytest
import sqlalchemy as sa

from chat.domain.directory import Agent, Directory, Route
from chat.domain.inbound import Fingerprint, inbound_unit, store_inbound
from chat.store import Database, migrate
from chat.store.commit import GroupCommit
from chat.store.tables import conversations, messages, users
from gateway import InboundSms

ALICE = "+12125550101"
NOW = datetime(2026, 3, 8, 7, 0, 0, tzinfo=UTC)


class Everyone:
    def available(self, user_id: int) -> bool:
        return True


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await migrate(database)
    async with database.write() as conn:
        await conn.execute(users.insert().values(id=1, name="alice", role="agent", password_hash="x", created_at=NOW))
    yield database
    await database.dispose()


@pytest.fixture
def directory() -> Directory:
    alice = Agent(1, "alice", "Alice", "agent", (ALICE,), (ALICE,))
    return Directory(agents={1: alice}, by_name={"alice": alice}, owners={ALICE: 1}, sms_numbers=frozenset({ALICE}),
                     connector_of={ALICE: "tw"}, routes={ALICE: Route(user=1)})


async def burst(db: Database, units) -> list:
    commit = GroupCommit(db)
    try:
        return await asyncio.gather(*(commit.run(u) for u in units))
    finally:
        await commit.close()


def customer(i: int) -> str:
    return f"+1646555{i:04d}"


async def test_a_burst_of_new_and_known_customers_with_retries_is_stored_once_in_order(db, directory):
    sms = [InboundSms("tw", f"id-{i}", customer(i % 8), ALICE, f"text {i}") for i in range(40)]
    retried = [InboundSms("tw", "id-5", customer(5), ALICE, "text 5"), InboundSms("tw", "id-12", customer(4), ALICE, "text 12")]
    for _ in range(2):  # new customers first, then the same ones known, on planned statements
        results = await burst(db, [inbound_unit(s, directory, Everyone()) for s in sms[:20] + retried + sms[20:]])
        sms = [InboundSms("tw", f"again-{s.provider_id}", s.sender, ALICE, s.text) for s in sms]
    assert [r.duplicate for r in results] == [False] * 20 + [True, True] + [False] * 20
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(conversations)) == 8
        rows = (await conn.execute(sa.select(messages.c.sender, messages.c.seq, messages.c.provider_id)
                                   .order_by(messages.c.sender, messages.c.seq))).all()
    assert len(rows) == 80
    for i in range(8):
        ids = [p for s, _, p in rows if s == customer(i)]
        first = [f"id-{n}" for n in range(i, 40, 8)]
        assert ids == first + [f"again-{p}" for p in first]  # seq order is arrival order


async def test_the_first_messages_of_a_new_customer_open_one_conversation(db, directory):
    results = await burst(db, [inbound_unit(InboundSms("tw", f"n{i}", customer(1), ALICE, f"t{i}"), directory, Everyone())
                               for i in range(6)])
    assert [r.new_conversation for r in results] == [True] + [False] * 5
    assert [r.message_row["seq"] for r in results] == [1, 2, 3, 4, 5, 6]
    assert len({r.row.id for r in results}) == 1 and results[0].assigned_id == 1


async def test_an_smpp_resend_in_the_same_batch_is_stored_once(db, directory):
    # SMPP has no message id: the fingerprint within its window is what makes a resend one message.
    def unit(i: int, digest: str):
        sms = InboundSms("smsc", "", customer(i), ALICE, "same text")
        return partial(store_inbound, sms=sms, directory=directory, presence=Everyone(), fingerprint=Fingerprint(digest, 60))

    results = await burst(db, [unit(1, "a"), unit(2, "b"), unit(1, "a"), unit(3, "c"), unit(2, "b")])
    assert [r.duplicate for r in results] == [False, False, True, False, True]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_a_batch_of_inbound_messages_costs_the_round_trips_of_one(db, directory):
    sms = [InboundSms("tw", f"w{i}", customer(i), ALICE, "warm") for i in range(50)]
    await db.write_all([inbound_unit(s, directory, Everyone()) for s in sms])  # the conversations exist
    await db.write_all([inbound_unit(InboundSms("tw", f"v{i}", customer(i), ALICE, "x"), directory, Everyone()) for i in range(50)])
    before, before_vectors = db._pipeline.round_trips, db._pipeline.vectors
    results = await db.write_all([inbound_unit(InboundSms("tw", f"m{i}", customer(i), ALICE, "x"), directory, Everyone())
                                  for i in range(50)])
    assert [r.message_row["seq"] for r in results] == [3] * 50
    assert db._pipeline.round_trips - before == 2  # seen? and its conversation; the next seq with the message: 50 at a time
    assert db._pipeline.vectors - before_vectors == 2  # each one statement over the 50 messages' arrays
