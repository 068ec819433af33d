"""Every row of work claimed once across two real nodes (PostgreSQL + Redis), and one scenario
execution per conversation: sends during a provider outage go out once each, in order per
conversation, over an SMS API and over SMPP (only the node holding the bind submits); scenario
waits and timers fire once, each SMS once, and an answer reaching the other node resumes the
wait; a node SIGKILLed while it holds claims loses them to the other.

Outage lengths here are shorter than in issue 9 (30 s): the outage lasts while the replies are
queued and a few seconds more, long enough for every head to be tried and backed off on both
nodes many times; what is asserted does not depend on its length.
"""
from __future__ import annotations

import asyncio
import textwrap
import time
from collections import Counter, defaultdict

import pytest

from tests.conftest import ALICE, BOB, SMPP_NUMBER, smpp_connector, until
from tests.fakes.smsc import TestSmsc

pytestmark = pytest.mark.postgres

CUSTOMERS = [f"+1212555{300 + i:04d}" for i in range(50)]
# Retries every 0.05-0.5 s, and never given up during the outage.
RETRY_FOREVER = ("outbox: {backoff_seconds: 0.05, backoff_max_seconds: 0.2, max_attempts: 4}",
                 "outbox: {backoff_seconds: 0.05, backoff_max_seconds: 0.5, max_attempts: 100000}")


async def started(make_cluster, **options):
    """Two nodes whose outbox retries for as long as an outage lasts."""
    cluster = await make_cluster(nodes=2, start=False, **options)
    text = cluster.config_path.read_text()
    assert RETRY_FOREVER[0] in text
    cluster.config_path.write_text(text.replace(*RETRY_FOREVER))
    await asyncio.gather(*(node.start(wait=False) for node in cluster.nodes))
    for node in cluster.nodes:
        await node.ready()
    return cluster


async def open_conversations(cluster, clients, pairs) -> dict[str, int]:
    """(customer, our number) pairs texted in through alternate nodes; conversation id by customer."""
    for i, (customer, number) in enumerate(pairs):
        status, _ = await cluster.simulate_sms(node=i % 2, sender=customer, to=number, text=f"hello from {customer}")
        assert status in (200, 204)

    def seen() -> dict[str, int]:
        return {m["from"]: m["conversation_id"] for c in clients for m in c.messages if m["direction"] == "in"}

    await until(lambda: len(seen()) == len(pairs), timeout=20)
    return seen()


def created(cluster) -> list[dict]:
    """The messages the provider took (each successful request once), in the order it took them."""
    return list(cluster.twilio_api.messages.values())


async def settled(cluster, n: int, timeout: float) -> list[dict]:
    """Wait for `n` messages taken, then a while longer: a duplicate would show up meanwhile."""
    await until(lambda: len(created(cluster)) >= n, timeout=timeout)
    await asyncio.sleep(2.0)  # claim_seconds is 3: a second send of a row would be on its way by now
    return created(cluster)


async def test_replies_from_both_nodes_during_an_outage_go_out_once_each_in_order(make_cluster):
    cluster = await started(make_cluster)
    clients = {(name, i): await cluster.nodes[i].connect(name) for name in ("alice", "bob") for i in (0, 1)}
    pairs = [(c, ALICE if i % 2 else BOB) for i, c in enumerate(CUSTOMERS)]  # 50 conversations, 10 replies each
    conversations = await open_conversations(cluster, list(clients.values()), pairs)
    cluster.twilio_api.outage()
    cluster.twilio_api.latency = 0.1  # a send takes a while, as a real provider's does: time for another node to try it too
    per_conversation = 10

    async def reply(customer: str, agent: str) -> None:
        for n in range(per_conversation):  # one after another, each through the other node than the last
            answer = await clients[(agent, n % 2)].call("send", {
                "conversation_id": conversations[customer], "text": f"{customer} #{n}", "client_id": f"{customer}-{n}"})
            assert answer["ok"], answer

    began = time.monotonic()
    await asyncio.gather(*(reply(customer, "alice" if number == ALICE else "bob") for customer, number in pairs))
    await asyncio.sleep(3.0)  # the outage goes on: every head backs off and is retried, by either node
    failed = len(cluster.twilio_api.requests)
    outage = time.monotonic() - began
    cluster.twilio_api.recover()
    recovered = time.monotonic()
    await until(lambda: len(created(cluster)) >= 500, timeout=120)
    drained = time.monotonic() - recovered
    taken = await settled(cluster, 500, timeout=1)
    bodies = [m["body"] for m in taken]
    print(f"claims.outage seconds={outage:.1f} refused_requests={failed} drained_seconds={drained:.1f} taken={len(bodies)}")
    assert failed >= 2 * len(pairs), f"only {failed} requests during a {outage:.0f} s outage"
    assert len(bodies) == 500 and len(set(bodies)) == 500, Counter(bodies).most_common(3)
    by_customer = defaultdict(list)
    for message in taken:
        by_customer[message["to"]].append(message["body"])
    for customer, _ in pairs:
        assert by_customer[customer] == [f"{customer} #{n}" for n in range(per_conversation)]


CLOCKS = """\
    name: clocks
    on:
      conversation_started:
        - set_timer: follow_up
          after: 3s
        - reply: "Welcome"
        - wait_reply: answer
          timeout: 20s
          on_timeout:
            - reply: "No answer"
            - stop
        - reply: "Thanks"
      timer:
        follow_up:
          - reply: "Follow-up"
"""


async def test_waits_and_timers_fire_once_and_an_answer_on_the_other_node_resumes_the_wait(make_cluster, tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "clocks.yaml").write_text(textwrap.dedent(CLOCKS))
    extra = f'\nscenarios: {{directory: "{folder}", reload_seconds: 1}}\n'
    cluster = await started(make_cluster, extra=extra, alice=", scenario: clocks")
    customers = CUSTOMERS[:10]
    for i, customer in enumerate(customers):
        status, _ = await cluster.simulate_sms(node=i % 2, sender=customer, to=ALICE, text="hi")
        assert status in (200, 204)
    await until(lambda: sum(m["body"] == "Welcome" for m in created(cluster)) == 10, timeout=30)
    answered = customers[::2]
    for i, customer in enumerate(customers):
        if customer in answered:  # to the other node than the one that started the wait
            assert (await cluster.simulate_sms(node=1 - i % 2, sender=customer, to=ALICE, text="5"))[0] in (200, 204)
    taken = await settled(cluster, 30, timeout=60)  # the 20 s waits end meanwhile
    got = Counter((m["to"], m["body"]) for m in taken)
    for customer in customers:
        ending = "Thanks" if customer in answered else "No answer"
        expected = {(customer, "Welcome"): 1, (customer, ending): 1, (customer, "Follow-up"): 1}
        assert {k: v for k, v in got.items() if k[0] == customer} == expected, customer
    assert len(taken) == 30


async def test_a_node_killed_while_holding_claims_loses_them_to_the_other(make_cluster):
    cluster = await started(make_cluster)
    first, second = cluster.nodes
    alice = await first.connect("alice")
    pairs = [(c, ALICE) for c in CUSTOMERS[:5]]
    for customer, number in pairs:  # through the first node: she is seen there at once
        assert (await cluster.simulate_sms(node=0, sender=customer, to=number, text="hello"))[0] in (200, 204)
    await until(lambda: len({m["from"] for m in alice.messages}) == 5, timeout=20)
    conversations = {m["from"]: m["conversation_id"] for m in alice.messages}
    cluster.twilio_api.stall()  # the first node's sends hang, their claims held
    for n in range(2):
        for customer, _ in pairs:
            answer = await alice.call("send", {"conversation_id": conversations[customer], "text": f"{customer} #{n}",
                                               "client_id": f"{customer}-{n}"})
            assert answer["ok"], answer
    await until(lambda: len(cluster.twilio_api.requests) >= 5, timeout=20)  # each head claimed and on its way
    await first.kill()
    killed = time.monotonic()
    cluster.twilio_api.recover()  # the hung requests fail: the provider never took them
    taken = await settled(cluster, 10, timeout=30)
    took = time.monotonic() - killed
    assert sorted(m["body"] for m in taken) == sorted(f"{c} #{n}" for c, _ in pairs for n in range(2))
    for customer, _ in pairs:
        assert [m["body"] for m in taken if m["to"] == customer] == [f"{customer} #0", f"{customer} #1"]
    assert second.running and took < 30


@pytest.fixture
async def smsc():
    server = await TestSmsc("didchat", "secret", window=50, one_bind=True).start()
    yield server
    await server.stop()


async def test_smpp_replies_from_both_nodes_during_an_smsc_outage_are_each_submitted_once(make_cluster, smsc):
    cluster = await started(make_cluster, connectors=smpp_connector(smsc.port))
    await until(lambda: any(b.taken for b in smsc.bind_log), timeout=30)  # one node holds the bind
    clients = [await node.connect("alice") for node in cluster.nodes]
    customers = CUSTOMERS[:5]
    for customer in customers:
        assert await smsc.deliver(customer, SMPP_NUMBER.lstrip("+"), b"hello") == 0
    await until(lambda: len({m["from"] for c in clients for m in c.messages}) == 5, timeout=20)
    conversations = {m["from"]: m["conversation_id"] for c in clients for m in c.messages}
    smsc.refuse_connections_for(6)
    smsc.drop_links()  # the SMSC is gone: the holder's sends fail and back off, the standby may not send
    for n in range(10):
        for customer in customers:  # alternately through the holder and the standby
            answer = await clients[n % 2].call("send", {"conversation_id": conversations[customer],
                                                        "text": f"{customer} #{n}", "client_id": f"{customer}-{n}"})
            assert answer["ok"], answer
    await until(lambda: len(smsc.accepted) >= 50, timeout=60)
    await asyncio.sleep(2.0)  # a second submit of a row would be on its way by now
    texts = [s.short_message.decode() for s in smsc.accepted]
    assert len(texts) == 50 and len(set(texts)) == 50, Counter(texts).most_common(3)
    for customer in customers:
        assert [t for t in texts if t.startswith(customer)] == [f"{customer} #{n}" for n in range(10)]
