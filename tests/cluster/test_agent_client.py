"""The agent client's live parts across nodes (real processes on PostgreSQL and Redis): a contact renamed
through node A is renamed within a second in every tab on node B, and found there by search; a canned reply
an admin adds through node A reaches, within a second, the tabs on node B of exactly the agents who may use
it; a send taken by node A and sent again by the tab's outbox through node B (its node died before the tab
saw the answer) is one message, sent to the customer once and shown once in every tab."""
from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from tests.chat.test_admin_api import Api
from tests.conftest import CUSTOMER, until

TEAMS = "teams: {support: [alice], sales: [bob]}\n"
CANNED = "/api/v1/canned-replies"


async def first_conversation(cluster, tab, text: str = "hello") -> int:
    """The conversation of CUSTOMER's text to alice, posted through node B, as `tab` was pushed it."""
    assert (await cluster.simulate_sms(node=1, sender=CUSTOMER, text=text))[0] in (200, 204)
    [msg] = await tab.wait_messages(1)
    return msg["conversation_id"]


async def recorded(cluster, message_id: int, timeout: float = 5.0) -> None:
    """Wait until the provider's answer to the send of `message_id` is in the store (its provider id kept)."""
    db = await asyncpg.connect(cluster.database_url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=5)
    try:
        async with asyncio.timeout(timeout):
            while not await db.fetchval("SELECT count(*) FROM provider_refs WHERE message_id = $1", message_id):
                await asyncio.sleep(0.02)
    finally:
        await db.close()


async def test_a_contact_renamed_on_node_a_is_renamed_in_her_tabs_on_node_b_within_a_second(make_cluster):
    cluster = await make_cluster(nodes=2)
    here, there = await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("alice")
    cid = await first_conversation(cluster, here)
    await there.wait_messages(1)

    renamed = await here.call("contact_rename", {"conversation_id": cid, "name": "Zoë Quist"})
    assert renamed["ok"] and renamed["contact"] == {"number": CUSTOMER, "name": "Zoë Quist"}
    started = time.monotonic()
    await until(lambda: there.pushed("contact"), 1.0, "the rename pushed to her tab on node B")
    print(f"rename on A -> pushed on B: {(time.monotonic() - started) * 1000:.0f} ms")
    assert there.pushed("contact") == here.pushed("contact") == [{"number": CUSTOMER, "name": "Zoë Quist"}]

    [conv] = (await there.call("sync", {}))["conversations"]
    assert conv["contact"]["name"] == "Zoë Quist"
    found = await there.call("search", {"q": "quist"})
    assert found["ok"] and [c["id"] for c in found["conversations"]] == [cid], found


async def test_a_canned_reply_added_on_node_a_reaches_on_node_b_only_the_agents_who_may_use_it(make_cluster):
    cluster = await make_cluster(nodes=2, extra=TEAMS)
    a, b = cluster.nodes
    alice, bob = await b.connect("alice"), await b.connect("bob")
    status, body = await a.login("ada")
    assert status == 200, body
    admin = Api(a, body["token"])

    status, reply, _ = await admin("POST", CANNED, {"scope": "team", "team": "support", "shortcut": "refund",
                                                    "text": "Refunds take 5 days, {contact.name}."})
    assert status == 201, reply
    await until(lambda: alice.pushed("canned_changed"), 1.0, "the support team's reply pushed to alice on node B")
    listed = await alice.call("canned")
    assert [(r["shortcut"], r["team"]) for r in listed["replies"]] == [("refund", "support")]

    status, reply, _ = await admin("POST", CANNED, {"scope": "global", "shortcut": "bye", "text": "Goodbye!"})
    assert status == 201, reply
    await until(lambda: bob.pushed("canned_changed") and len(alice.pushed("canned_changed")) == 2, 1.0,
                "the global reply pushed to both on node B")
    assert len(bob.pushed("canned_changed")) == 1  # the support team's reply was none of his business
    assert [r["shortcut"] for r in (await bob.call("canned"))["replies"]] == ["bye"]

    # An agent's own reply, saved through node B, reaches her tab on node A; nobody else's.
    mine = await a.connect("alice")
    assert (await alice.call("canned_save", {"shortcut": "hi", "text": "Hi, Alice here."}))["ok"]
    await until(lambda: mine.pushed("canned_changed"), 1.0, "her own reply pushed to her tab on node A")
    assert len(bob.pushed("canned_changed")) == 1
    assert [r["shortcut"] for r in (await mine.call("canned"))["replies"]] == ["bye", "hi", "refund"]


async def test_a_send_sent_again_through_node_b_after_node_a_died_is_one_message_sent_once(make_cluster):
    cluster = await make_cluster(nodes=2)
    a, b = cluster.nodes
    tab, other = await a.connect("alice"), await b.connect("alice")
    cid = await first_conversation(cluster, tab)
    payload = {"conversation_id": cid, "text": "on its way", "client_id": str(uuid.uuid4())}

    first = await tab.call("send", payload)
    assert first["ok"], first
    await cluster.twilio_api.wait_for_requests(1, timeout=10)  # node A handed it to the provider, and recorded it
    await recorded(cluster, first["message"]["id"])
    await a.kill()  # ...and died: the tab never saw its answer, so its outbox sends the item again, through B
    again = await (await b.connect("alice")).call("send", payload)
    assert again["ok"] and again["message"]["id"] == first["message"]["id"], again

    await until(lambda: any(m["direction"] == "out" for m in other.messages), 2.0, "the reply shown in the tab on B")
    await asyncio.sleep(1.0)  # a second send (or push) of the same item would be here by now
    assert [r["Body"] for r in cluster.twilio_api.requests] == ["on its way"]
    outs = [m for m in other.messages if m["direction"] == "out"]
    assert [(m["id"], m["client_id"]) for m in outs] == [(first["message"]["id"], payload["client_id"])]
    synced = await other.call("sync", {})
    assert [m["text"] for m in synced["messages"] if m["direction"] == "out"] == ["on its way"]
