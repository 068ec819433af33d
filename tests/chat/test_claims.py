"""Rows of work claimed once (chat.domain.claims, outbox, crm_outbox, scenario_state), on both databases.

Two "nodes" here are two Database objects on one database (two engines, two pools: on PostgreSQL
their transactions really run side by side), each with its own holder name and tokens.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest
import sqlalchemy as sa

from chat.config import OutboxConfig
from chat.domain import crm_outbox as crm
from chat.domain import outbox as domain
from chat.domain.claims import Claim
from chat.domain.conversations import contact_id, insert_message, open_conversation
from chat.domain.directory import Directory
from chat.domain.outbox import claim_head, next_due, record_failure, record_sent, release_claims, renew_claims
from chat.domain.scenario_state import Decision, Due, step
from chat.store import Database, migrate, utcnow
from chat.store.commit import GroupCommit
from chat.store.tables import conversations, crm_outbox, messages, outbox, scenario_runs, scenario_timers
from gateway import SendError, SendResult
from scenarios import Result

DIRECTORY = Directory({}, {}, {}, frozenset(), {})
CONFIG = OutboxConfig(backoff_seconds=5, backoff_max_seconds=5, max_attempts=3)


@pytest.fixture
async def store(database_url):
    """The migrated database and a second 'node' on it: (db, commit) pairs."""
    first = Database(database_url)
    await migrate(first)
    second = Database(database_url)
    nodes = [(first, GroupCommit(first)), (second, GroupCommit(second))]
    yield nodes
    for db, commit in nodes:
        await commit.close()
        await db.dispose()


def claim(holder: str, seconds: float = 30) -> Claim:
    return Claim.new(holder, seconds)


async def claim_due(conn, **options) -> list:
    """Claim due heads (chat.domain.outbox.claim_due) and read them back, as the outbox worker does."""
    return await domain.claimed(conn, await domain.claim_due(conn, **options))


async def queue(conn, texts_by_conversation: dict[str, list[str]], connector: str = "tw") -> dict[str, int]:
    """Conversations (one per customer number) with their outbox rows, in order; their ids by number."""
    ids = {}
    for number, texts in texts_by_conversation.items():
        conv = await open_conversation(conn, await contact_id(conn, number), "+12125550101", None, None)
        ids[number] = conv.id
        for text in texts:
            msg = await insert_message(conn, conv.id, direction="out", text=text, status="queued", sender="+12125550101",
                                       recipient=number, connector=connector)
            now = utcnow()
            await conn.execute(outbox.insert().values(message_id=msg["id"], conversation_id=conv.id, connector=connector,
                                                      next_attempt_at=now, created_at=now))
    return ids


async def texts_left(db: Database) -> list[str]:
    async with db.read() as conn:
        query = sa.select(messages.c.text).join(outbox, outbox.c.message_id == messages.c.id).order_by(outbox.c.id)
        return list((await conn.scalars(query)).all())


async def test_only_heads_are_claimed_and_each_by_one_node(store):
    (a_db, a), (_, b) = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["1a", "1b"], "+12125550202": ["2a"]}))
    mine = await a.run(partial(claim_due, claim=claim("a"), limit=10))
    assert [row.text for row in mine] == ["1a", "2a"]  # 1b waits behind its head
    assert all(row.claim_token for row in mine) and len({row.claim_token for row in mine}) == 2
    assert await b.run(partial(claim_due, claim=claim("b"), limit=10)) == []  # held heads, and nothing behind them


async def test_recording_a_send_claims_the_next_head_for_the_same_node(store):
    (a_db, a), (_, b) = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["one", "two"]}))
    [head] = await a.run(partial(claim_due, claim=claim("a"), limit=10))
    _, following = await a.run(partial(record_sent, row=head, result=SendResult(("SM1",)), claim=claim("a")))
    assert following.text == "two" and following.claim_token and following.claim_token != head.claim_token
    assert await b.run(partial(claim_due, claim=claim("b"), limit=10)) == []
    assert await texts_left(a_db) == ["two"]


async def test_a_node_whose_claim_lapsed_and_was_taken_over_records_nothing(store):
    (a_db, a), (_, b) = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["one", "two"]}))
    [stale] = await a.run(partial(claim_due, claim=claim("a", seconds=-1), limit=10))  # a lease already over: a node that hung
    [taken] = await b.run(partial(claim_due, claim=claim("b"), limit=10))
    assert taken.id == stale.id and taken.claim_token != stale.claim_token
    assert await a.run(partial(record_sent, row=stale, result=SendResult(("SM-A",)), claim=claim("a"))) is None
    assert await a.run(partial(record_failure, row=stale, error=SendError("503", temporary=True), config=CONFIG,
                               claim=claim("a"))) is None
    assert await texts_left(a_db) == ["one", "two"]  # nothing of A's was recorded
    _, following = await b.run(partial(record_sent, row=taken, result=SendResult(("SM-B",)), claim=claim("b")))
    assert following.text == "two" and await texts_left(a_db) == ["two"]


async def test_a_lapsed_claim_nobody_took_over_is_still_recorded(store):
    (a_db, a), _ = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["one"]}))
    [stale] = await a.run(partial(claim_due, claim=claim("a", seconds=-1), limit=10))
    assert await a.run(partial(record_sent, row=stale, result=SendResult(("SM1",)), claim=claim("a"))) is not None
    assert await texts_left(a_db) == []


async def test_a_temporary_failure_releases_the_row_until_its_retry_is_due(store):
    (a_db, a), (b_db, b) = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["one", "two"]}))
    [head] = await a.run(partial(claim_due, claim=claim("a"), limit=10))
    assert await a.run(partial(record_failure, row=head, error=SendError("503", temporary=True), config=CONFIG,
                               claim=claim("a"))) == (None, None)
    assert await b.run(partial(claim_due, claim=claim("b"), limit=10)) == []  # backing off (5 s), and "two" waits behind it
    async with b_db.read() as conn:
        when = await next_due(conn)
        row = (await conn.execute(sa.select(outbox).where(outbox.c.id == head.id))).one()
    assert row.claim_token is None and row.attempts == 1 and when is not None
    later = replace(claim("b"), now=utcnow() + timedelta(seconds=10))
    [retry] = await b.run(partial(claim_due, claim=later, limit=10))
    assert retry.id == head.id and retry.attempts == 1  # whichever node is free then retries it


async def test_a_permanent_failure_fails_the_message_and_claims_the_next_head(store):
    (a_db, a), _ = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["one", "two"]}))
    [head] = await a.run(partial(claim_due, claim=claim("a"), limit=10))
    status, following = await a.run(partial(record_failure, row=head, error=SendError("invalid number", temporary=False),
                                            config=CONFIG, claim=claim("a")))
    assert status["status"] == "failed" and following.text == "two"


async def test_blocked_connectors_rows_are_left_to_the_node_that_may_send_them(store):
    (a_db, a), (_, b) = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["smpp"]}, connector="smsc"))
    await a.run(partial(queue, texts_by_conversation={"+12125550202": ["http"]}, connector="tw"))
    standby = await a.run(partial(claim_due, claim=claim("a"), limit=10, blocked=("smsc",)))
    assert [row.text for row in standby] == ["http"]
    assert [row.text for row in await b.run(partial(claim_due, claim=claim("b"), limit=10))] == ["smpp"]


async def test_renewed_claims_outlive_their_first_lease_and_released_ones_are_free_at_once(store):
    (a_db, a), (_, b) = store
    await a.run(partial(queue, texts_by_conversation={"+12125550201": ["one"], "+12125550202": ["two"]}))
    short = claim("a", seconds=-1)
    first, second = await a.run(partial(claim_due, claim=short, limit=10))
    assert await a.run(partial(renew_claims, tokens=[first.claim_token], until=utcnow() + timedelta(seconds=30))) == 1
    [taken] = await b.run(partial(claim_due, claim=claim("b"), limit=10))
    assert taken.id == second.id  # the lapsed one; the renewed one is still A's
    await a.run(partial(release_claims, tokens=[first.claim_token]))
    assert [row.id for row in await b.run(partial(claim_due, claim=claim("b"), limit=10))] == [first.id]


async def test_two_nodes_claiming_at_once_never_share_a_row(store):
    (a_db, a), (_, b) = store
    await a.run(partial(queue, texts_by_conversation={f"+121255503{i:02d}": [f"{i}"] for i in range(60)}))

    async def drain(commit: GroupCommit, holder: str) -> list[int]:
        got: list[int] = []
        while rows := await commit.run(partial(claim_due, claim=claim(holder), limit=3)):
            got += [row.id for row in rows]
        return got

    mine, theirs = await asyncio.gather(drain(a, "a"), drain(b, "b"))
    assert not set(mine) & set(theirs) and len(mine) + len(theirs) == 60


async def test_claim_head_takes_one_conversations_head_once(store):
    (a_db, a), (_, b) = store
    ids = await a.run(partial(queue, texts_by_conversation={"+12125550201": ["one", "two"]}))
    cid = ids["+12125550201"]
    got = await asyncio.gather(a.run(partial(claim_head, conversation_id=cid, claim=claim("a"))),
                               b.run(partial(claim_head, conversation_id=cid, claim=claim("b"))))
    assert sorted(row.text for row in got if row is not None) == ["one"]


async def add_activity(conn, key: str) -> None:
    now = utcnow()
    await conn.execute(crm_outbox.insert().values(key=key, url="http://127.0.0.1:9/", body={}, next_attempt_at=now, created_at=now))


async def test_crm_activities_are_claimed_once_and_recorded_by_their_holder_only(store):
    (a_db, a), (_, b) = store
    await a.run(partial(add_activity, key="k1"))
    [stale] = await a.run(partial(crm.claim_due, claim=claim("a", seconds=-1)))
    [taken] = await b.run(partial(crm.claim_due, claim=claim("b")))
    assert await b.run(partial(crm.claim_due, claim=claim("b"))) == []
    assert not await a.run(partial(crm.done, row_id=stale.id, token=stale.claim_token))
    assert await b.run(partial(crm.retry, row_id=taken.id, token=taken.claim_token, error="HTTP 503", delay=30))
    async with a_db.read() as conn:
        row = (await conn.execute(sa.select(crm_outbox))).one()
    assert row.attempts == 1 and row.claim_token is None and row.last_error == "HTTP 503"


# -- one scenario execution per conversation ------------------------------------------------

def counting(conv, run, scenario: str = "count") -> Decision:
    """A decision that adds one to the stored run's count (lost updates would show as a smaller count)."""
    n = (run.run["n"] if run else 0) + 1
    return Decision(scenario, Result({"n": n}, (), utcnow() + timedelta(hours=1)))


async def new_conversation(conn) -> int:
    conv = await open_conversation(conn, await contact_id(conn, "+12125550201"), "+12125550101", None, None)
    return conv.id


async def stored_count(db: Database, cid: int) -> int:
    async with db.read() as conn:
        run = await conn.scalar(sa.select(scenario_runs.c.run).where(scenario_runs.c.conversation_id == cid))
    return run["n"]


async def test_events_of_one_conversation_from_two_nodes_run_one_at_a_time(store):
    (a_db, a), (_, b) = store
    cid = await a.run(new_conversation)
    directory = DIRECTORY
    unit = partial(step, conversation_id=cid, decide=counting, directory=directory, teams={})
    await asyncio.gather(*(commit.run(unit) for _ in range(15) for commit in (a, b)))
    assert await stored_count(a_db, cid) == 30


def resuming(conv, run) -> Decision | None:
    """A wait that the first answer ends: only an execution that finds the run resumes it."""
    return None if run is None else Decision("count", Result(None, (), None))


async def test_answers_reaching_two_nodes_at_once_resume_the_wait_once(store):
    (a_db, a), (_, b) = store
    cid = await a.run(new_conversation)
    for _ in range(5):
        await a.run(partial(step, conversation_id=cid, decide=counting, directory=DIRECTORY, teams={}))  # the wait
        unit = partial(step, conversation_id=cid, decide=resuming, directory=DIRECTORY, teams={})
        resumed = await asyncio.gather(a.run(unit), b.run(unit))
        assert sum(after is not None for after in resumed) == 1


async def test_a_timer_seen_due_by_two_nodes_fires_once(store):
    (a_db, a), (_, b) = store
    cid = await a.run(new_conversation)

    async def add_timer(conn) -> int:
        result = await conn.execute(scenario_timers.insert().values(conversation_id=cid, name="t", at=utcnow()))
        return result.inserted_primary_key[0]

    timer = await a.run(add_timer)
    unit = partial(step, conversation_id=cid, decide=counting, directory=DIRECTORY, teams={}, due=Due("timer", timer))
    fired = await asyncio.gather(a.run(unit), b.run(unit), a.run(unit))
    assert sum(after is not None for after in fired) == 1 and await stored_count(a_db, cid) == 1


async def test_a_wait_timeout_and_a_reply_deadline_fire_once(store):
    (a_db, a), (_, b) = store
    cid = await a.run(new_conversation)

    async def due_now(conn) -> None:
        past = utcnow() - timedelta(seconds=1)
        await conn.execute(scenario_runs.insert().values(conversation_id=cid, scenario="count", run={"n": 0}, wake_at=past,
                                                         updated_at=past))
        await conn.execute(conversations.update().where(conversations.c.id == cid).values(reply_due_at=past))

    await a.run(due_now)

    async def due_again(conn, cid: int) -> None:
        await conn.execute(scenario_runs.update().where(scenario_runs.c.conversation_id == cid)
                           .values(wake_at=utcnow() - timedelta(seconds=1)))

    for due in (Due("wait"), Due("reply")):
        unit = partial(step, conversation_id=cid, decide=counting, directory=DIRECTORY, teams={}, due=due)
        fired = await asyncio.gather(a.run(unit), b.run(unit))
        assert sum(after is not None for after in fired) == 1, due
        await a.run(partial(due_again, cid=cid))
    assert await stored_count(a_db, cid) == 2
