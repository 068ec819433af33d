"""Agent presence: ready / not ready / offline, as this process sees the agent's tabs.

Rules: an agent is offline only when every tab has been gone for the grace period (mobile
tabs and sleeping laptops flap; one lost socket is not "offline"). The chosen state (ready or
not ready) is the agent's own and survives reconnects; the caller persists it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

READY, NOT_READY, OFFLINE = "ready", "not_ready", "offline"
CHOICES = (READY, NOT_READY)


@dataclass
class _Seen:
    choice: str = READY
    sids: set[str] = field(default_factory=set)
    left_at: float | None = None


class Presence:
    def __init__(self, grace_seconds: float, clock=time.monotonic):
        self.grace = grace_seconds
        self.clock = clock
        self._seen: dict[int, _Seen] = {}

    def connect(self, user_id: int, sid: str, choice: str) -> None:
        seen = self._seen.setdefault(user_id, _Seen(choice=choice))
        seen.sids.add(sid)
        seen.left_at = None

    def disconnect(self, user_id: int, sid: str) -> None:
        seen = self._seen.get(user_id)
        if seen is None:
            return
        seen.sids.discard(sid)
        if not seen.sids:
            seen.left_at = self.clock()

    def choose(self, user_id: int, choice: str) -> None:
        self._seen.setdefault(user_id, _Seen()).choice = choice

    def state(self, user_id: int) -> str:
        """The agent's presence now."""
        seen = self._seen.get(user_id)
        if seen is None or not self._connected(seen):
            return OFFLINE
        return seen.choice

    def available(self, user_id: int | None) -> bool:
        """Whether new conversations may be delivered to this agent now."""
        return user_id is not None and self.state(user_id) == READY

    def counts(self) -> dict[str, int]:
        """How many agents are connected now, by their chosen state (the operator's view)."""
        out = dict.fromkeys(CHOICES, 0)
        for seen in self._seen.values():
            if self._connected(seen):
                out[seen.choice] = out.get(seen.choice, 0) + 1
        return out

    def _connected(self, seen: _Seen) -> bool:
        if seen.sids:
            return True
        return seen.left_at is not None and self.clock() - seen.left_at < self.grace


PRESENCE = web.AppKey("presence", Presence)
