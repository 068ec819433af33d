"""Every Socket.IO call is answered, whatever its name or payload, and never with a traceback
(issue 8, point 6); an agent writes only in their own conversations (point 10)."""
from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import uuid

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from chat.domain.conversations import contact_id, open_conversation
from tests.conftest import ALICE, CUSTOMER, MAIN, until

RESERVED = ["connect", "disconnect"]
FIELDS = ["cursors", "since", "conversation_id", "to", "text", "client_id", "from", "state", "seq", "number", "token"]
ANSWER_SECONDS = 12  # the server's bound (chat.agents.namespace.CALL_SECONDS) and a margin

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63 - 5, max_value=2**70)
           | st.floats() | st.text(max_size=30) | st.sampled_from(["1", "ready", ALICE, "", "\x00"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
payloads = json_values | st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)


def served_events(server) -> list[str]:
    """Every event the agents' namespace serves (so a new one is fuzzed too)."""
    return list(server.services.hub.sio.namespace_handlers["/agent"]._events)


def fuzzed_calls(n: int, names: list[str]) -> list[tuple[str, object]]:
    """`n` (event, payload) pairs from hypothesis, the known offenders first."""
    calls: list[tuple[str, object]] = []

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(names + RESERVED) | st.text(max_size=20), payloads)
    @example("send", [])
    @example("send", None)
    @example("read", {"conversation_id": math.inf, "seq": 1})
    @example("read", {"conversation_id": 2**64, "seq": 2**63})
    @example("present", {"conversation_id": "1", "number": 5})
    @example("sync", {"cursors": {"1": 2**70}, "since": math.inf})
    @example("sync", {"cursors": [], "since": "yesterday"})
    @example("close", {"conversation_id": -1})
    @example("disconnect", {})
    @example("connect", {"token": "x"})
    @example("no such event", {})
    def collect(event, payload):
        calls.append((event, payload))

    collect()
    return calls


def tracebacks(caplog, capfd) -> list[str]:
    out, err = capfd.readouterr()
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    return logged + [text for text in (out, err) if "Traceback" in text]


@pytest.fixture
def log_errors(caplog):
    caplog.set_level(logging.WARNING)
    return caplog


async def test_every_fuzzed_call_is_answered_without_a_traceback(didchat_server, log_errors, capfd):
    alice = await didchat_server.connect("alice")
    await didchat_server.simulate_sms(CUSTOMER, ALICE, "a conversation to aim at")
    await alice.wait_messages(1)
    names = served_events(didchat_server)
    assert {"sync", "send", "presence", "read", "present", "close", "auth"} <= set(names)
    calls = fuzzed_calls(100, names)
    unanswered = []

    async def one(event, payload):
        try:
            answer = await alice.sio.call(event, payload, namespace="/agent", timeout=ANSWER_SECONDS)
        except Exception as err:  # noqa: BLE001 - the point: which calls got no answer
            unanswered.append((event, payload, repr(err)))
            return
        assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), (event, payload, answer)

    for start in range(0, len(calls), 20):
        await asyncio.gather(*(one(e, p) for e, p in calls[start:start + 20]))
    assert unanswered == []
    assert alice.sio.connected
    assert (await alice.call("sync"))["ok"]
    assert tracebacks(log_errors, capfd) == []


async def test_a_client_sent_connect_or_disconnect_changes_nothing(didchat_server):
    alice = await didchat_server.connect("alice")
    presence = didchat_server.services.presence
    uid = didchat_server.services.directory.by_name["alice"].id
    for event in ("disconnect", "connect"):
        answer = await alice.call(event, {})
        assert answer["ok"] is False and answer["field"] == "event"
    assert presence.state(uid) != "offline"
    assert (await alice.call("sync"))["ok"]


async def test_unknown_events_and_bad_payloads_name_the_field(didchat_server):
    alice = await didchat_server.connect("alice")
    assert (await alice.call("frobnicate", {}))["field"] == "event"
    answer = await alice.call("read", {"conversation_id": 2**64, "seq": 1})
    assert answer["ok"] is False and answer["field"] == "conversation_id"
    answer = await alice.sio.call("send", [], namespace="/agent", timeout=5)
    assert answer["ok"] is False and "object" in answer["error"]
    answer = await alice.call("presence", {"state": "asleep"})
    assert answer["ok"] is False and answer["field"] == "state"


async def fail_outbox_inserts(database_url: str, on: bool) -> None:
    """A real database error on every outbox insert (a trigger), or no more of it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as db:
            db.execute("CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                       if on else "DROP TRIGGER fail_outbox")
        return
    db = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        if on:
            await db.execute("CREATE FUNCTION fail_outbox() RETURNS trigger AS $$ BEGIN "
                             "RAISE EXCEPTION 'disk full' USING ERRCODE = '53100'; END $$ LANGUAGE plpgsql")
            await db.execute("CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_outbox()")
        else:
            await db.execute("DROP TRIGGER fail_outbox ON outbox; DROP FUNCTION fail_outbox()")
    finally:
        await db.close()


async def test_a_database_error_during_send_asks_for_a_retry_that_stores_once(didchat_server, database_url, log_errors, capfd):
    alice = await didchat_server.connect("alice")
    await didchat_server.simulate_sms(CUSTOMER, ALICE, "hi")
    [msg] = await alice.wait_messages(1)
    payload = {"conversation_id": msg["conversation_id"], "text": "stored once", "client_id": str(uuid.uuid4())}
    await fail_outbox_inserts(database_url, True)
    answer = await alice.call("send", payload)
    assert answer == {"ok": False, "error": "temporarily unavailable, retry", "retry": True}
    await fail_outbox_inserts(database_url, False)
    first, again = await alice.call("send", payload), await alice.call("send", payload)
    assert first["ok"] and again["message"]["id"] == first["message"]["id"]
    sync = await alice.call("sync")
    assert [m["text"] for m in sync["messages"] if m["direction"] == "out"] == ["stored once"]
    assert tracebacks(log_errors, capfd) == []


async def waiting_conversation(server, owner: str, number: str = MAIN) -> int:
    """A conversation with CUSTOMER on `number` that waits for `owner` (who is away)."""
    svc = server.services

    async def unit(conn):
        contact = await contact_id(conn, CUSTOMER)
        return (await open_conversation(conn, contact, number, svc.directory.by_name[owner].id, None)).id
    return await svc.commit.run(unit)


async def test_an_agent_cannot_write_into_a_conversation_waiting_for_another(didchat_server):
    alice = await didchat_server.connect("alice")
    cid = await waiting_conversation(didchat_server, "bob")
    answer = await alice.call("send", {"to": CUSTOMER, "from": MAIN, "text": "mine now?", "client_id": "c-1"})
    assert answer["ok"] is False and answer["field"] == "to"
    assert "conversation" not in answer and "message" not in answer
    assert f"conversation {cid}" not in answer["error"] and "bob" not in answer["error"].lower()
    answer = await alice.call("send", {"conversation_id": cid, "text": "and by id?", "client_id": "c-2"})
    assert answer["ok"] is False and answer["field"] == "conversation_id"
    assert (await alice.call("close", {"conversation_id": cid}))["ok"] is False
    assert (await alice.call("present", {"conversation_id": cid, "number": MAIN}))["ok"] is False
    sync = await alice.call("sync")
    assert sync["conversations"] == [] and sync["messages"] == []
    await asyncio.sleep(0)  # nothing was queued for the provider either
    assert didchat_server.twilio_api.requests == []


async def test_an_agent_takes_a_conversation_waiting_for_them_by_writing_into_it(didchat_server):
    alice = await didchat_server.connect("alice")
    cid = await waiting_conversation(didchat_server, "alice")
    answer = await alice.call("send", {"to": CUSTOMER, "from": MAIN, "text": "here I am", "client_id": "c-3"})
    assert answer["ok"], answer
    assert answer["message"]["conversation_id"] == cid
    await didchat_server.twilio_api.wait_for_requests(1)
    await until(lambda: any(c["id"] == cid for c in alice.pushed("conversation")))
