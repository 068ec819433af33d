"""Transfers and lifecycle deadlines across nodes (real processes on PostgreSQL and Redis): a transfer
on node A reaches the colleague connected to node B live and tells the giver; an idle conversation is
closed once, though both nodes see it due; a supervisor on node B monitors, live, a conversation
whose agent and customer are on node A."""
from __future__ import annotations

import asyncio

from tests.conftest import CUSTOMER, until


async def test_a_transfer_on_node_a_reaches_the_colleague_on_node_b(make_cluster):
    cluster = await make_cluster(nodes=2)
    alice, bob = await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("bob")
    assert (await cluster.simulate_sms(node=1, sender=CUSTOMER, text="help me"))[0] in (200, 204)
    [msg] = await alice.wait_messages(1)
    done = await alice.call("transfer", {"conversation_id": msg["conversation_id"], "to": {"user": "bob"}, "note": "vip"})
    assert done == {"ok": True, "to": "Bob", "waiting": False}
    await until(lambda: any(m["direction"] == "note" for m in bob.messages), 2.0, "the transfer pushed through node B")
    assert [m["text"] for m in bob.messages] == ["help me", "Transferred by Alice to Bob: vip"]
    await until(lambda: alice.pushed("unassigned"), 2.0, "alice told")
    assert (await cluster.simulate_sms(node=0, sender=CUSTOMER, text="still there?"))[0] in (200, 204)
    await until(lambda: any(m["text"] == "still there?" for m in bob.messages), 2.0, "the next text goes to bob")
    assert not any(m["text"] == "still there?" for m in alice.messages)


async def test_an_idle_conversation_is_closed_once_with_two_nodes(make_cluster):
    cluster = await make_cluster(nodes=2, alice=", inactivity_close_seconds: 1")
    tabs = [await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("alice")]
    assert (await cluster.simulate_sms(node=0, sender=CUSTOMER, text="hi"))[0] in (200, 204)
    [msg] = await tabs[0].wait_messages(1)
    cid = msg["conversation_id"]

    def closings(tab) -> list[dict]:
        return [c for c in tab.pushed("conversation") if c["id"] == cid and c["state"] == "closed"]
    await until(lambda: all(closings(tab) for tab in tabs), 10.0, "the idle conversation closed on both tabs")
    await asyncio.sleep(1.5)  # a second closing (by the other node) would be pushed by now
    assert [len(closings(tab)) for tab in tabs] == [1, 1]
    assert closings(tabs[0])[0]["outcome"] == "inactive"


async def test_a_reassignment_deadline_fires_once_with_two_nodes(make_cluster):
    cluster = await make_cluster(nodes=2, alice=", away: {reassign_after_seconds: 1, reassign_to: {user: bob}}")
    alice = await cluster.nodes[0].connect("alice")
    bobs = [await cluster.nodes[0].connect("bob"), await cluster.nodes[1].connect("bob")]
    assert (await cluster.simulate_sms(node=1, sender=CUSTOMER, text="anyone?"))[0] in (200, 204)
    [msg] = await alice.wait_messages(1)
    cid = msg["conversation_id"]

    def notes(tab) -> list[dict]:
        return [m for m in tab.messages if m["direction"] == "note" and m["conversation_id"] == cid]
    await until(lambda: all(notes(tab) for tab in bobs), 10.0, "reassigned to bob, on both his tabs")
    await asyncio.sleep(2.0)  # a second firing (by the other node) would be pushed by now
    assert [len(notes(tab)) for tab in bobs] == [1, 1]
    assert len(alice.pushed("unassigned")) == 1


async def test_a_supervisor_on_node_b_monitors_live_a_conversation_on_node_a(make_cluster):
    cluster = await make_cluster(nodes=2)
    alice, ada = await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("ada")  # ada: an admin
    assert (await cluster.simulate_sms(node=0, sender=CUSTOMER, text="first"))[0] in (200, 204)
    [msg] = await alice.wait_messages(1)
    cid = msg["conversation_id"]
    watched = await ada.call("monitor", {"conversation_id": cid})
    assert [m["text"] for m in watched["messages"]] == ["first"]

    def copies() -> list[str]:
        return [p["payload"].get("text") for p in ada.pushed("monitored") if p["event"] == "message"]
    assert (await cluster.simulate_sms(node=0, sender=CUSTOMER, text="second"))[0] in (200, 204)
    assert (await alice.call("send", {"conversation_id": cid, "text": "on it", "client_id": "mon-1"}))["ok"]
    await until(lambda: copies() == ["second", "on it"], 5.0, "the conversation, live, through node B")
    assert not ada.messages  # a copy: not her conversation
