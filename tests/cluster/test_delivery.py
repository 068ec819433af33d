"""Cross-node delivery with real processes on PostgreSQL and Redis: an SMS taken by one node reaches
the agent connected to another within a second, each once; no away reply is sent while the owner is
ready on another node; a SIGKILLed node's agents are offline within presence_ttl_seconds, and then
a new text to their number gets the away handling."""
from __future__ import annotations

import asyncio
import time

from tests.cluster.conftest import TEST_CLUSTER
from tests.conftest import ALICE, until

AWAY = "Alice is away; she will answer soon."
AWAY_SCENARIO = f', scenario: default, scenario_params: {{away_reply: "{AWAY}"}}'
BURST = 2000
IN_FLIGHT = 16  # webhooks posted at once (the nodes share this 2-core machine with the test)


def customer(i: int) -> str:
    return f"+1212555{2000 + i:04d}"


async def test_an_sms_to_node_b_reaches_alice_on_node_a_within_a_second_and_no_away_reply(make_cluster):
    cluster = await make_cluster(nodes=2, alice=AWAY_SCENARIO)
    alice = await cluster.nodes[0].connect("alice")
    lags = []
    for i in range(5):
        text = f"to B {i}"
        status, _ = await cluster.simulate_sms(node=1, sender=customer(i), text=text)
        assert status in (200, 204)
        answered = time.monotonic()
        await until(lambda: any(m["text"] == text for m in alice.messages), 1.0, "the push through node A")  # noqa: B023
        lags.append(time.monotonic() - answered)
    print(f"webhook answered by B -> pushed to alice on A: max {max(lags) * 1000:.0f} ms")
    assert len(alice.pushed("conversation")) == 5  # each new conversation is hers, live
    synced = await alice.call("sync", {})
    assert synced["ok"] and len(synced["conversations"]) == 5  # and in her sync: assigned to her, not waiting

    # The control: once she is gone, the same path does send the away reply; it is the only one.
    await cluster.nodes[0].stop()
    await cluster.simulate_sms(node=1, sender=customer(99), text="anyone?")
    [away] = await cluster.twilio_api.wait_for_requests(1, timeout=10)
    assert away["Body"] == AWAY and away["To"] == customer(99) and away["From"] == ALICE
    assert len(cluster.twilio_api.requests) == 1


async def test_2000_webhooks_alternating_between_nodes_are_each_pushed_once_to_every_tab(make_cluster):
    cluster = await make_cluster(nodes=2, alice=AWAY_SCENARIO)
    tabs = [await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("alice")]
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def post(i: int) -> int:
        async with gate:
            status, _ = await cluster.simulate_sms(node=i % 2, sender=customer(i % 50), text=f"burst {i}",
                                                   message_id=f"SM{i:032x}")
            return status

    started = time.monotonic()
    statuses = await asyncio.gather(*(post(i) for i in range(BURST)))
    posted = time.monotonic() - started
    assert set(statuses) <= {200, 204}
    await until(lambda: all(len(tab.messages) >= BURST for tab in tabs), 30, "every push")
    await asyncio.sleep(0)  # anything pushed twice would already be here: each push is one event per burst
    for tab in tabs:
        ids = [m["id"] for m in tab.messages]
        assert len(ids) == BURST and len(set(ids)) == BURST
        assert {m["text"] for m in tab.messages} == {f"burst {i}" for i in range(BURST)}
    assert not cluster.twilio_api.requests  # she was ready all along: no away reply
    assert all(max(tab.bursts, default=0) > 1 for tab in tabs)  # bursts still go out as one event, over Redis too
    print(f"{BURST} webhooks over two nodes in {posted:.1f} s, every one pushed to both tabs once; "
          f"largest bursts {[max(tab.bursts) for tab in tabs]}")


async def test_a_killed_nodes_agents_are_offline_within_the_presence_ttl(make_cluster):
    cluster = await make_cluster(nodes=2, alice=AWAY_SCENARIO)
    await cluster.nodes[0].connect("alice")
    survivor = cluster.nodes[1]
    status, _ = await cluster.simulate_sms(node=1, sender=customer(0), text="before")
    assert status in (200, 204)

    await cluster.nodes[0].kill()
    killed = time.monotonic()
    sent = 0
    while not cluster.twilio_api.requests:  # a new conversation every 0.2 s until one gets the away reply
        assert time.monotonic() - killed < 15, f"no away reply 15 s after the kill\n{survivor.log_tail()}"
        sent += 1
        await cluster.simulate_sms(node=1, sender=customer(sent), text=f"after {sent}")
        await asyncio.sleep(0.2)
    replies = await cluster.twilio_api.wait_for_requests(1)  # two texts in flight may both get it: each once
    offline_after = time.monotonic() - killed
    assert all(r["Body"] == AWAY and r["To"] != customer(0) for r in replies), replies
    assert len({r["To"] for r in replies}) == len(replies)
    # Offline once her node's last heartbeat is presence_ttl_seconds old, plus a poll and the scenario's turn.
    assert offline_after <= TEST_CLUSTER["presence_ttl_seconds"] + 1.5, offline_after
    print(f"SIGKILL -> away reply for a new conversation: {offline_after:.1f} s (presence_ttl_seconds "
          f"{TEST_CLUSTER['presence_ttl_seconds']})")


async def test_waiting_conversations_are_offered_once_when_she_becomes_ready_on_another_node(make_cluster):
    cluster = await make_cluster(nodes=2)
    here, there = await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("alice")
    assert (await here.call("presence", {"state": "not_ready"}))["ok"]
    await until(lambda: there.pushed("presence") == [{"state": "not_ready"}], 1.0, "her other tab told")
    for i in range(3):  # through the node she did not choose on: it must know she is not ready
        assert (await cluster.simulate_sms(node=1, sender=customer(i), text=f"waiting {i}"))[0] in (200, 204)
    synced = await there.call("sync", {})
    assert synced["conversations"] == [] and here.messages == [] == there.messages  # they wait for her

    assert (await here.call("presence", {"state": "ready"}))["ok"]
    for tab in (here, there):
        await until(lambda: len(tab.messages) >= 3, 1.0, "the waiting conversations pushed")  # noqa: B023
    await asyncio.sleep(0.2)  # a second offer (from the other node) would push them again by now
    for tab in (here, there):
        assert sorted(m["text"] for m in tab.messages) == [f"waiting {i}" for i in range(3)]
        assert len(tab.pushed("conversation")) == 3


async def test_a_node_that_stops_tells_only_its_own_agents(make_cluster):
    cluster = await make_cluster(nodes=2)
    await cluster.nodes[0].connect("alice")
    bob = await cluster.nodes[1].connect("bob")
    await cluster.nodes[0].stop()
    assert (await bob.call("sync", {}))["ok"]  # answered after anything pushed before it
    assert bob.pushed("server_restarting") == []
