"""Away policies per access number (both databases): a conversation under way whose agent goes
offline is forwarded to the backup at the customer's next text, and the agent is told; an auto-reply
goes out once per conversation per period; not ready and offline have policies of their own."""
from __future__ import annotations

import asyncio

import pytest

from scenarios import SourceError
from tests.conftest import ALICE, CUSTOMER, until

FORWARD = ", away: {offline: {action: forward, to: {user: bob}}}"
AUTO = (', away: {not_ready: {action: auto_reply, text: "Alice is busy, back soon", every_seconds: 3600}, '
        'offline: {action: forward, to: {user: bob}}}')


async def test_the_owner_goes_offline_mid_conversation_and_the_next_text_reaches_the_backup(make_server):
    server = await make_server(alice=FORWARD)
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "first"))[0] == 200
    [first] = await alice.wait_messages(1)
    cid = first["conversation_id"]
    await alice.disconnect()  # presence_grace_seconds is 0 in the tests: offline at once

    assert (await server.simulate_sms(CUSTOMER, ALICE, "hello? anyone?"))[0] == 200
    await until(lambda: any(m["text"] == "hello? anyone?" for m in bob.messages), 1.0, "the backup gets it within 1 s")
    await until(lambda: any(m["direction"] == "note" and "forwarded to Bob" in m["text"] for m in bob.messages),
                2.0, "the note saying why")  # the transcript's messages come one by one
    assert [m["text"] for m in bob.messages if m["direction"] == "in"] == ["first", "hello? anyone?"]
    assert any(c["id"] == cid for c in bob.pushed("conversation"))
    alice = await server.connect("alice")
    assert [c["id"] for c in (await alice.call("sync", {}))["conversations"]] == []
    sent = await bob.call("send", {"conversation_id": cid, "text": "Bob here", "client_id": "bob-away-1"})
    assert sent["ok"], sent


async def test_the_owner_online_elsewhere_is_told_when_it_is_forwarded(make_server):
    server = await make_server(alice=", away: {not_ready: {action: forward, to: {user: bob}}}")
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "first"))[0] == 200
    [first] = await alice.wait_messages(1)
    assert (await alice.call("presence", {"state": "not_ready"}))["ok"]
    assert (await server.simulate_sms(CUSTOMER, ALICE, "second"))[0] == 200
    await until(lambda: alice.pushed("unassigned"), 2.0, "alice told")
    assert alice.pushed("unassigned")[-1] == {"conversation_id": first["conversation_id"], "reason": "away", "to": "Bob"}
    await until(lambda: any(m["text"] == "second" for m in bob.messages), 2.0)


async def test_an_auto_reply_goes_once_per_period_while_not_ready(make_server):
    server = await make_server(alice=AUTO)
    alice = await server.connect("alice")
    assert (await alice.call("presence", {"state": "not_ready"}))["ok"]
    for text in ("one", "two", "three"):
        assert (await server.simulate_sms(CUSTOMER, ALICE, text))[0] == 200
    [reply] = await server.twilio_api.wait_for_requests(1, timeout=10)
    assert reply["Body"] == "Alice is busy, back soon" and reply["To"] == CUSTOMER and reply["From"] == ALICE
    await asyncio.sleep(0.5)  # a second auto-reply would be out by now
    assert len(server.twilio_api.requests) == 1


async def test_a_policy_naming_an_unknown_user_is_refused_with_its_line(make_server):
    with pytest.raises(SourceError) as err:
        await make_server(alice=", away: {offline: {action: forward, to: {user: nobody}}}", start=False)
    assert "access_numbers[0].away.offline.to.user: no user named 'nobody'" in str(err.value)
    assert ".yaml:12:" in str(err.value)


async def test_a_hold_escalates_to_the_backup_when_the_owner_stays_away(make_server):
    server = await make_server(alice=", away: {offline: {action: hold, escalate_after_seconds: 1, to: {user: bob}}}")
    bob = await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "urgent"))[0] == 200
    await asyncio.sleep(0.3)
    assert bob.messages == []  # held for alice first
    await until(lambda: any(m["text"] == "urgent" for m in bob.messages), 5.0, "escalated to bob")
    await until(lambda: any(m["direction"] == "note" and "Alice still away after 1 s" in m["text"] for m in bob.messages),
                2.0, "the note saying why")


async def test_no_agent_reply_in_time_reassigns_and_a_reply_in_time_keeps_it(make_server):
    server = await make_server(alice=", away: {reassign_after_seconds: 1, reassign_to: {user: bob}}")
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "answered"))[0] == 200
    [first] = await alice.wait_messages(1)
    assert (await alice.call("send", {"conversation_id": first["conversation_id"], "text": "right away",
                                      "client_id": "fast-1"}))["ok"]
    await asyncio.sleep(1.8)
    assert not alice.pushed("unassigned") and bob.messages == []

    assert (await server.simulate_sms("+12125550177", ALICE, "ignored"))[0] == 200
    await until(lambda: any(m["text"] == "ignored" for m in bob.messages), 5.0, "reassigned to bob")
    await until(lambda: any(m["direction"] == "note" and "no reply from Alice in 1 s" in m["text"] for m in bob.messages),
                2.0, "the note saying why")
    await until(lambda: alice.pushed("unassigned"), 2.0, "alice told")
    assert alice.pushed("unassigned")[-1]["reason"] == "away"


HOLDING = """\
    name: holding
    on:
      agent_unavailable:
        - reply: "Alice is away; she will text you back."
"""


async def test_a_scenario_that_handles_agent_unavailable_overrides_the_numbers_policy(make_server, tmp_path):
    from tests.chat.test_scenarios_live import write

    server = await make_server(extra=write(tmp_path, "holding", HOLDING), alice=FORWARD + ", scenario: holding")
    bob = await server.connect("bob")  # alice is offline; the number's policy would forward to bob
    assert (await server.simulate_sms(CUSTOMER, ALICE, "hello"))[0] == 200
    [request] = await server.twilio_api.wait_for_requests(1, timeout=10)
    assert request["Body"] == "Alice is away; she will text you back."  # the scenario decided
    await asyncio.sleep(0.5)  # a forward would have reached bob by now
    assert not bob.messages
    alice = await server.connect("alice")
    await until(lambda: any(m["text"] == "hello" for m in alice.messages), what="it waited for alice")
