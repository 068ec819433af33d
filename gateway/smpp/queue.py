"""Which submit leaves next, and when, for all the binds of one client: order, pauses, rate.

Rules:
- Arrival order: a message answered with a retryable status goes back to its place, never behind
  later ones (CONVENTIONS: don't requeue single PDUs out of order).
- A retryable answer pauses every submit. The pause doubles from `throttle_pause` while answers
  keep coming back retryable, and never exceeds `max_pause`: past a few seconds a longer pause
  only delays the queue (issue 8: 20 throttles in a row took 7 minutes at 32 x throttle_pause).
  An answer to a submit sent before the current pause began belongs to the same burst and does
  not pause again. After a pause one message goes alone (a probe) until an answer opens the window.
- Resends are bounded (`retries` per message); past them the message fails, temporarily, and its
  caller decides when to try again.
- The rate limit holds across pauses: a pause never lets a burst above `rate_limit` out.
- Time is a number handed in; nothing here reads a clock or sleeps.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

RETRY_STATUSES = frozenset({0x58, 0x14, 0x08})  # ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR
DONE, RETRY, FAIL = "done", "retry", "fail"


class Window(Protocol):
    """What the queue asks of a bind's session."""

    @property
    def has_room(self) -> bool: ...

    @property
    def in_flight(self) -> int: ...

    def may_send(self, command: str) -> bool: ...


@dataclass(eq=False)
class Queued:
    """A message waiting to leave, in flight, or waiting to be resent. `token` is the caller's."""

    arrival: int
    token: object = None
    attempts: int = 0
    sent_at: float = float("-inf")

    def __lt__(self, other: Queued) -> bool:
        return self.arrival < other.arrival


class SubmitQueue:
    """Which submit leaves next, and when: arrival order, a pause for the whole bind, a rate."""

    def __init__(self, throttle_pause: float = 1.0, retries: int = 5, rate_limit: float = 0,
                 max_pause: float = 1.5):
        if throttle_pause <= 0 or max_pause <= 0:
            raise ValueError("throttle_pause and max_pause: must be positive")
        self.throttle_pause, self.retries, self.rate_limit = throttle_pause, retries, rate_limit
        self.max_pause = max_pause
        self._heap: list[Queued] = []
        self._arrivals = 0
        self._paused_at = float("-inf")
        self.paused_until = 0.0
        self._level = 0
        self.probing = False
        self._next_send_at = 0.0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, token: object) -> Queued:
        self._arrivals += 1
        queued = Queued(self._arrivals, token)
        heapq.heappush(self._heap, queued)
        return queued

    def discard(self, dropped: Callable[[Queued], bool]) -> None:
        """Forget queued messages at the head that `dropped` says nobody waits for any more."""
        while self._heap and dropped(self._heap[0]):
            heapq.heappop(self._heap)

    def delay(self, now: float, session: Window) -> float | None:
        """0 to send now on `session`, seconds to wait, or None to wait for a change."""
        if not self._heap or not session.has_room or not session.may_send("submit_sm"):
            return None
        if self.probing and session.in_flight:
            return None
        wait = max(self.paused_until, self._next_send_at) - now
        return wait if wait > 0 else 0

    def pop(self, now: float) -> Queued:
        """The next message to send, now."""
        queued = heapq.heappop(self._heap)
        queued.sent_at = now
        if self.rate_limit:
            self._next_send_at = max(now, self._next_send_at) + 1 / self.rate_limit
        return queued

    def answered(self, queued: Queued, status: int, now: float, retry: bool = True) -> str:
        """DONE, RETRY (queued again at its place, the bind paused) or FAIL."""
        if status == 0:
            self._level, self.probing = 0, False
            return DONE
        if retry and status in RETRY_STATUSES and queued.attempts < self.retries:
            queued.attempts += 1
            self._pause(queued, now)
            heapq.heappush(self._heap, queued)
            return RETRY
        self.probing = False
        return FAIL

    def pause_for(self, level: int) -> float:
        """The pause after `level` retryable bursts in a row: doubling, capped at max_pause."""
        return min(self.throttle_pause * 2 ** min(level, 60), self.max_pause)

    def _pause(self, queued: Queued, now: float) -> None:
        if queued.sent_at < self._paused_at:
            return  # sent before the current pause began: the same burst
        self.paused_until = now + self.pause_for(self._level)
        self._level += 1
        self._paused_at, self.probing = now, True

    def drain(self) -> list[Queued]:
        """Everything queued, removed, in arrival order."""
        heap, self._heap = self._heap, []
        return sorted(heap)
