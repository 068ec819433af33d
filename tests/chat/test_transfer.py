"""Transfers (both databases): an agent hands a conversation to a colleague or a team with a note the
customer never sees; the colleague gets it live, the giver loses it and is told, the customer's
next text goes to the new holder, whose replies still come from the number the customer texted."""
from __future__ import annotations

from tests.chat.test_routes import routed  # noqa: F401 - the fixture
from tests.conftest import ALICE, CUSTOMER, until

TEAM = "\nteams:\n  support: [alice, bob]\n"


async def conversation_with(server, alice, text: str = "I need help") -> int:
    before = len(alice.messages)
    assert (await server.simulate_sms(CUSTOMER, ALICE, text))[0] == 200
    return (await alice.wait_messages(before + 1))[-1]["conversation_id"]


async def test_a_transfer_reaches_the_colleague_live_and_the_giver_is_told(make_server):
    server = await make_server()
    alice, bob = await server.connect("alice"), await server.connect("bob")
    cid = await conversation_with(server, alice)
    targets = (await alice.call("sync", {}))["transfer_targets"]
    assert {"name": "bob", "display_name": "Bob", "presence": "ready"} in targets["users"]
    assert all(u["name"] != "alice" for u in targets["users"])

    done = await alice.call("transfer", {"conversation_id": cid, "to": {"user": "bob"}, "note": "wants a refund"})
    assert done == {"ok": True, "to": "Bob", "waiting": False}
    await until(lambda: any(c["id"] == cid for c in bob.pushed("conversation")), what="bob gets the conversation")
    await until(lambda: any(m["direction"] == "note" for m in bob.messages), what="bob gets the transcript")
    transcript = bob.messages
    assert [m["text"] for m in transcript if m["direction"] == "in"] == ["I need help"]
    assert transcript[-1]["direction"] == "note" and transcript[-1]["text"] == "Transferred by Alice to Bob: wants a refund"
    await until(lambda: alice.pushed("unassigned"), what="alice is told")
    assert alice.pushed("unassigned")[-1] == {"conversation_id": cid, "reason": "transferred", "to": "Bob"}

    late = await alice.call("send", {"conversation_id": cid, "text": "still here", "client_id": "late-1"})
    assert late["ok"] is False and late["field"] == "conversation_id"
    assert [c["id"] for c in (await alice.call("sync", {}))["conversations"]] == []
    assert [c["id"] for c in (await bob.call("sync", {}))["conversations"]] == [cid]

    before = len(bob.messages)
    assert (await server.simulate_sms(CUSTOMER, ALICE, "any news?"))[0] == 200
    [msg] = (await bob.wait_messages(before + 1))[before:]
    assert msg["conversation_id"] == cid and msg["text"] == "any news?"
    sent = await bob.call("send", {"conversation_id": cid, "text": "refund on its way", "client_id": "bob-1"})
    assert sent["ok"], sent
    [request] = await server.twilio_api.wait_for_requests(1, timeout=10)
    assert request["From"] == ALICE and request["To"] == CUSTOMER  # the number the customer texted
    assert [r["Body"] for r in server.twilio_api.requests] == ["refund on its way"]  # the note was never sent


async def test_a_transfer_to_someone_away_waits_for_them(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    cid = await conversation_with(server, alice)
    done = await alice.call("transfer", {"conversation_id": cid, "to": {"user": "bob"}})
    assert done == {"ok": True, "to": "Bob", "waiting": True}
    bob = await server.connect("bob")
    await until(lambda: any(c["id"] == cid for c in bob.pushed("conversation")), what="bob gets it once ready")


async def test_a_transfer_to_a_team_goes_to_a_ready_member_other_than_the_giver(make_server):
    server = await make_server(extra=TEAM)
    alice, bob = await server.connect("alice"), await server.connect("bob")
    cid = await conversation_with(server, alice)
    done = await alice.call("transfer", {"conversation_id": cid, "to": {"team": "support"}, "note": "billing"})
    assert done == {"ok": True, "to": "team support", "waiting": False}
    await until(lambda: any(c["id"] == cid for c in bob.pushed("conversation")))
    assert (await alice.call("sync", {}))["transfer_targets"]["teams"] == ["support"]


async def test_bad_transfers_are_refused_naming_the_field(make_server):
    server = await make_server(extra=TEAM)
    alice, bob = await server.connect("alice"), await server.connect("bob")
    cid = await conversation_with(server, alice)
    cases = [
        ({"conversation_id": cid, "to": {"user": "nobody"}}, "to.user"),
        ({"conversation_id": cid, "to": {"user": "alice"}}, "to.user"),
        ({"conversation_id": cid, "to": {"team": "sales"}}, "to.team"),
        ({"conversation_id": cid, "to": {"user": "bob", "team": "support"}}, "to"),
        ({"conversation_id": cid, "to": {}}, "to"),
        ({"conversation_id": cid, "to": {"user": "bob"}, "note": "x" * 1001}, "note"),
    ]
    for payload, field in cases:
        answer = await alice.call("transfer", payload)
        assert answer["ok"] is False and answer["field"] == field, (payload, answer)
    foreign = await bob.call("transfer", {"conversation_id": cid, "to": {"user": "alice"}})
    assert foreign["ok"] is False and foreign["field"] == "conversation_id"
    assert (await alice.call("close", {"conversation_id": cid}))["ok"]
    closed = await alice.call("transfer", {"conversation_id": cid, "to": {"user": "bob"}})
    assert closed["ok"] is False and "closed" in closed["error"]


async def test_a_transfer_to_someone_away_follows_their_own_away_policy(routed):  # noqa: F811
    from tests.conftest import BOB

    # Bob's own number says: when he is offline, forward to Ada. Alice's number has no policy.
    server = await routed(lambda text: text.replace(f'{{number: "{BOB}", user: bob}}',
                                                    f'{{number: "{BOB}", user: bob, away: {{offline: {{action: forward, '
                                                    f'to: {{user: ada}}}}}}}}'))
    alice, ada = await server.connect("alice"), await server.connect("ada")
    cid = await conversation_with(server, alice)
    done = await alice.call("transfer", {"conversation_id": cid, "to": {"user": "bob"}})
    assert done == {"ok": True, "to": "Bob", "waiting": True}
    await until(lambda: any(c["id"] == cid for c in ada.pushed("conversation")), what="bob's policy forwards it to ada")
    await until(lambda: any(m["direction"] == "note" and "Bob is offline" in m["text"] for m in ada.messages))
    assert (await server.simulate_sms(CUSTOMER, ALICE, "hello?"))[0] == 200
    await until(lambda: any(m["text"] == "hello?" for m in ada.messages), what="the customer's next text goes to ada")
