"""Inbound SMS: from a signed webhook to the owning agent's socket, idempotent, all or nothing."""
from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from chat.store.tables import contacts, conversations, messages
from tests.conftest import ALICE, BOB, CUSTOMER


async def count(server, table) -> int:
    async with server.services.db.read() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(table))


async def test_sms_reaches_only_the_owner_within_a_second(didchat_server):
    alice = await didchat_server.connect("alice")
    bob = await didchat_server.connect("bob")
    started = time.monotonic()
    status, body = await didchat_server.simulate_sms(CUSTOMER, ALICE, "Hi Alice, it's Carol")
    assert status == 200 and "<Response></Response>" in body
    [msg] = await alice.wait_messages(1, timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert msg["text"] == "Hi Alice, it's Carol" and msg["from"] == CUSTOMER and msg["to"] == ALICE
    assert msg["direction"] == "in" and msg["seq"] == 1
    [conv] = alice.pushed("conversation")
    assert conv["contact"]["number"] == CUSTOMER and conv["access_number"] == ALICE
    # Bob's own SMS reaches him after Alice's did; Alice's never did.
    await didchat_server.simulate_sms(CUSTOMER, BOB, "Hi Bob")
    [bob_msg] = await bob.wait_messages(1)
    assert bob_msg["text"] == "Hi Bob"
    assert [m["text"] for m in bob.messages] == ["Hi Bob"]
    assert [m["text"] for m in alice.messages] == ["Hi Alice, it's Carol"]
    assert len(bob.pushed("conversation")) == 1


async def test_same_message_sid_three_times_is_one_message(didchat_server):
    alice = await didchat_server.connect("alice")
    answers = [await didchat_server.simulate_sms(text="once", message_id="SM" + "a" * 32) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    await alice.wait_messages(1)
    assert await count(didchat_server, messages) == 1
    await didchat_server.simulate_sms(text="marker")  # pushes are ordered: the marker comes after any duplicate
    await alice.wait_messages(2)
    assert [m["text"] for m in alice.messages] == ["once", "marker"]


async def test_concurrent_retries_of_one_message_store_it_once(didchat_server):
    sid = "SM" + "b" * 32
    answers = await asyncio.gather(*(didchat_server.simulate_sms(text="race", message_id=sid) for _ in range(5)))
    assert {status for status, _ in answers} == {200}
    assert await count(didchat_server, messages) == 1


async def test_forged_signature_is_403_and_stores_nothing(didchat_server):
    url, body, headers = didchat_server.webhook(CUSTOMER, ALICE, "forged")
    status, text = await didchat_server.post(url, body, headers | {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert status == 403
    tampered = body.replace(b"forged", b"tampered")
    status, _ = await didchat_server.post(url, tampered, headers)
    assert status == 403
    assert await count(didchat_server, messages) == 0 and await count(didchat_server, contacts) == 0


async def test_malformed_body_is_400_naming_the_field(didchat_server):
    from urllib.parse import urlencode

    from gateway.providers.twilio import twilio_signature
    url, _, _ = didchat_server.webhook(CUSTOMER, ALICE, "x")
    params = {"MessageSid": "SM" + "c" * 32, "AccountSid": didchat_server.twilio_api.account_sid, "To": ALICE, "Body": "x"}
    sig = twilio_signature(didchat_server.twilio_api.auth_token, url, params)
    status, text = await didchat_server.post(url, urlencode(params).encode(),
                                             {"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and "From" in text


async def test_sms_to_a_number_not_ours_is_404_naming_it(didchat_server):
    url, body, headers = didchat_server.webhook(CUSTOMER, "+12125550177", "who?")
    status, text = await didchat_server.post(url, body, headers)
    assert status == 404 and "+12125550177" in text
    assert await count(didchat_server, messages) == 0


async def test_store_failure_is_5xx_and_leaves_nothing_half_stored(didchat_server):
    db = didchat_server.services.db
    async with db.write() as conn:  # the messages table goes away: the conversation insert succeeds, the message's fails
        await conn.execute(sa.text("ALTER TABLE messages RENAME TO messages_away"))
    status, text = await didchat_server.simulate_sms(text="will be retried", message_id="SM" + "d" * 32)
    assert status == 503 and "retry" in text
    async with db.write() as conn:
        await conn.execute(sa.text("ALTER TABLE messages_away RENAME TO messages"))
    assert await count(didchat_server, conversations) == 0 and await count(didchat_server, contacts) == 0
    status, _ = await didchat_server.simulate_sms(text="will be retried", message_id="SM" + "d" * 32)
    assert status == 200 and await count(didchat_server, messages) == 1


async def test_reconnect_and_sync_gets_exactly_the_missed_messages(didchat_server):
    alice = await didchat_server.connect("alice")
    await didchat_server.simulate_sms(text="before")
    [first] = await alice.wait_messages(1)
    await alice.disconnect()
    for i in range(5):
        status, _ = await didchat_server.simulate_sms(text=f"missed {i}")
        assert status == 200
    again = await didchat_server.connect("alice")
    answer = await again.call("sync", {"cursors": {str(first["conversation_id"]): first["seq"]}})
    assert answer["ok"]
    assert [m["text"] for m in answer["messages"]] == [f"missed {i}" for i in range(5)]
    assert [m["seq"] for m in answer["messages"]] == [2, 3, 4, 5, 6]
    [conv] = answer["conversations"]
    assert conv["last_seq"] == 6 and conv["unread"] == 6
    # In sync again with the new cursor: nothing more, no duplicates.
    answer = await again.call("sync", {"cursors": {str(first["conversation_id"]): 6}})
    assert answer["messages"] == []


async def test_sms_for_an_owner_who_is_offline_waits_and_arrives_when_they_are_ready(didchat_server):
    status, _ = await didchat_server.simulate_sms(text="while you were out")
    assert status == 200
    alice = await didchat_server.connect("alice")
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == "while you were out"
    assert await alice.call("presence", {"state": "not_ready"}) == {"ok": True, "state": "not_ready"}
    await didchat_server.simulate_sms(sender="+12125550188", text="new customer, agent not ready")
    await didchat_server.simulate_sms(text="same conversation goes on")
    await alice.wait_messages(2)
    assert [m["text"] for m in alice.messages] == ["while you were out", "same conversation goes on"]
    await alice.call("presence", {"state": "ready"})
    await alice.wait_messages(3)
    assert alice.messages[-1]["text"] == "new customer, agent not ready"


async def test_bad_token_is_refused(didchat_server):
    import pytest
    import socketio
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(didchat_server.url, namespaces=["/agent"], auth={"token": "nope"},
                             transports=["websocket"], wait_timeout=5)
    status, _ = await didchat_server.login("alice", "wrong-password")
    assert status == 401
