"""Search and filters of an agent's conversations (both databases, a real server and Socket.IO clients): found by
the contact's name, by their number typed in any form, by a word or the start of a word of a message or a note;
filtered open, waiting, closed, unread; paged past the newest 500 with none repeated and none missing; another
agent's conversations never shown; hostile text answered, never an error 500; messages stored before the
migration, and after it, found."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.domain.conversations import contact_id, insert_message, open_conversation
from chat.store import Database, migrate, utcnow
from chat.store.tables import contacts, conversations, messages
from tests.conftest import ALICE, BOB, CUSTOMER, until

INDEX_EVERY = 4096  # chat/migrations/versions/0023_search.py: SQLite indexes its queue at every 4,096th message

MARIA = "+14155550100"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def make_conversation(server, number: str, texts: tuple[str, ...] = (), *, agent: str = "alice",
                            name: str | None = None, waiting: bool = False, closed: bool = False,
                            read: bool = False, direction: str = "in") -> int:
    """A conversation of `agent`'s (on their number) with the contact at `number`, made through the domain layer."""
    uid = server.services.directory.by_name[agent].id
    access = ALICE if agent == "alice" else BOB

    async def unit(conn):
        contact = await contact_id(conn, number)
        if name is not None:
            await conn.execute(contacts.update().where(contacts.c.id == contact).values(name=name))
        conv = await open_conversation(conn, contact, access, uid, None if waiting else uid)
        for text in texts:
            await insert_message(conn, conv.id, direction=direction, text=text, status="received" if direction == "in"
                                 else "note", sender=number, recipient=access, connector="tw")
        changes = {"state": "closed", "closed_at": utcnow()} if closed else {}
        if read:
            changes["read_seq"] = conversations.c.last_seq
        if changes:
            await conn.execute(conversations.update().where(conversations.c.id == conv.id).values(**changes))
        return conv.id
    return await server.services.commit.run(unit)


async def found(client, **payload) -> list[int]:
    """The ids a search answers (one page), checking the answer is ok."""
    answer = await client.call("search", payload)
    assert answer["ok"], (payload, answer)
    return [c["id"] for c in answer["conversations"]]


async def test_finds_by_name_by_number_in_any_form_and_by_words_of_messages_and_notes(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    maria = await make_conversation(server, MARIA, ("Where is my delivery? It was due Tuesday",), name="Maria O'Brien")
    other = await make_conversation(server, "+12125550177", ("hello there",), name="Bob Jones")
    noted = await make_conversation(server, "+442079460018", ("Customer wants a refund",), direction="note")

    for q in ("maria", "MARIA", "o'brien", "Maria O'Brien", "brien mar"):
        assert await found(alice, q=q) == [maria], q
    for q in ("+1 415 555", "4155550100", "(415) 555-0100", "+14155550100", "555-0100", "1-415-555-0100", "415.555"):
        assert await found(alice, q=q) == [maria], q
    assert await found(alice, q="020 7946 0018") == [noted]  # the national form, with its trunk 0
    assert await found(alice, q="20 7946") == [noted]

    answer = await alice.call("search", {"q": "deliv"})
    [hit] = answer["conversations"]
    assert hit["id"] == maria and hit["contact"] == {"number": MARIA, "name": "Maria O'Brien", "national": "(415) 555-0100"}
    assert hit["match"]["seq"] == 1 and "delivery" in hit["match"]["text"]
    assert hit["state"] == "open" and hit["opted_out"] is False and hit["unread"] == 1
    assert await found(alice, q="DELIVERY") == [maria]
    assert await found(alice, q="due tues") == [maria]  # every word, each as the start of a word
    assert await found(alice, q="delivery refund") == []
    assert await found(alice, q="livery") == []  # the start of a word, not any part of it
    assert await found(alice, q="refund") == [noted]  # notes too
    assert await found(alice, q="hello") == [other]
    answer = await alice.call("search", {"q": "jones"})
    assert [c["id"] for c in answer["conversations"]] == [other] and "match" not in answer["conversations"][0]


async def test_a_message_stored_now_is_found_at_once(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    for n in range(3):
        assert (await server.simulate_sms(CUSTOMER, ALICE, f"parcel number {n} zebra{n}"))[0] == 200
    [first, *_] = await alice.wait_messages(3)
    for n in range(3):
        answer = await alice.call("search", {"q": f"zebra{n}"})
        assert [c["id"] for c in answer["conversations"]] == [first["conversation_id"]]
        assert answer["conversations"][0]["match"]["seq"] == n + 1
    sent = await alice.call("send", {"conversation_id": first["conversation_id"], "text": "Your giraffe ships today",
                                     "client_id": "s-1"})
    assert sent["ok"], sent
    assert await found(alice, q="giraff") == [first["conversation_id"]]


async def test_hundreds_of_messages_found_and_deleted_ones_not(make_server):
    """Past SQLite's index batches (migration 0023): every message found once, a deleted one no more."""
    server = await make_server()
    alice = await server.connect("alice")
    ids = await asyncio.gather(*(make_conversation(server, f"+1303555{n:04d}", (f"ticket t{n}x",)) for n in range(300)))
    answer = await alice.call("search", {"q": "ticket", "limit": 100})
    seen = [c["id"] for c in answer["conversations"]]
    while answer["next"]:
        answer = await alice.call("search", {"q": "ticket", "limit": 100, "before": answer["next"]})
        seen += [c["id"] for c in answer["conversations"]]
    assert sorted(seen) == sorted(ids)
    assert await found(alice, q="t123x") == [ids[123]]

    async def forget(conn, cid):
        await conn.execute(messages.delete().where(messages.c.conversation_id == cid))
    late = await make_conversation(server, "+13035559999", ("ticket t999x",))  # queued for the index, not in it yet
    for cid in (ids[5], ids[299], late):
        await server.services.commit.run(partial(forget, cid=cid))
    for n in (5, 299, 999):
        assert await found(alice, q=f"t{n}x") == []
    assert await found(alice, q="t6x") == [ids[6]]
    assert len(await found(alice, q="ticket", limit=100)) == 100

    big = await make_conversation(server, "+13035558888")

    async def many(conn):  # more than SQLite's index batch (INDEX_EVERY): the index keeps up by itself
        for n in range(INDEX_EVERY + 100):
            await insert_message(conn, big, direction="in", text=f"filler f{n}q", status="received", sender="+13035558888",
                                 recipient=ALICE, connector="tw")
    await server.services.commit.run(many)
    if server.services.db.is_sqlite:
        async with server.services.db.read() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM messages_unindexed")) < INDEX_EVERY
    for n in (0, 2000, INDEX_EVERY + 99):
        answer = await alice.call("search", {"q": f"f{n}q"})
        assert [(c["id"], c["match"]["seq"]) for c in answer["conversations"]] == [(big, n + 1)]


async def test_filters_open_waiting_closed_and_unread(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    assert (await alice.call("presence", {"state": "not_ready"}))["ok"]  # else she is given the one that waits for her
    unread = await make_conversation(server, "+12125550171", ("are you there?",))
    read = await make_conversation(server, "+12125550172", ("thanks",), read=True)
    waiting = await make_conversation(server, "+12125550173", ("anyone?",), waiting=True)
    closed = await make_conversation(server, "+12125550174", ("bye",), closed=True, read=True)
    await make_conversation(server, "+12125550175", ("not alice's",), agent="bob")

    assert set(await found(alice, state="open")) == {unread, read}
    assert await found(alice, state="waiting") == [waiting]
    assert await found(alice, state="closed") == [closed]
    assert set(await found(alice, unread=True)) == {unread, waiting}
    assert await found(alice, state="open", unread=True) == [unread]
    assert await found(alice) == [closed, waiting, read, unread]  # newest first
    states = {c["id"]: c["state"] for c in (await alice.call("search", {}))["conversations"]}
    assert states == {unread: "open", read: "open", waiting: "waiting", closed: "closed"}

    assert (await alice.call("read", {"conversation_id": unread, "seq": 1}))["ok"]
    assert await found(alice, unread=True) == [waiting]
    assert await found(alice, q="there", state="closed") == []
    assert await found(alice, q="bye", state="closed") == [closed]


async def test_pages_through_more_than_500_conversations_none_repeated_none_missing(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    mine = await asyncio.gather(*(make_conversation(server, f"+1720555{n:04d}", (f"order {n}",)) for n in range(525)))
    await asyncio.gather(*(make_conversation(server, f"+1720666{n:04d}", ("bob's",), agent="bob") for n in range(20)))

    async def same_time(conn):  # 150 ties on updated_at, across three pages: the id decides, and the cursor keeps it
        await conn.execute(conversations.update().where(conversations.c.id.in_(mine[:150])).values(updated_at=LONG_AGO))
    await server.services.commit.run(same_time)
    assert len((await alice.call("sync"))["conversations"]) == 500

    pages, answer = [], await alice.call("search", {"limit": 100})
    pages.append(answer["conversations"])
    bumped = answer["conversations"][10]["id"]
    await make_conversation_message(server, bumped)  # moves to the top while the client pages: not repeated
    while answer["next"] is not None:
        answer = await alice.call("search", {"limit": 100, "before": answer["next"]})
        assert answer["ok"], answer
        pages.append(answer["conversations"])
    listed = [c for page in pages for c in page]
    ids = [c["id"] for c in listed]
    assert [len(p) for p in pages] == [100, 100, 100, 100, 100, 25]
    assert len(ids) == len(set(ids)) == 525 and set(ids) == set(mine)
    keys = [(datetime.fromisoformat(c["updated_at"]), c["id"]) for c in listed if c["id"] != bumped]
    assert keys == sorted(keys, reverse=True)

    default = await alice.call("search", {})
    assert len(default["conversations"]) == 50 and default["next"]
    page, answer = [], {"next": None}
    while True:  # a search's results page the same way
        answer = await alice.call("search", {"q": "order", "limit": 60, **({"before": answer["next"]} if answer["next"] else {})})
        page += [c["id"] for c in answer["conversations"]]
        if answer["next"] is None:
            break
    assert sorted(page) == sorted(mine)


async def make_conversation_message(server, cid: int) -> None:
    async def unit(conn):
        await insert_message(conn, cid, direction="in", text="one more", status="received", sender=CUSTOMER,
                             recipient=ALICE, connector="tw")
    await server.services.commit.run(unit)


async def test_an_agent_never_sees_another_agents_conversation(make_server):
    server = await make_server()
    alice, bob, ada = await server.connect("alice"), await server.connect("bob"), await server.connect("ada")
    bobs = await make_conversation(server, MARIA, ("secret platypus plans",), agent="bob", name="Maria Bob")
    waiting_for_bob = await make_conversation(server, "+12125550179", ("platypus too",), agent="bob", waiting=True)
    alices = await make_conversation(server, "+12125550178", ("my platypus",), name="Maria Alice")

    assert await found(alice, q="platypus") == [alices]
    assert await found(alice, q="maria") == [alices]
    assert await found(alice, q="4155550100") == []
    assert await found(alice) == [alices]
    assert await found(alice, state="waiting") == []
    assert set(await found(bob, q="platypus")) == {bobs, waiting_for_bob}
    refused = await alice.call("search", {"everyone": True})
    assert refused["ok"] is False and refused["field"] == "everyone" and "conversations" not in refused

    assert await found(ada, q="platypus") == []  # an admin's own, unless they ask for everyone's
    assert set(await found(ada, q="platypus", everyone=True)) == {bobs, waiting_for_bob, alices}
    assert await found(ada, q="415 555", everyone=True) == [bobs]


HOSTILE = [
    '"', '""', "'", "''", "*", "-", "-x", "NEAR(a b)", "a NEAR/2 b", "(", ")", "((a)", "a OR b", "AND", "NOT x",
    "text:delivery", "^deliv", "deliv*", '"unterminated', "a & b | !c", "'':*", "x:*", "<->", "\\", "\\'", "%", "_",
    "%_%", "\x00", "a\x00b", "\x00" * 50, "🎉", "🎉 deliv", "\ud83d", "\u202e delivery", "<script>alert(1)</script>",
    "!" * 200, "(" * 200, '"' * 200, "*" * 200, "x" * 200, "é" * 200, "日本語のテキスト", "a " * 100, " " * 200,
    "+", "++1", "()", "+1 (", "0" * 200, "1" * 200, "\t\n\r", "NULL", "'; DROP TABLE messages; --",
]


async def test_hostile_queries_are_answered_as_words_never_an_error(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    maria = await make_conversation(server, MARIA, ("Your delivery, Maria (the first) -- NEAR done",), name="Maria")
    for q in HOSTILE:
        answer = await alice.call("search", {"q": q})
        assert answer["ok"] is True or (answer["field"] == "q" and q == "\ud83d"), (q, answer)  # not a string
    assert await found(alice, q='"deliv') == [maria]
    assert await found(alice, q="deliv*") == [maria]
    assert await found(alice, q="(first) NEAR") == [maria]
    assert await found(alice, q="-- maria --") == [maria]
    assert await found(alice, q="🎉 deliv") == [maria]  # an emoji is no word: it only separates
    assert await found(alice, q="\x00maria\x00") == [maria]

    bad = [({"q": "x" * 201}, "q"), ({"q": 5}, "q"), ({"state": "asleep"}, "state"), ({"unread": "yes"}, "unread"),
           ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "5"}, "limit"), ({"before": 7}, "before"),
           ({"before": "not a cursor"}, "before"), ({"before": "MTIz"}, "before"), ({"before": "x" * 65}, "before"),
           ({"before": "OTk5OTk5OTk5OTk5OTk5OTk5LjE"}, "before"), ({"everyone": 1}, "everyone"), ({"page": 2}, "page")]
    for payload, field in bad:
        answer = await alice.call("search", payload)
        assert answer["ok"] is False and answer["field"] == field, (payload, answer)
        assert answer["error"] != "internal error" and "Traceback" not in answer["error"]
    assert (await alice.call("search", None))["ok"]


def random_texts(n: int) -> list[str]:
    """`n` texts from hypothesis: any characters, up to the 200 `q` may hold."""
    texts: list[str] = []

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.text(max_size=200) | st.text(alphabet='"*-+()^:&|!\'\\ NEARORANDNOT0123456789', max_size=60))
    def collect(text):
        texts.append(text)
    collect()
    return texts


async def test_any_text_is_answered(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    await make_conversation(server, MARIA, ("Your delivery (the first) -- NEAR done",), name="Maria")
    texts = random_texts(150)
    for start in range(0, len(texts), 25):
        answers = await asyncio.gather(*(alice.call("search", {"q": q}) for q in texts[start:start + 25]))
        for q, answer in zip(texts[start:start + 25], answers, strict=True):
            assert answer["ok"] is True or answer.get("field") == "q", (q, answer)


async def test_messages_stored_before_the_migration_are_found(make_server, database_url):
    db = Database(database_url)
    try:
        await migrate(db, "0022")
        now = utcnow()
        async with db.write() as conn:
            uid = (await conn.execute(sa.text("INSERT INTO users (name, role, password_hash, created_at) VALUES "
                                              "('alice', 'agent', 'x', :t) RETURNING id"), {"t": now})).scalar_one()
            contact = (await conn.execute(sa.text("INSERT INTO contacts (number, name, created_at) VALUES (:n, 'Old', :t) "
                                                  "RETURNING id"), {"n": CUSTOMER, "t": now})).scalar_one()
            cid = (await conn.execute(sa.text(
                "INSERT INTO conversations (contact_id, access_number, owner_id, assigned_id, state, presented_number,"
                " last_seq, created_at, updated_at) VALUES (:c, :a, :u, :u, 'open', :a, 1, :t, :t) RETURNING id"),
                {"c": contact, "a": ALICE, "u": uid, "t": now})).scalar_one()
            await conn.execute(sa.text(
                "INSERT INTO messages (conversation_id, seq, direction, text, status, sender, recipient, connector,"
                " created_at, updated_at) VALUES (:c, 1, 'in', 'my aardvark is late', 'received', :s, :a, 'tw', :t, :t)"),
                {"c": cid, "s": CUSTOMER, "a": ALICE, "t": now})
    finally:
        await db.dispose()
    server = await make_server()  # migrates to the newest schema
    alice = await server.connect("alice")
    assert await found(alice, q="aardv") == [cid]
    assert (await server.simulate_sms(CUSTOMER, ALICE, "and my wombat"))[0] == 200
    await until(lambda: alice.messages, what="the new message")
    assert await found(alice, q="wombat") == [cid]
    assert await found(alice, q="aardvark") == [cid]
