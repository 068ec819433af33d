"""Agent presence: ready / not ready / offline, as the whole cluster sees the agent's tabs.

Rules:
- An agent is offline only when every tab, on every node, has been gone for the grace period
  (mobile tabs and sleeping laptops flap; one lost socket is not "offline").
- The chosen state (ready or not ready) is the agent's own and survives reconnects; the caller
  persists it. The latest choice made on any node wins: each carries the time it was made (a
  choice read from the store at connect counts as older than any made since).
- Other nodes' agents are known from what those nodes tell (chat.workers.cluster): each node's
  view holds until its `expires_at`, renewed by its heartbeats; a node that stops telling (it
  died) has all its agents offline then.
- Everything here is synchronous: `state` and `available` are read inside units of work.
  Times are wall-clock seconds, since records travel between nodes.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web

from chat.workers.tasks import wait_set

READY, NOT_READY, OFFLINE = "ready", "not_ready", "offline"
CHOICES = (READY, NOT_READY)


@dataclass(frozen=True)
class Record:
    """What one node knows of one agent: the agent's choice and that node's tabs of theirs."""

    choice: str
    chosen_at: float  # when the choice was made; 0 when it was read from the store
    tabs: int
    left_at: float | None = None  # when the node's last tab of theirs left

    def wire(self) -> list:
        return [self.choice, self.chosen_at, self.tabs, self.left_at]

    @classmethod
    def of(cls, wire) -> Record:
        """A record as another node sent it (chat.workers.cluster checks the shape)."""
        choice, chosen_at, tabs, left_at = wire
        if choice not in CHOICES:
            raise ValueError(f"unknown presence choice {choice!r}")
        return cls(choice, float(chosen_at), int(tabs), None if left_at is None else float(left_at))


@dataclass
class _Seen:
    choice: str = READY
    chosen_at: float = 0.0
    sids: set[str] = field(default_factory=set)
    left_at: float | None = None

    def record(self) -> Record:
        return Record(self.choice, self.chosen_at, len(self.sids), self.left_at)


@dataclass
class _Node:
    expires_at: float
    records: dict[int, Record]


class Presence:
    def __init__(self, grace_seconds: float, clock=time.time):
        self.grace = grace_seconds
        self.clock = clock
        self._seen: dict[int, _Seen] = {}  # this node's agents
        self._nodes: dict[str, _Node] = {}  # the other nodes' agents, as last told
        self._changed: set[int] = set()
        self._change = asyncio.Event()

    # -- this node's tabs ---------------------------------------------------------------------

    def connect(self, user_id: int, sid: str, choice: str) -> bool:
        """Count a tab of this agent here (`choice` counts only if this node knows no choice of theirs);
        whether it is their first tab on this node."""
        seen = self._seen.setdefault(user_id, _Seen(choice=choice))
        first = not seen.sids
        seen.sids.add(sid)
        seen.left_at = None
        self._mark(user_id)
        return first

    def disconnect(self, user_id: int, sid: str) -> None:
        seen = self._seen.get(user_id)
        if seen is None or sid not in seen.sids:
            return
        seen.sids.discard(sid)
        if not seen.sids:
            seen.left_at = self.clock()
        self._mark(user_id)

    def choose(self, user_id: int, choice: str) -> None:
        seen = self._seen.setdefault(user_id, _Seen())
        seen.choice, seen.chosen_at = choice, self.clock()
        self._mark(user_id)

    # -- what the cluster is told and hears ----------------------------------------------------

    def records(self) -> dict[int, Record]:
        """This node's agents who count as connected (tabs, or within the grace period)."""
        now = self.clock()
        records = ((uid, seen.record()) for uid, seen in self._seen.items())
        return {uid: record for uid, record in records if self._connected(record, now)}

    async def changes(self, timeout: float) -> dict[int, Record]:
        """This node's agents whose record changed since the last call; waits up to `timeout` for one."""
        if not self._changed:
            self._change.clear()
            await wait_set(self._change, timeout)
        changed, self._changed = self._changed, set()
        return {uid: self._seen[uid].record() for uid in changed}

    def heard(self, node: str, records: dict[int, Record], expires_at: float, full: bool) -> None:
        """What `node` told: all its agents (`full`, a heartbeat) or those that changed; it holds until `expires_at`."""
        if full:
            self._forget_dead()
        view = self._nodes.get(node)
        if view is None or full:
            view = self._nodes[node] = _Node(expires_at, dict(records) if full else {})
        view.expires_at = max(view.expires_at, expires_at)
        view.records.update(records)
        for uid, record in records.items():  # adopt a later choice, so it outlives the tabs it was made in
            seen = self._seen.get(uid)
            if seen is not None and record.chosen_at > seen.chosen_at:
                seen.choice, seen.chosen_at = record.choice, record.chosen_at

    def knows(self, node: str) -> bool:
        return node in self._nodes

    def nodes(self) -> list[str]:
        """The other nodes heard from within their time to live."""
        now = self.clock()
        return sorted(node for node, view in self._nodes.items() if view.expires_at > now)

    def _forget_dead(self) -> None:
        now = self.clock()
        for node in [node for node, view in self._nodes.items() if view.expires_at <= now]:
            del self._nodes[node]

    # -- reading ------------------------------------------------------------------------------

    def state(self, user_id: int) -> str:
        """The agent's presence now, across the cluster."""
        now = self.clock()
        best: Record | None = None
        for record in self._records_of(user_id, now):
            if self._connected(record, now) and (best is None or record.chosen_at > best.chosen_at):
                best = record
        return OFFLINE if best is None else best.choice

    def available(self, user_id: int | None) -> bool:
        """Whether new conversations may be delivered to this agent now."""
        return user_id is not None and self.state(user_id) == READY

    def counts(self) -> dict[str, int]:
        """How many agents are connected to this node now, by their chosen state (the operator's view)."""
        out = dict.fromkeys(CHOICES, 0)
        for record in self.records().values():
            out[record.choice] = out.get(record.choice, 0) + 1
        return out

    def _records_of(self, user_id: int, now: float):
        seen = self._seen.get(user_id)
        if seen is not None:
            yield seen.record()
        for view in self._nodes.values():
            record = view.records.get(user_id)
            if record is not None and view.expires_at > now:
                yield record

    def _connected(self, record: Record, now: float) -> bool:
        if record.tabs:
            return True
        return record.left_at is not None and now - record.left_at < self.grace

    def _mark(self, user_id: int) -> None:
        self._changed.add(user_id)
        self._change.set()


PRESENCE = web.AppKey("presence", Presence)
