"""Routing: stored messages reach the agent they belong to, now or when that agent is ready.

Rules: routing runs after the commit, from what was stored; a conversation waiting for its
owner, or in a queue (a team, a shared number's presenters, the admins'), stays in the store
(state `waiting`) until someone takes it, so nothing waits in memory and a restart loses
nothing. A waiting conversation is claimed by one agent only: the claim is one conditional
UPDATE, so two agents who become ready at once (on any node) cannot both get it; claims lock
their rows in id order, and every routing unit runs through GroupCommit, which runs a batch
again on a deadlock or serialization failure (chat.store.db), so none reaches an agent. What waits
in the admins' queue is announced to the admins (a `notice`) and listed in their sync; an
admin claims it. An agent is pushed only their own conversations.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from functools import partial

import structlog
from aiohttp import web

from chat.domain.directory import ADMINS, Directory
from chat.domain.inbound import Stored
from chat.domain.waiting import claim_queued, claim_waiting
from chat.store.commit import GroupCommit
from chat.store.context import COMMIT
from chat.workers.hub import HUB, Hub, Pushes
from chat.workers.presence import PRESENCE, Presence
from chat.workers.running import DIRECTORY, RunningConfig
from chat.workers.tasks import running

log = structlog.get_logger()
BACKLOG = 100  # stored messages waiting to be routed before ingest holds its acknowledgements
QUEUE_NOTICE_SECONDS = 0.25  # queue changes within this long are told to its members once


class Router:
    def __init__(self, commit: GroupCommit, hub: Hub, presence: Presence, running: RunningConfig | None = None,
                 on_routed: Callable[[Stored], None] | None = None):
        self.commit = commit
        self.hub = hub
        self.presence = presence
        self.running = running
        self._known = set(running.current.agents) if running is not None else set()  # forget_removed's
        self._ending: set[asyncio.Task] = set()
        self._queue: asyncio.Queue[Stored] = asyncio.Queue()
        self._queued_at: deque[float] = deque()  # when each stored message not yet routed was dispatched
        self._drained = asyncio.Event()  # set whenever the router took what was queued
        self.on_routed = on_routed  # called with each routed message (the scenarios' inbound events)
        self._changed: set[str] = set()  # queues whose members are to be told they changed
        self._telling: asyncio.Task | None = None

    @property
    def directory(self) -> Directory | None:
        """The running directory (chat.workers.running): read at each use, so a change counts at once."""
        return self.running.current if self.running is not None else None

    def forget_removed(self, directory: Directory) -> None:
        """A change removed users: end their sockets here (their tokens and sessions are refused already)."""
        gone = self._known - set(directory.agents)
        self._known = set(directory.agents)
        for uid in sorted(gone):
            task = asyncio.create_task(self.hub.end_user(uid, "removed"))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    async def moved(self, applied) -> None:
        """A change of the configuration moved these conversations: tell who lost each, offer it to who waits."""
        offer: set[int] = set()
        for move in applied.moved:
            await self.hub.emit(move.holder, "unassigned", {"conversation_id": move.conversation_id, "to": move.label,
                                                            "reason": "reassigned"})
            if move.user is not None:
                offer.add(move.user)
            else:
                self.queue_changed(move.queue)
                offer.update(self.directory.queues.get(move.queue, ()) if self.directory else ())
        for uid in sorted(offer):
            if self.presence.available(uid):
                await self.assign_waiting(uid)

    def queue_changed(self, queue: str | None) -> None:
        """Tell the queue's members, soon and once for many changes, that it changed (their clients
        read it again): a conversation came in, was taken, or moved up."""
        if not queue or self.directory is None or queue not in self.directory.queues:
            return
        self._changed.add(queue)
        if self._telling is None or self._telling.done():
            self._telling = asyncio.create_task(self._tell_queues())

    async def _tell_queues(self) -> None:
        await asyncio.sleep(QUEUE_NOTICE_SECONDS)
        changed, self._changed = self._changed, set()
        assert self.directory is not None
        told: dict[int, list[str]] = {}
        for queue in sorted(changed):
            for uid in self.directory.queues.get(queue, ()):
                told.setdefault(uid, []).append(queue)
        for uid, queues in told.items():
            await self.hub.emit(uid, "queue_changed", {"queues": queues})

    def dispatch(self, stored: Stored) -> None:
        """Route after the commit, in commit order: pushes never overtake one another."""
        self._queued_at.append(time.monotonic())
        self._queue.put_nowait(stored)

    def backlog(self) -> tuple[int, float]:
        """Stored messages not yet routed, and the age in seconds of the oldest (the routing lag)."""
        if not self._queued_at:
            return 0, 0.0
        return len(self._queued_at), time.monotonic() - self._queued_at[0]

    async def caught_up(self) -> None:
        """Wait while more than BACKLOG stored messages wait to be routed.

        Ingest awaits this before it acknowledges, so an SMSC or provider that sends faster
        than agents can be pushed to is slowed down by its own window (or retries) instead of
        the pushes falling ever further behind."""
        while self._queue.qsize() > BACKLOG:
            self._drained.clear()
            await self._drained.wait()

    async def run(self) -> None:
        while True:
            burst = [await self._queue.get()]
            while not self._queue.empty():
                burst.append(self._queue.get_nowait())
            self._drained.set()
            pushes = Pushes()
            for stored in burst:
                try:
                    await self.route(stored, pushes)
                    if self.on_routed:
                        self.on_routed(stored)
                except Exception:  # noqa: BLE001 - the store is the truth; clients sync
                    log.exception("routing.failed")
                finally:
                    if self._queued_at:
                        self._queued_at.popleft()
            try:
                await pushes.flush(self.hub)
            except Exception:  # noqa: BLE001
                log.exception("routing.push_failed")

    async def route(self, stored: Stored, pushes: Pushes) -> None:
        """Push a freshly stored inbound message, or offer its waiting conversation to who may take it."""
        if stored.duplicate:
            return
        if stored.waiting:
            if stored.new_conversation and stored.queue == ADMINS:
                await self._tell_admins(stored)
            if stored.new_conversation:
                self.queue_changed(stored.queue)
            taker = next((uid for uid in self._takers(stored) if self.presence.available(uid)), None)
            if taker is not None:  # became ready after ingest looked: the claim decides who gets it
                await pushes.flush(self.hub)  # what was routed before goes first
                await self.assign_waiting(taker)
            return
        message, conversation = stored.message, stored.conversation
        assert message is not None and conversation is not None  # not a duplicate: both were stored
        if stored.new_conversation:
            pushes.add(stored.assigned_id, "conversation", conversation)
        pushes.add(stored.assigned_id, "message", message)

    def _takers(self, stored: Stored) -> tuple[int, ...]:
        """Who may take this waiting conversation on becoming ready (admins claim theirs by hand)."""
        if stored.owner_id is not None:
            return (stored.owner_id,)
        if stored.queue in (None, ADMINS) or self.directory is None:
            return ()
        return self.directory.queues.get(stored.queue, ())

    async def _tell_admins(self, stored: Stored) -> None:
        conv = stored.conversation
        assert conv is not None
        log.warning("routing.unrouted", conversation=conv["id"], number=conv["access_number"], queue=ADMINS)
        text = (f"A new text to {conv['access_number']} has no one to take it: it waits in the admins' queue "
                f"(conversation {conv['id']}). Give the number a user or a team in the configuration.")
        for uid in self.directory.queues.get(ADMINS, ()) if self.directory else ():
            await self.hub.emit(uid, "notice", {"level": "warning", "text": text, "conversation_id": conv["id"]})

    def _queues_of(self, user_id: int) -> tuple[str, ...]:
        return self.directory.queues_of.get(user_id, ()) if self.directory else ()

    async def assign_waiting(self, user_id: int) -> int:
        """Open every conversation waiting for this agent (or a queue they take from) and push them; how many."""
        teams = self.directory.teams if self.directory else {}
        # The admins' queue and offer_all teams' are claimed by hand; the others deal themselves out here.
        queues = tuple(q for q in self._queues_of(user_id)
                       if q != ADMINS and getattr(teams.get(q), "distribution", "") != "offer_all")
        claimed = await self.commit.run(partial(claim_waiting, user_id=user_id, teams=queues, directory=self.directory))
        await self._push_claimed(user_id, claimed)
        for conv, _ in claimed:
            self.queue_changed(conv.get("queue"))
        return len(claimed)

    async def claim(self, user_id: int, conversation_id: int) -> dict | None:
        """Take one conversation waiting in a queue of this agent (the admins': any admin); None if it is not there."""
        unit = partial(claim_queued, user_id=user_id, conversation_id=conversation_id, queues=self._queues_of(user_id))
        claimed = await self.commit.run(unit)
        await self._push_claimed(user_id, claimed)
        for conv, _ in claimed:
            self.queue_changed(conv.get("queue"))
        return claimed[0][0] if claimed else None

    async def _push_claimed(self, user_id: int, claimed: list[tuple[dict, list[dict]]]) -> None:
        pushes = Pushes()
        for conv, msgs in claimed:
            pushes.add(user_id, "conversation", conv)
            for msg in msgs:
                pushes.add(user_id, "message", msg)
        await pushes.flush(self.hub)

    async def push_status(self, payload: dict | None) -> None:
        """Push a status change to its agent (with the others of this loop turn)."""
        if payload:
            payload = dict(payload)
            self.hub.soon(payload.pop("_to"), "status", payload)


ROUTER = web.AppKey("router", Router)


def routing_context(on_routed: Callable[[web.Application, Stored], None] | None = None):
    """The router and its worker; `on_routed(app, stored)` hears each routed message (the scenario runner)."""

    async def context(app: web.Application):
        hear = partial(on_routed, app) if on_routed else None
        router = app[ROUTER] = Router(app[COMMIT], app[HUB], app[PRESENCE], app[DIRECTORY], on_routed=hear)
        app[DIRECTORY].on_moves(router.moved)
        app[DIRECTORY].on_change(router.forget_removed)
        async with running(router.run(), "routing"):
            yield

    return context
