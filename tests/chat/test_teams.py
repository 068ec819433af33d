"""Team distribution (both databases): round robin, least busy and offer-to-all on a team's number,
each member's capacity, the queue's order, position and waiting time."""
from __future__ import annotations

import asyncio

from tests.chat.test_routes import routed  # noqa: F401 - the fixture
from tests.conftest import MAIN, until

SHARED = f'{{number: "{MAIN}", voice: false}}'  # the shared number's line in tests/conftest.py


def team(distribution: str, capacity: str = "", members: str = "alice, bob"):
    """An edit of the test configuration: the shared number's new conversations go to team `support`."""
    cap = f", capacity: {capacity}" if capacity else ""
    return (f"\nteams:\n  support: {{members: [{members}], distribution: {distribution}{cap}}}\n",
            lambda text: text.replace(SHARED, f'{{number: "{MAIN}", voice: false, team: support}}'))


async def start(make, distribution: str, capacity: str = ""):
    extra, edit = team(distribution, capacity)
    return await make(edit, extra)


def customer(i: int) -> str:
    return f"+1646555{i:04d}"


def holders(*clients) -> list[int]:
    return [len({c["id"] for c in client.pushed("conversation")}) for client in clients]


async def test_round_robin_deals_six_new_conversations_three_and_three(routed):  # noqa: F811
    server = await start(routed, "round_robin")
    alice, bob = await server.connect("alice"), await server.connect("bob")
    for i in range(6):
        assert (await server.simulate_sms(customer(i), MAIN, f"hello {i}"))[0] == 200
    await until(lambda: sum(holders(alice, bob)) == 6, what="six conversations dealt")
    assert holders(alice, bob) == [3, 3]
    firsts = [m["text"] for m in alice.messages], [m["text"] for m in bob.messages]
    assert firsts == (["hello 0", "hello 2", "hello 4"], ["hello 1", "hello 3", "hello 5"])


async def test_with_capacity_two_the_fifth_and_sixth_wait_and_are_offered_when_one_closes(routed):  # noqa: F811
    server = await start(routed, "round_robin", capacity="2")
    alice, bob = await server.connect("alice"), await server.connect("bob")
    for i in range(6):
        assert (await server.simulate_sms(customer(i), MAIN, f"hello {i}"))[0] == 200
    await until(lambda: sum(holders(alice, bob)) == 4, what="four conversations dealt")
    await asyncio.sleep(0.3)  # the fifth and sixth would be pushed by now
    assert holders(alice, bob) == [2, 2]
    queue = (await alice.call("sync", {}))["queue"]
    assert [(q["contact"]["number"], q["position"]) for q in queue] == [(customer(4), 1), (customer(5), 2)]
    assert all(q["queue"] == "support" and q["waiting_seconds"] >= 0 for q in queue)

    first = alice.pushed("conversation")[0]["id"]
    assert (await alice.call("close", {"conversation_id": first}))["ok"]
    await until(lambda: any(m["text"] == "hello 4" for m in alice.messages), what="the oldest waiting offered")
    await asyncio.sleep(0.3)
    assert not any(m["text"] == "hello 5" for m in alice.messages + bob.messages)  # still no room for it
    assert [q["contact"]["number"] for q in (await bob.call("sync", {}))["queue"]] == [customer(5)]


async def test_least_busy_gives_the_new_conversation_to_whoever_has_fewer_open(routed):  # noqa: F811
    server = await start(routed, "least_busy")
    alice = await server.connect("alice")
    for i in range(2):
        assert (await server.simulate_sms(customer(i), MAIN, f"early {i}"))[0] == 200
    await until(lambda: holders(alice) == [2])
    bob = await server.connect("bob")
    for i in range(2, 4):
        assert (await server.simulate_sms(customer(i), MAIN, f"later {i}"))[0] == 200
    await until(lambda: holders(bob) == [2], what="bob, with fewer open, takes both")
    assert holders(alice) == [2]


async def test_offer_all_waits_in_the_queue_until_the_first_claims_it(routed):  # noqa: F811
    server = await start(routed, "offer_all")
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(customer(1), MAIN, "who is there?"))[0] == 200
    async def queued() -> list[dict]:
        return (await alice.call("sync", {}))["queue"]
    async with asyncio.timeout(5):
        while not await queued():
            await asyncio.sleep(0.05)
    [queued] = await queued()
    assert [q["id"] for q in (await bob.call("sync", {}))["queue"]] == [queued["id"]]
    assert holders(alice, bob) == [0, 0]
    taken, late = await asyncio.gather(alice.call("claim", {"conversation_id": queued["id"]}),
                                       bob.call("claim", {"conversation_id": queued["id"]}))
    assert [taken["ok"], late["ok"]].count(True) == 1
    winner = alice if taken["ok"] else bob
    await until(lambda: any(m["text"] == "who is there?" for m in winner.messages))
    assert (await alice.call("sync", {}))["queue"] == []


TRIAGE = """\
    name: triage
    on:
      conversation_started:
        - route: {team: support}
"""


async def test_a_scenarios_route_to_a_team_is_dealt_by_the_teams_rule(routed, tmp_path):  # noqa: F811
    from tests.chat.test_scenarios_live import write

    extra, _ = team("round_robin")
    server = await routed(lambda text: text.replace(SHARED, f'{{number: "{MAIN}", voice: false, scenario: triage}}'),
                          extra + write(tmp_path, "triage", TRIAGE))
    alice, bob = await server.connect("alice"), await server.connect("bob")

    async def assigned(client) -> list[str]:
        return [c["contact"]["number"] for c in (await client.call("sync", {}))["conversations"] if c["state"] == "open"]

    for i in range(4):  # one at a time: the deal's order is the round robin's
        assert (await server.simulate_sms(customer(i), MAIN, f"hello {i}"))[0] == 200
        async with asyncio.timeout(10):
            while len(await assigned(alice)) + len(await assigned(bob)) < i + 1:
                await asyncio.sleep(0.05)
    assert sorted(await assigned(alice)) == [customer(0), customer(2)]  # not the first member taking all
    assert sorted(await assigned(bob)) == [customer(1), customer(3)]
    await until(lambda: {m["text"] for m in bob.messages} >= {"hello 1", "hello 3"}, what="bob has his conversations' messages")
    await until(lambda: {u["conversation_id"] for u in alice.pushed("unassigned")} >= {c["id"] for c in bob.pushed("conversation")},
                what="alice, who had them first (she may present the number), told they went to the team")
