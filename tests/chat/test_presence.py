"""Presence across nodes and wake-ups: the merge rules on a fake clock, then two links on the real
Redis (chat.workers.cluster), as two nodes would hold them, without processes."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid

import pytest
import redis.asyncio as aioredis
import socketio
import structlog.testing
from socketio.async_pubsub_manager import AsyncPubSubManager

from chat.config import ClusterConfig
from chat.workers.cluster import Link, RedisManager, Refused
from chat.workers.presence import NOT_READY, OFFLINE, READY, Presence, Record
from chat.workers.wake import OUTBOX, TIMERS, Wake
from tests.conftest import free_port, unavailable, until

REDIS_URL = os.environ.get("DIDCHAT_TEST_REDIS", "redis://127.0.0.1:6379/0")


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_agent_is_offline_only_when_every_tab_on_every_node_is_gone_for_the_grace():
    clock = Clock()
    presence = Presence(grace_seconds=10, clock=clock)
    presence.heard("b", {1: Record(READY, 0, tabs=1)}, expires_at=clock.now + 8, full=True)
    assert presence.available(1)  # her tab is on node b
    presence.connect(1, "s1", READY)
    presence.heard("b", {1: Record(READY, 0, tabs=0, left_at=clock.now)}, expires_at=clock.now + 8, full=False)
    presence.disconnect(1, "s1")
    clock.now += 9
    assert presence.state(1) == READY  # both left within the grace
    clock.now += 2
    assert presence.state(1) == OFFLINE


def test_a_node_that_stops_telling_has_its_agents_offline_when_its_view_expires():
    clock = Clock()
    presence = Presence(grace_seconds=10, clock=clock)
    presence.heard("b", {1: Record(READY, 0, tabs=2), 2: Record(NOT_READY, 5, tabs=1)}, clock.now + 8, full=True)
    assert presence.state(1) == READY and presence.state(2) == NOT_READY
    clock.now += 7.9
    assert presence.available(1)
    clock.now += 0.2  # no heartbeat from b for presence_ttl_seconds: b is dead
    assert presence.state(1) == OFFLINE and presence.state(2) == OFFLINE
    presence.heard("c", {}, clock.now + 8, full=True)
    assert not presence.knows("b")  # forgotten, not kept for ever


def test_a_heartbeat_replaces_the_nodes_view_and_a_change_updates_it():
    clock = Clock()
    presence = Presence(grace_seconds=0, clock=clock)
    presence.heard("b", {1: Record(READY, 0, tabs=1), 2: Record(READY, 0, tabs=1)}, clock.now + 8, full=True)
    presence.heard("b", {3: Record(READY, 0, tabs=1)}, clock.now + 8, full=False)
    assert [presence.state(u) for u in (1, 2, 3)] == [READY, READY, READY]
    presence.heard("b", {1: Record(READY, 0, tabs=1)}, clock.now + 8, full=True)
    assert [presence.state(u) for u in (1, 2, 3)] == [READY, OFFLINE, OFFLINE]


def test_the_latest_choice_on_any_node_wins_and_outlives_the_tab_it_was_made_in():
    clock = Clock()
    presence = Presence(grace_seconds=0, clock=clock)
    presence.connect(1, "here", READY)  # read from the store: older than any choice made since
    presence.heard("b", {1: Record(NOT_READY, clock.now, tabs=1)}, clock.now + 8, full=True)
    assert presence.state(1) == NOT_READY
    presence.heard("b", {}, clock.now + 8, full=True)  # her tab on b closed
    assert presence.state(1) == NOT_READY  # the choice stays hers
    clock.now += 1
    presence.choose(1, READY)
    assert presence.available(1)
    assert presence.counts() == {READY: 1, NOT_READY: 0}  # this node's own agents only


async def test_changes_hand_over_this_nodes_records_once():
    presence = Presence(grace_seconds=5)
    assert await presence.changes(0.01) == {}
    presence.connect(1, "s1", READY)
    presence.connect(1, "s2", READY)
    presence.disconnect(2, "never-there")  # nothing changed
    [(uid, record)] = (await presence.changes(1)).items()
    assert uid == 1 and record.tabs == 2 and record.choice == READY
    assert await presence.changes(0.01) == {}
    waiter = asyncio.create_task(presence.changes(5))
    await asyncio.sleep(0)
    presence.disconnect(1, "s1")
    assert (await asyncio.wait_for(waiter, 1))[1].tabs == 1
    assert set(presence.records()) == {1}


def test_records_go_over_the_wire_and_bad_ones_are_refused():
    record = Record(READY, 12.5, 2, None)
    assert Record.of(record.wire()) == record
    with pytest.raises(ValueError):
        Record.of(["away", 0, 1, None])


async def test_wake_hands_each_topic_to_the_other_nodes_once_per_burst():
    wake = Wake()
    for _ in range(100):
        wake(OUTBOX)
    wake(TIMERS)
    assert wake.event(OUTBOX).is_set()
    assert await asyncio.wait_for(wake.outgoing(), 1) == {OUTBOX, TIMERS}
    wake.local(OUTBOX)  # from another node: never sent back
    waiting = asyncio.create_task(wake.outgoing())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    waiting.cancel()


# -- two links on the real Redis ------------------------------------------------------------


class FakeNode:
    """What the cluster context holds for one node: its presence, its wakes and its link's tasks."""

    def __init__(self, client, subscriber, settings: ClusterConfig, name: str, digest: str = "same"):
        self.presence, self.wake = Presence(grace_seconds=0), Wake()
        self.link = Link(client, subscriber, settings, name, self.presence, self.wake, lambda: digest)
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> FakeNode:
        self.tasks = [asyncio.create_task(self.link.listen())]
        await self.link.join()
        self.tasks += [asyncio.create_task(self.link.tell_presence()), asyncio.create_task(self.link.tell_wakes())]
        return self

    async def die(self) -> None:
        """Stop without a word, as a SIGKILLed node does."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def nodes():
    client = aioredis.from_url(REDIS_URL, socket_timeout=3, decode_responses=True)
    subscriber = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError):
        unavailable(f"Redis at {REDIS_URL}")
    prefix = f"didchat-test-{uuid.uuid4().hex[:12]}"
    settings = ClusterConfig(heartbeat_seconds=0.2, presence_ttl_seconds=1, redis_prefix=prefix)
    made: list[FakeNode] = []

    async def make(name: str, digest: str = "same") -> FakeNode:
        node = FakeNode(client, subscriber, settings, name, digest)
        made.append(node)
        return await node.start()

    yield make
    for node in made:
        await node.die()
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    await subscriber.aclose()


async def test_an_agent_connected_to_one_node_is_available_on_the_other_at_once(nodes):
    a, b = await nodes("a"), await nodes("b")
    a.presence.connect(7, "sid", READY)
    started = time.monotonic()
    await until(lambda: b.presence.available(7), 1.0, "b hears a's change")
    assert time.monotonic() - started < 0.5  # a change, not a heartbeat later
    a.presence.choose(7, NOT_READY)
    await until(lambda: b.presence.state(7) == NOT_READY, 1.0)
    late = await nodes("c")  # a node that starts later reads what a wrote
    assert late.presence.state(7) == NOT_READY


async def test_a_dead_nodes_agents_go_offline_within_the_ttl(nodes):
    a, b = await nodes("a"), await nodes("b")
    a.presence.connect(7, "sid", READY)
    await until(lambda: b.presence.available(7), 1.0)
    await asyncio.sleep(0.5)  # heartbeats keep her there past a heartbeat or two
    assert b.presence.available(7)
    await a.die()
    died = time.monotonic()
    await until(lambda: not b.presence.available(7), 2.0, "offline after presence_ttl_seconds")
    assert time.monotonic() - died <= 1.0 + 0.1


async def test_a_wake_on_one_node_wakes_the_others_and_is_not_sent_back(nodes):
    a, b = await nodes("a"), await nodes("b")
    a.wake(OUTBOX)
    a.wake.event(OUTBOX).clear()
    await until(lambda: b.wake.event(OUTBOX).is_set(), 1.0, "b's outbox woken")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(a.wake.event(OUTBOX).wait(), 0.3)
    assert not a.wake.event(OUTBOX).is_set()  # b did not echo it


async def test_a_node_with_another_configuration_hash_is_refused(nodes):
    await nodes("a", digest="one")
    with pytest.raises(Refused, match="configuration differs from the running cluster's"):
        await nodes("b", digest="two")
    await nodes("c", digest="one")


async def test_the_redis_manager_publishes_what_python_socketio_would():
    class Captured(RedisManager):
        def __init__(self):
            super().__init__("redis://127.0.0.1:1/0", channel="test:socketio")
            self.sent: list[dict] = []

        async def _handle_emit(self, message):
            self.sent.append(message)

        async def _publish(self, data):
            self.sent.append(data)

    ours, theirs = Captured(), Captured()
    payload = [{"id": 1, "text": "hi", "media": None}, {"id": 2, "text": "ho"}]
    await ours.emit("messages", payload, namespace="/agent", room="user:1", skip_sid="s1")
    theirs.host_id = ours.host_id
    await AsyncPubSubManager.emit(theirs, "messages", payload, namespace="/agent", room="user:1", skip_sid="s1")
    assert ours.sent == theirs.sent and len(ours.sent) == 2


async def test_a_running_node_whose_files_changed_alone_says_so(nodes):
    await nodes("a", digest="one")
    b = await nodes("b", digest="one")
    with structlog.testing.capture_logs() as logs:
        b.link.digest = lambda: "two"  # its scenario file edited, the other's not
        await until(lambda: any(e["event"] == "cluster.config_differs" for e in logs), 3.0, "the error")
    assert sum(e["event"] == "cluster.config_differs" for e in logs) <= 2  # once per node, not every heartbeat


async def test_a_lost_redis_is_said_once_and_the_link_keeps_trying():
    closed = f"redis://127.0.0.1:{free_port()}/0"
    client = aioredis.from_url(closed, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)
    subscriber = aioredis.from_url(closed, socket_connect_timeout=1, decode_responses=True)
    node = FakeNode(client, subscriber, ClusterConfig(heartbeat_seconds=0.1, presence_ttl_seconds=1), "a")
    tasks = [asyncio.create_task(job()) for job in (node.link.listen, node.link.tell_presence, node.link.tell_wakes)]
    with structlog.testing.capture_logs() as logs:
        node.presence.connect(1, "s", READY)
        node.wake(OUTBOX)
        await asyncio.sleep(1.5)  # several heartbeats and reconnects
    try:
        assert all(not task.done() for task in tasks)  # nothing gave up
        said = sorted(e["part"] for e in logs if e["event"] == "cluster.redis_unavailable")
        assert said == ["presence", "subscription", "wake"]  # each once, not at every try
        assert node.presence.available(1)  # this node's own agents are still known here
        state = node.link.state()  # what /readyz tells the operator
        assert state["redis"] == "down" and state["failing"] == ["presence", "subscription", "wake"]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
        await subscriber.aclose()


async def test_a_nodes_own_pushes_coming_back_from_redis_are_dropped_and_the_others_kept(monkeypatch):
    ours, theirs = RedisManager("redis://127.0.0.1:1/0", channel="t"), RedisManager("redis://127.0.0.1:1/0", channel="t")
    published: list[bytes] = []

    async def publish(data):
        published.append(ours.json.dumps(data).encode())

    for manager in (ours, theirs):
        manager._publish = publish
        manager._handle_emit = lambda message: asyncio.sleep(0)
    await ours.emit("messages", [{"id": 1}], namespace="/agent", room="user:1")
    await theirs.emit("messages", [{"id": 2}], namespace="/agent", room="user:1")

    async def channel():
        for data in published:
            yield data

    monkeypatch.setattr(socketio.AsyncRedisManager, "_listen", lambda self: channel())  # the channel hands back all
    heard = [json.loads(data) async for data in ours._listen()]
    assert [(m["host_id"], m["data"]) for m in heard] == [(theirs.host_id, [[{"id": 2}]])]
