"""Pushes: bursts go out as one event per agent, in order; a slow router holds ingest back."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from chat.workers.hub import MAX_BATCH, Pushes, coalesce
from chat.workers.routing import BACKLOG, Router


class Recorder:
    def __init__(self):
        self.sent: list[tuple[int, str, object]] = []

    async def emit(self, user_id, event, payload, skip_sid=None):
        self.sent.append((user_id, event, payload))


def test_runs_of_messages_and_statuses_become_lists_in_order():
    events = [("message", {"id": 1}), ("message", {"id": 2}), ("status", {"id": 9}), ("message", {"id": 3}),
              ("presence", {"state": "ready"}), ("status", {"id": 10}), ("status", {"id": 11})]
    assert coalesce(events) == [
        ("messages", [{"id": 1}, {"id": 2}]), ("status", {"id": 9}), ("message", {"id": 3}),
        ("presence", {"state": "ready"}), ("statuses", [{"id": 10}, {"id": 11}]),
    ]
    long = [("message", {"id": i}) for i in range(MAX_BATCH + 1)]
    assert [(e, len(p) if e == "messages" else p) for e, p in coalesce(long)] == [
        ("messages", MAX_BATCH), ("message", {"id": MAX_BATCH})]


async def test_a_burst_is_one_event_per_agent_with_new_conversations_first():
    pushes, hub = Pushes(), Recorder()
    pushes.add(1, "conversation", {"id": 10})
    pushes.add(1, "message", {"id": 100, "conversation_id": 10})
    pushes.add(2, "message", {"id": 200, "conversation_id": 20})
    pushes.add(1, "conversation", {"id": 11})
    pushes.add(1, "message", {"id": 101, "conversation_id": 11})
    pushes.add(1, "message", {"id": 102, "conversation_id": 10})
    pushes.add(None, "message", {"id": 999})  # nobody to push to
    await pushes.flush(hub)
    assert hub.sent == [
        (1, "conversation", {"id": 10}), (1, "conversation", {"id": 11}),
        (1, "messages", [{"id": 100, "conversation_id": 10}, {"id": 101, "conversation_id": 11},
                         {"id": 102, "conversation_id": 10}]),
        (2, "message", {"id": 200, "conversation_id": 20}),
    ]
    assert not pushes


async def test_ingest_waits_while_the_router_is_behind():
    router = Router(commit=None, hub=Recorder(), presence=None)
    for _ in range(BACKLOG + 1):
        router.dispatch(SimpleNamespace(duplicate=True))  # a resend: routed to nobody
    waiting = asyncio.create_task(router.caught_up())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()  # more than BACKLOG wait to be routed: no acknowledgement yet
    routing = asyncio.create_task(router.run())
    try:
        await asyncio.wait_for(waiting, 1)  # the router took its queue: ingest goes on
    finally:
        routing.cancel()
