"""One SMPP bind's state, without I/O: bind state, sequence numbers, the window, matching responses.

Rules:
- Everything that changes the bind state goes through `Session.handle(event)` and the TRANSITIONS
  table; an event the table does not list for the current state is a ProtocolError.
- Which requests may be sent, and which the peer may send us, depends on the state and the bind
  type: `may_send` and `may_receive` answer from tables, never from ifs spread in the pump.
- Time is a number handed in (`now`); nothing here reads a clock or sleeps.
- Requests in flight are kept until their response, their deadline (`expired`) or the end of the
  link (`abandon`). Windowed requests (messages) count against the window; others do not.
- `SubmitQueue` decides which submit leaves next and when (order, throttle pauses, rate), for
  all the binds of one client.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from gateway.smpp.pdu import MAX_SEQUENCE, Pdu

# Bind states.
CLOSED, OPEN, BINDING, BOUND, UNBINDING = "closed", "open", "binding", "bound", "unbinding"
# Events.
CONNECTED, BIND_SENT, BIND_OK, BIND_FAILED = "connected", "bind_sent", "bind_ok", "bind_failed"
UNBIND_SENT, UNBIND_RECEIVED, UNBOUND, LINK_LOST = "unbind_sent", "unbind_received", "unbound", "link_lost"

TRANSITIONS: dict[str, dict[str, str]] = {
    CLOSED: {CONNECTED: OPEN, LINK_LOST: CLOSED},
    OPEN: {BIND_SENT: BINDING, LINK_LOST: CLOSED},
    BINDING: {BIND_OK: BOUND, BIND_FAILED: OPEN, UNBIND_RECEIVED: UNBINDING, LINK_LOST: CLOSED},
    BOUND: {UNBIND_SENT: UNBINDING, UNBIND_RECEIVED: UNBINDING, LINK_LOST: CLOSED},
    UNBINDING: {UNBIND_SENT: UNBINDING, UNBIND_RECEIVED: UNBINDING, UNBOUND: CLOSED, LINK_LOST: CLOSED},
}

BIND_TYPES = ("transceiver", "transmitter", "receiver")
_TRANSMIT = frozenset({"submit_sm", "data_sm", "query_sm"})
_RECEIVE = frozenset({"deliver_sm", "data_sm", "alert_notification"})
_LINK = frozenset({"enquire_link", "unbind", "generic_nack"})

# Requests we may send, per bind type and state.
MAY_SEND: dict[str, dict[str, frozenset[str]]] = {
    kind: {
        OPEN: frozenset({f"bind_{kind}", "enquire_link"}),
        BINDING: frozenset({"enquire_link"}),
        BOUND: _LINK | (_TRANSMIT if kind != "receiver" else frozenset()),
        UNBINDING: frozenset(),
        CLOSED: frozenset(),
    }
    for kind in BIND_TYPES
}
# Requests the SMSC may send us, per bind type and state.
MAY_RECEIVE: dict[str, dict[str, frozenset[str]]] = {
    kind: {
        OPEN: frozenset({"enquire_link"}),
        BINDING: frozenset({"enquire_link", "unbind"}),
        BOUND: _LINK | (_RECEIVE if kind != "transmitter" else frozenset()),
        UNBINDING: frozenset({"enquire_link", "unbind"}),
        CLOSED: frozenset(),
    }
    for kind in BIND_TYPES
}
WINDOWED = frozenset({"submit_sm", "data_sm", "query_sm"})


class ProtocolError(Exception):
    """Something the state table does not allow."""


@dataclass
class Pending:
    """A request in flight. `token` is the caller's (a future, a job); the session never looks at it."""

    sequence: int
    command: str
    deadline: float
    token: object = None
    sent_at: float = 0.0

    @property
    def windowed(self) -> bool:
        return self.command in WINDOWED


class Session:
    """The pure state of one bind."""

    def __init__(self, bind: str = "transceiver", window: int = 10):
        if bind not in BIND_TYPES:
            raise ValueError(f"bind: one of {BIND_TYPES}, got {bind!r}")
        if window < 1:
            raise ValueError(f"window: at least 1, got {window}")
        self.bind = bind
        self.window = window
        self.state = CLOSED
        self._last_sequence = 0
        self._pending: dict[int, Pending] = {}
        self._windowed = 0  # how many of _pending count against the window

    # -- bind state ------------------------------------------------------------------------------
    def handle(self, event: str) -> str:
        """Apply `event`; the new state, or ProtocolError."""
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise ProtocolError(f"event {event!r} not allowed in state {self.state!r}") from None
        return self.state

    def may_send(self, command: str) -> bool:
        return command in MAY_SEND[self.bind][self.state]

    def may_receive(self, command: str) -> bool:
        return command in MAY_RECEIVE[self.bind][self.state]

    @property
    def is_bound(self) -> bool:
        return self.state == BOUND

    # -- sequence numbers and the window ------------------------------------------------------
    def next_sequence(self) -> int:
        """1 .. 0x7FFFFFFF, wrapping, skipping numbers still in flight."""
        for _ in range(len(self._pending) + 1):
            self._last_sequence = self._last_sequence % MAX_SEQUENCE + 1
            if self._last_sequence not in self._pending:
                return self._last_sequence
        raise ProtocolError("no free sequence number")  # unreachable: the window is far smaller

    @property
    def in_flight(self) -> int:
        """Windowed requests awaiting a response."""
        return self._windowed

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.window

    def start(self, command: str, now: float, timeout: float, token: object = None) -> Pending:
        """Register a request about to be sent; its sequence number is in the result."""
        if not self.may_send(command):
            raise ProtocolError(f"{command} not allowed for a {self.bind} bind in state {self.state!r}")
        if command in WINDOWED and not self.has_room:
            raise ProtocolError(f"window full ({self.window} in flight)")
        pending = Pending(self.next_sequence(), command, now + timeout, token, now)
        self._pending[pending.sequence] = pending
        self._windowed += pending.windowed
        return pending

    def settle(self, response: Pdu) -> Pending | None:
        """The request `response` answers (removed from flight), or None if it answers nothing we sent."""
        pending = self._pending.get(response.sequence)
        if pending is None:
            return None
        if response.command not in (f"{pending.command}_resp", "generic_nack"):
            return None
        self._windowed -= pending.windowed
        return self._pending.pop(response.sequence)

    def expired(self, now: float) -> list[Pending]:
        """Requests whose deadline passed, removed from flight, oldest first."""
        late = sorted((p for p in self._pending.values() if p.deadline <= now), key=lambda p: p.deadline)
        for pending in late:
            del self._pending[pending.sequence]
            self._windowed -= pending.windowed
        return late

    def abandon(self) -> list[Pending]:
        """Everything in flight, removed: the link is gone."""
        pending, self._pending = list(self._pending.values()), {}
        self._windowed = 0
        return pending

    def pending(self) -> list[Pending]:
        return list(self._pending.values())


# -- the submit queue: order, throttle pauses, rate ------------------------------------------------

RETRY_STATUSES = frozenset({0x58, 0x14, 0x08})  # ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR
MAX_PAUSE_FACTOR = 32  # pauses double up to throttle_pause * this
DONE, RETRY, FAIL = "done", "retry", "fail"


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
    """Which submit leaves next, and when: arrival order, a pause for the whole bind, a rate.

    A retryable answer puts the message back at its place and pauses every submit; after a pause
    one message goes alone (a probe) until an answer opens the window again."""

    def __init__(self, throttle_pause: float = 1.0, retries: int = 5, rate_limit: float = 0):
        self.throttle_pause, self.retries, self.rate_limit = throttle_pause, retries, rate_limit
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

    def delay(self, now: float, session: Session) -> float | None:
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

    def _pause(self, queued: Queued, now: float) -> None:
        if queued.sent_at < self._paused_at:
            return  # sent before the current pause began: the same burst
        self.paused_until = now + self.throttle_pause * min(2 ** self._level, MAX_PAUSE_FACTOR)
        self._level += 1
        self._paused_at, self.probing = now, True

    def drain(self) -> list[Queued]:
        """Everything queued, removed, in arrival order."""
        heap, self._heap = self._heap, []
        return sorted(heap)
