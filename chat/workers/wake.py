"""Wake-ups: a worker sleeps until a row of its kind may be due, and anyone may wake it.

Rules: a wake-up is a hint, never the truth (the database is): a worker that misses one finds
its rows on its next scan. Topics are short names ("outbox", "crm", "timers", "ready").
One node: an asyncio.Event per topic. Several nodes: the same, and every wake is also published
to the other nodes (chat.workers.cluster), so a row committed on one node is picked up at once
by whichever node claims it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

OUTBOX, CRM, TIMERS, READY = "outbox", "crm", "timers", "ready"


class Wake:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.publish: Callable[[str], None] | None = None  # set by the cluster link: tell the other nodes

    def event(self, topic: str) -> asyncio.Event:
        """The event a worker of `topic` waits on (and clears before it scans)."""
        return self._events.setdefault(topic, asyncio.Event())

    def __call__(self, topic: str) -> None:
        """Wake `topic`'s worker here and on every other node."""
        self.local(topic)
        if self.publish is not None:
            self.publish(topic)

    def local(self, topic: str) -> None:
        """Wake `topic`'s worker on this node only (what a message from another node does)."""
        self.event(topic).set()


WAKE = web.AppKey("wake", Wake)
