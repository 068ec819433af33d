"""Claims across nodes, on both databases: two nodes' claims of one team's queue take each waiting
conversation once; a claim that deadlocks with another node's batch (rows locked in the other
order) is run again by the store, so the agent still gets her conversations and nobody an error."""
from __future__ import annotations

import asyncio
from functools import partial

import sqlalchemy as sa
import structlog.testing

from chat.domain.waiting import claim_waiting
from chat.store import Database, migrate, utcnow
from chat.store.commit import GroupCommit
from chat.store.tables import contacts, conversations, users
from tests.conftest import MAIN

WAITING = 20


async def _queue(db: Database) -> None:
    """Users 1 and 2 and WAITING conversations (ids 1..WAITING) waiting in the `support` queue."""
    now = utcnow()
    async with db.write() as conn:
        await conn.execute(users.insert(), [{"id": i, "name": f"u{i}", "role": "agent", "password_hash": "-",
                                             "created_at": now} for i in (1, 2)])
        await conn.execute(contacts.insert(), [{"id": i, "number": f"+1212555{3000 + i}", "created_at": now}
                                               for i in range(1, WAITING + 1)])
        await conn.execute(conversations.insert(), [
            {"id": i, "contact_id": i, "access_number": MAIN, "state": "waiting", "presented_number": MAIN,
             "team": "support", "created_at": now, "updated_at": now} for i in range(1, WAITING + 1)])


async def _two_nodes(database_url: str):
    first, second = Database(database_url), Database(database_url)
    await migrate(first)
    await _queue(first)
    return first, second


async def test_two_nodes_claiming_one_queue_take_each_conversation_once(database_url):
    dbs = await _two_nodes(database_url)
    commits = [GroupCommit(db) for db in dbs]
    try:
        results = await asyncio.gather(*(commit.run(partial(claim_waiting, user_id=uid, teams=("support",)))
                                         for commit, uid in zip(commits, (1, 2))))
        claimed = [conv["id"] for result in results for conv, _ in result]
        assert sorted(claimed) == list(range(1, WAITING + 1))
        async with dbs[0].read() as conn:
            left = await conn.scalar(sa.select(sa.func.count()).where(conversations.c.state == "waiting"))
        assert left == 0
    finally:
        for commit, db in zip(commits, dbs):
            await commit.close()
            await db.dispose()


async def test_a_claim_that_deadlocks_with_another_nodes_batch_is_run_again(database_url):
    dbs = await _two_nodes(database_url)
    commits = [GroupCommit(db) for db in dbs]
    pause = "SELECT pg_sleep(0.3)" if not dbs[0].is_sqlite else "SELECT 1"

    async def backwards(conn) -> None:
        """Another node's batch touching the last conversation, then (a moment later) the first."""
        for cid in (WAITING, 1):
            await conn.execute(conversations.update().where(conversations.c.id == cid).values(tags=["seen"]))
            await conn.execute(sa.text(pause))

    try:
        with structlog.testing.capture_logs() as logs:
            batch = asyncio.create_task(commits[0].run(backwards))
            await asyncio.sleep(0.1)  # it holds the last row when the claim comes
            claim = await commits[1].run(partial(claim_waiting, user_id=1, teams=("support",)))
            await batch  # one of the two was chosen as the deadlock's victim and run again: neither failed
        if not dbs[0].is_sqlite:  # (one writer at a time on SQLite: they simply take turns)
            assert any(e["event"] == "store.retried" and e["sqlstate"] == "40P01" for e in logs), logs
        assert sorted(conv["id"] for conv, _ in claim) == list(range(1, WAITING + 1))
        async with dbs[0].read() as conn:
            tagged = (await conn.execute(sa.select(conversations.c.id, conversations.c.tags)
                                         .where(conversations.c.id.in_((1, WAITING))))).all()
        assert all(tags == ["seen"] for _, tags in tagged)
    finally:
        for commit, db in zip(commits, dbs):
            await commit.close()
            await db.dispose()
