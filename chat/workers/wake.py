"""Wake-ups: a worker sleeps until a row of its kind may be due, and anyone may wake it.

Rules: a wake-up is a hint, never the truth (the database is): a worker that misses one finds
its rows on its next scan. Topics are short names ("outbox", "crm", "timers", "ready").
One node: an asyncio.Event per topic. Several nodes: the same, and every topic woken here is
also handed to the cluster link (`outgoing`, a burst of wakes of one topic handed over once),
which tells the other nodes (chat.workers.cluster); a wake from another node is `local`, so it
is never sent back.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

OUTBOX, CRM, TIMERS, READY = "outbox", "crm", "timers", "ready"


class Wake:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._outgoing: set[str] = set()  # woken here, not yet handed to the cluster link (at most one per topic)
        self._pending = asyncio.Event()

    def event(self, topic: str) -> asyncio.Event:
        """The event a worker of `topic` waits on (and clears before it scans)."""
        return self._events.setdefault(topic, asyncio.Event())

    def __call__(self, topic: str) -> None:
        """Wake `topic`'s worker here and on every other node."""
        self.local(topic)
        self._outgoing.add(topic)
        self._pending.set()

    def local(self, topic: str) -> None:
        """Wake `topic`'s worker on this node only (what a message from another node does)."""
        self.event(topic).set()

    async def outgoing(self) -> set[str]:
        """The topics woken here since the last call, once there is one (for the other nodes)."""
        while not self._outgoing:
            self._pending.clear()
            await self._pending.wait()
        topics, self._outgoing = self._outgoing, set()
        return topics


WAKE = web.AppKey("wake", Wake)
