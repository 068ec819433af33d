"""Outbound: an agent's reply leaves from the right number, is retried, and its status comes back."""
from __future__ import annotations

import uuid

from tests.conftest import ALICE, CUSTOMER, MAIN, until


async def open_conversation(server, text="hello"):
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, text)
    [msg] = await alice.wait_messages(1)
    return alice, msg["conversation_id"]


def send(conversation_id, text, **extra):
    return {"conversation_id": conversation_id, "text": text, "client_id": str(uuid.uuid4()), **extra}


async def test_reply_leaves_from_the_personal_number_and_delivery_comes_back(didchat_server):
    alice, conv = await open_conversation(didchat_server)
    answer = await alice.call("send", send(conv, "Hi Carol, Alice here"))
    assert answer["ok"], answer
    assert answer["message"]["status"] == "queued" and answer["message"]["from"] == ALICE
    [request] = await didchat_server.twilio_api.wait_for_requests(1)
    assert request["From"] == ALICE and request["To"] == CUSTOMER and request["Body"] == "Hi Carol, Alice here"
    assert request["StatusCallback"].endswith("/webhooks/twilio/tw/status")
    sid = next(iter(didchat_server.twilio_api.messages))
    assert await didchat_server.twilio_api.send_status(sid, "delivered") == 200
    await until(lambda: any(s["status"] == "delivered" for s in alice.pushed("status")))
    [status] = [s for s in alice.pushed("status") if s["status"] == "delivered"]
    assert status["id"] == answer["message"]["id"] and status["conversation_id"] == conv


async def test_presenting_a_number_the_agent_may_not_use_is_refused(didchat_server):
    bob = await didchat_server.connect("bob")
    await didchat_server.simulate_sms(CUSTOMER, didchat_server.bob_number, "hi bob")
    [msg] = await bob.wait_messages(1)
    answer = await bob.call("send", send(msg["conversation_id"], "from main?", **{"from": MAIN}))
    assert answer["ok"] is False and answer["field"] == "from" and MAIN in answer["error"]
    answer = await bob.call("present", {"conversation_id": msg["conversation_id"], "number": ALICE})
    assert answer["ok"] is False and ALICE in answer["error"]
    assert didchat_server.twilio_api.requests == []


async def test_agent_presents_an_allowed_callback_number(didchat_server):
    alice, conv = await open_conversation(didchat_server)
    answer = await alice.call("present", {"conversation_id": conv, "number": MAIN})
    assert answer["ok"] and answer["conversation"]["presented_number"] == MAIN
    assert (await alice.call("send", send(conv, "from the main line")))["ok"]
    [request] = await didchat_server.twilio_api.wait_for_requests(1)
    assert request["From"] == MAIN
    sync = await alice.call("sync", {})
    assert {n["number"] for n in sync["numbers"]} == {ALICE, MAIN}


async def test_a_retried_send_is_stored_once(didchat_server):
    alice, conv = await open_conversation(didchat_server)
    payload = send(conv, "only once")
    first, second = await alice.call("send", payload), await alice.call("send", payload)
    assert first["message"]["id"] == second["message"]["id"]
    await didchat_server.twilio_api.wait_for_requests(1)
    sync = await alice.call("sync", {})
    assert [m["text"] for m in sync["messages"] if m["direction"] == "out"] == ["only once"]


async def test_provider_5xx_is_retried_in_order(didchat_server):
    alice, conv = await open_conversation(didchat_server)
    didchat_server.twilio_api.fail_next(2, status=500)
    for text in ("one", "two", "three"):
        assert (await alice.call("send", send(conv, text)))["ok"]
    requests = await didchat_server.twilio_api.wait_for_requests(5, timeout=10)
    assert [r["Body"] for r in requests] == ["one", "one", "one", "two", "three"]  # two 500s, then in order
    created = didchat_server.twilio_api.messages.values()
    assert [m["body"] for m in created] == ["one", "two", "three"]


async def test_permanent_provider_error_fails_the_message_with_the_providers_words(didchat_server):
    alice, conv = await open_conversation(didchat_server)
    didchat_server.twilio_api.reject_next(1, code=21610, message="Attempt to send to unsubscribed recipient")
    answer = await alice.call("send", send(conv, "are you there?"))
    await until(lambda: any(s["status"] == "failed" for s in alice.pushed("status")))
    [failed] = [s for s in alice.pushed("status") if s["status"] == "failed"]
    assert failed["id"] == answer["message"]["id"]
    assert "21610" in failed["error"] and "unsubscribed" in failed["error"]


async def test_agent_starts_a_new_conversation(didchat_server):
    alice = await didchat_server.connect("alice")
    answer = await alice.call("send", {"to": "+1 (212) 555-0177", "text": "Hello from Alice", "client_id": "c1"})
    assert answer["ok"], answer
    assert answer["conversation"]["contact"]["number"] == "+12125550177"
    [request] = await didchat_server.twilio_api.wait_for_requests(1)
    assert request["From"] == ALICE and request["To"] == "+12125550177"
    # The customer's answer lands in the same conversation.
    await didchat_server.simulate_sms("+12125550177", ALICE, "Hi Alice")
    await until(lambda: any(m["text"] == "Hi Alice" for m in alice.messages))
    reply = next(m for m in alice.messages if m["text"] == "Hi Alice")
    assert reply["conversation_id"] == answer["conversation"]["id"] and reply["seq"] == 2


async def test_bad_sends_are_refused_with_the_field(didchat_server):
    alice, conv = await open_conversation(didchat_server)
    bad_number = await alice.call("send", {"to": "12345", "text": "x", "client_id": "c2"})
    assert bad_number["ok"] is False and bad_number["field"] == "to"
    empty = await alice.call("send", send(conv, ""))
    assert empty["ok"] is False and empty["field"] == "text"
    huge = await alice.call("send", send(conv, "€" * 1600))
    assert huge["ok"] is False and huge["field"] == "text"
    bob = await didchat_server.connect("bob")
    not_his = await bob.call("send", send(conv, "sneaky"))
    assert not_his["ok"] is False and not_his["field"] == "conversation_id"


async def test_many_replies_across_many_conversations_are_each_sent_exactly_once(didchat_server):
    alice = await didchat_server.connect("alice")
    customers = [f"+1212555{2000 + i:04d}" for i in range(30)]
    for number in customers:
        await didchat_server.simulate_sms(number, ALICE, "hi")
    await alice.wait_messages(30)
    conversations = [m["conversation_id"] for m in alice.messages]
    for round_ in range(5):
        for conv in conversations:
            assert (await alice.call("send", send(conv, f"reply {round_} to {conv}")))["ok"]
    await didchat_server.twilio_api.wait_for_requests(150, timeout=30)
    await until(lambda: len(didchat_server.twilio_api.messages) >= 150, timeout=10)
    bodies = [m["body"] for m in didchat_server.twilio_api.messages.values()]
    assert len(bodies) == len(set(bodies)) == 150
    for conv in conversations:  # and in order within each conversation
        mine = [b for b in bodies if b.endswith(f" to {conv}")]
        assert mine == [f"reply {r} to {conv}" for r in range(5)]
