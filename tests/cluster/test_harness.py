"""The cluster harness itself: two real nodes on one PostgreSQL database and Redis, each ready,
each taking logins and agents, each taking webhooks; a killed node comes back with start()."""
from __future__ import annotations

import json

from tests.cluster.conftest import get


async def test_two_nodes_start_answer_readyz_and_take_agents(make_cluster):
    cluster = await make_cluster(nodes=2)
    assert len({node.port for node in cluster.nodes}) == 2
    states = []
    for node in cluster.nodes:
        status, body = await get(f"{node.url}/readyz")
        assert status == 200 and json.loads(body)["ok"], body
        states.append(json.loads(body)["cluster"])
    assert [s["redis"] for s in states] == ["up", "up"]
    assert states[0]["other_nodes"] == [states[1]["node"]] and states[1]["other_nodes"] == [states[0]["node"]]
    alice, bob = await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("bob")
    assert alice.sio.connected and bob.sio.connected
    assert (await cluster.simulate_sms(node=1, text="to node B"))[0] in (200, 204)


async def test_a_killed_node_starts_again(make_cluster):
    cluster = await make_cluster(nodes=2)
    first = cluster.nodes[0]
    await first.kill()
    assert await get(f"{first.url}/readyz") is None
    assert (await get(f"{cluster.nodes[1].url}/readyz"))[0] == 200
    await first.start()
    assert (await first.connect("alice")).sio.connected
