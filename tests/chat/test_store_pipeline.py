"""The store's write path on both databases: batches, their failures, deadlocks, HOT updates.

A unit has the same rules on SQLite (run inline, chat.store.fast) and on PostgreSQL (run side by
side with the rest of its batch, chat.store.pipeline): these tests hold both to them.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from chat.domain.conversations import ADD_CONTACT, ADD_CONVERSATION, BUMP_SEQ, insert_message
from chat.store import Database, migrate
from chat.store.commit import GroupCommit
from chat.store.tables import contacts, conversations, messages, users

NOW = datetime(2026, 3, 8, 7, 0, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await migrate(database)
    yield database
    await database.dispose()


async def conversation(conn, number: str) -> int:
    contact = (await conn.execute(ADD_CONTACT, {"number": number, "created_at": NOW})).inserted_primary_key[0]
    return (await conn.execute(ADD_CONVERSATION, {
        "contact_id": contact, "access_number": "+12125550101", "state": "open",
        "presented_number": "+12125550101", "created_at": NOW, "updated_at": NOW,
    })).inserted_primary_key[0]


async def note(conn, cid: int, text: str) -> int:
    row = await insert_message(conn, cid, direction="in", text=text, status="received", sender="+1", recipient="+2",
                               connector="tw", provider_id=text)
    return row["seq"]


async def conversations_of(db: Database, count: int) -> list[int]:
    return await db.write_all([partial(conversation, number=f"+1212555{i:04d}") for i in range(count)])


async def test_a_burst_with_one_bad_unit_fails_only_that_caller(db):
    cids = await conversations_of(db, 10)
    commit = GroupCommit(db)

    async def bad(conn):
        await conn.execute(BUMP_SEQ, {"cid": cids[0], "now": NOW})
        raise ValueError("this one is wrong")

    units = [partial(note, cid=cids[i % 10], text=f"m{i}") for i in range(30)]
    units.insert(7, bad)
    try:
        results = await asyncio.gather(*(commit.run(u) for u in units), return_exceptions=True)
    finally:
        await commit.close()
    assert isinstance(results.pop(7), ValueError)
    assert results == [i // 10 + 1 for i in range(30)]  # each conversation's notes, numbered in the order sent
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 30
        assert set((await conn.execute(sa.select(conversations.c.last_seq))).scalars()) == {3}  # the bad bump rolled back


async def test_a_unit_that_awaits_anything_but_the_connection_fails_alike_on_both(db):
    [cid] = await conversations_of(db, 1)
    commit = GroupCommit(db)

    async def sleepy(conn):
        await conn.execute(BUMP_SEQ, {"cid": cid, "now": NOW})
        await asyncio.sleep(0)

    try:
        good, refused = await asyncio.gather(commit.run(partial(note, cid=cid, text="fine")), commit.run(sleepy),
                                             return_exceptions=True)
    finally:
        await commit.close()
    assert good == 1
    assert isinstance(refused, RuntimeError) and "other than the database" in str(refused)


async def test_units_on_one_conversation_in_one_batch_keep_their_order(db):
    cids = await conversations_of(db, 3)
    units = [partial(note, cid=cids[i % 3], text=f"m{i}") for i in range(60)]
    for _ in range(2):  # the second batch runs on planned statements
        seqs = await db.write_all(units)
        units = [partial(note, cid=cids[i % 3], text=f"again {len(seqs)} {i}") for i in range(60)]
    assert seqs == [21 + i // 3 for i in range(60)]
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(messages.c.conversation_id, messages.c.seq, messages.c.text)
                                   .order_by(messages.c.id))).all()
    per_conversation = {cid: [seq for c, seq, _ in rows if c == cid] for cid in cids}
    assert all(seqs == list(range(1, 41)) for seqs in per_conversation.values())


async def test_two_units_creating_the_same_row_in_one_batch_still_pass(db):
    # Both look for the contact, neither finds it: the second waits for the first and finds it then.
    async def contact(conn, number: str) -> int:
        found = await conn.scalar(sa.select(contacts.c.id).where(contacts.c.number == sa.bindparam("number")),
                                  {"number": number})
        if found is not None:
            return found
        return (await conn.execute(ADD_CONTACT, {"number": number, "created_at": NOW})).inserted_primary_key[0]

    ids = await db.write_all([partial(contact, number=n) for n in ("+1", "+2", "+1", "+3", "+2")])
    assert ids[0] == ids[2] and ids[1] == ids[4] and len(set(ids)) == 3


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_a_batch_of_many_units_costs_the_round_trips_of_one(db):
    cids = await conversations_of(db, 50)
    await db.write_all([partial(note, cid=cid, text=f"warm {cid}") for cid in cids])  # statements seen: planned
    before = db._pipeline.round_trips
    seqs = await db.write_all([partial(note, cid=cid, text=f"batch {cid}") for cid in cids])
    assert seqs == [2] * 50
    assert db._pipeline.round_trips - before == 1  # the next seq and the message, for all 50: one statement


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_two_nodes_writing_one_conversation_number_its_messages_without_gap_or_repeat(db):
    # Each message takes its conversation's next seq in the statement that stores it (PostgreSQL):
    # batches of two nodes at once on the same five conversations still give each seq once.
    cids = await conversations_of(db, 5)
    other = Database(db.url.render_as_string(hide_password=False))
    try:
        async def node(database: Database, name: str) -> None:
            commit = GroupCommit(database, max_batch=8)
            try:
                await asyncio.gather(*(commit.run(partial(note, cid=cids[i % 5], text=f"{name}{i}")) for i in range(200)))
            finally:
                await commit.close()

        await asyncio.gather(node(db, "a"), node(other, "b"))
    finally:
        await other.dispose()
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(messages.c.conversation_id, messages.c.seq, messages.c.text))).all()
        last = dict((await conn.execute(sa.select(conversations.c.id, conversations.c.last_seq))).all())
    for cid in cids:
        seqs = sorted(seq for c, seq, _ in rows if c == cid)
        assert seqs == list(range(1, 81)) and last[cid] == 80
        for name in "ab":  # and each node's messages in the order it was handed them
            mine = [int(t[1:]) for c, _, t in sorted(rows, key=lambda r: r[1]) if c == cid and t[0] == name]
            assert mine == sorted(mine)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_a_deadlock_between_two_writers_is_retried_and_no_caller_sees_it(db):
    first, second = await conversations_of(db, 2)

    async def crossed(conn, a: int, b: int) -> str:  # locks a, waits, then wants b: the other writer holds b
        await conn.execute(conversations.update().where(conversations.c.id == a).values(team="x"))
        await conn.execute(sa.select(sa.func.pg_sleep(0.3)))
        await conn.execute(conversations.update().where(conversations.c.id == b).values(team="y"))
        return "done"

    with capture_logs() as logs:
        results = await asyncio.gather(db.write_all([partial(crossed, a=first, b=second)]),
                                       db.write_all([partial(crossed, a=second, b=first)]))
    assert results == [["done"], ["done"]]
    retried = [e for e in logs if e["event"] == "store.retried"]
    assert retried and retried[0]["sqlstate"] == "40P01" and retried[0]["log_level"] == "warning"
    assert retried[0]["attempt"] == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_each_message_updates_its_conversation_hot_with_autovacuum_off(db):
    [cid] = await conversations_of(db, 1)
    async with db.write() as conn:
        await conn.execute(sa.text("ALTER TABLE conversations SET (autovacuum_enabled = off)"))
        options = await conn.scalar(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'conversations'"))
    assert "fillfactor=50" in options

    async def bump_and_count(conn) -> int:
        await conn.execute(BUMP_SEQ, {"cid": cid, "now": NOW})
        return await conn.scalar(sa.text("SELECT pg_stat_get_xact_tuples_hot_updated('conversations'::regclass)"))

    hot = [await db.write_all([bump_and_count]) for _ in range(300)]  # one transaction each, as ingest does
    assert sum(n for [n] in hot) >= 297  # old versions are pruned in the page: no vacuum needed


async def test_a_batch_answers_each_unit_as_if_it_ran_alone(db):
    # On PostgreSQL the units' statements run once over arrays (chat.store.pipeline.Vector):
    # every unit must still get its own rows, in its own order, its own keys and row counts.
    cids = await conversations_of(db, 12)
    latest = (sa.select(messages.c.seq, messages.c.text).where(messages.c.conversation_id == sa.bindparam("cid"))
              .order_by(messages.c.seq.desc()).limit(sa.bindparam("n")))
    mark = (conversations.update().where(conversations.c.id == sa.bindparam("cid"))
            .values(team=sa.bindparam("label")))
    drop = messages.delete().where(messages.c.conversation_id == sa.bindparam("cid"), messages.c.seq <= 1)
    add_user = users.insert()

    async def unit(conn, cid: int, k: int, round_: int):
        for i in range(k + 1):
            await note(conn, cid, f"r{round_} c{cid} n{i}")
        rows = (await conn.execute(latest, {"cid": cid, "n": 2})).all()
        marked = (await conn.execute(mark, {"cid": cid, "label": f"t{cid}"})).rowcount
        dropped = (await conn.execute(drop, {"cid": cid})).rowcount
        added = await conn.execute(ADD_CONTACT, {"number": f"+4420{round_}{cid:05d}", "created_at": NOW})
        user = 1000 * round_ + cid
        await conn.execute(add_user, {"id": user, "name": f"u{user}", "role": "agent", "password_hash": "x",
                                      "created_at": NOW})
        return [tuple(r) for r in rows], marked, dropped, added.inserted_primary_key[0]

    for round_ in (1, 2):  # the second batch runs on planned statements: over arrays on PostgreSQL
        before = getattr(db._pipeline, "vectors", 0)
        results = await db.write_all([partial(unit, cid=cid, k=i % 3, round_=round_) for i, cid in enumerate(cids)])
    for i, (cid, (rows, marked, dropped, _)) in enumerate(zip(cids, results)):
        k = i % 3  # each round wrote k + 1 notes; round 1 deleted seq 1
        text = {s: f"r1 c{cid} n{s - 1}" if s <= k + 1 else f"r2 c{cid} n{s - k - 2}" for s in range(2, 2 * k + 3)}
        assert rows == sorted(text.items(), reverse=True)[:2]
        assert (marked, dropped) == (1, 0)
    async with db.read() as conn:
        numbers = dict((await conn.execute(sa.select(contacts.c.id, contacts.c.number))).all())
        assert [numbers[contact] for *_, contact in results] == [f"+44202{cid:05d}" for cid in cids]
        teams = dict((await conn.execute(sa.select(conversations.c.id, conversations.c.team))).all())
        assert all(teams[cid] == f"t{cid}" for cid in cids)
    if not db.is_sqlite:
        assert db._pipeline.vectors - before >= 6  # notes, the SELECT, UPDATE, DELETE, both INSERTs



@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_back_to_back_batches_commit_all_and_leave_no_transaction_open(db):
    # While more units wait, a batch's COMMIT and the next one's BEGIN go in one round trip and the
    # connection is kept; once the queue drains, nothing may be left open on the server.
    cids = await conversations_of(db, 20)
    commit = GroupCommit(db, max_batch=16)  # 300 units: many batches, most with more waiting
    try:
        seqs = await asyncio.gather(*(commit.run(partial(note, cid=cids[i % 20], text=f"b{i}")) for i in range(300)))
    finally:
        await commit.close()
    assert seqs == [i // 20 + 1 for i in range(300)]  # each conversation numbered in the order sent
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 300
        open_elsewhere = await conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"))
    assert open_elsewhere == 0
