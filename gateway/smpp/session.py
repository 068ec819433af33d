"""One SMPP bind without I/O, as h11 is for HTTP: bytes in, events out; requests in, PDUs out.

Rules:
- Every PDU is decided here as it is parsed: `receive_data(data, now)` frames the bytes and
  `receive(pdu, now)` applies each PDU in turn, so a bind_resp has moved the state before the
  deliver_sm behind it in the same read is looked at (issue 8: it was refused ESME_RINVBNDSTS).
- The pump executes the events it gets back and decides nothing: `Send` (write this PDU), `Refused`
  (write the answer, if any, and log), `Deliver` (hand to the application, then write `answer()`),
  `Settled` / `Expired` (a request's fate), `Stray` (log), `Close` (end the link).
- Everything that changes the bind state goes through `handle(event)` and the TRANSITIONS table,
  including what sending (`request`) and answers (bind_resp, unbind_resp) imply; an event the
  table does not list for the current state is a ProtocolError.
- Which requests may be sent and which the peer may send depend on the state and the bind type
  (MAY_SEND, MAY_RECEIVE); what each request the peer may send gets is the ON_REQUEST table.
- A request we take but cannot take now (its state or bind type) is answered ESME_RX_T_APPN,
  temporary: the SMSC retries later or on another bind, and loses nothing. A command an ESME never
  takes gets generic_nack ESME_RINVCMDID; an undecodable one the generic_nack its BadPdu names.
- Time is a number handed in (`now`); nothing here reads a clock or sleeps. `tick(now)` says what
  time alone brings (late requests, a dead link, the enquire_link every `keepalive` seconds) and
  `next_deadline()` when the pump should call it again.
- Requests in flight are kept until their response, their deadline (`expire`) or the end of the
  link (`abandon`). Windowed requests (messages) count against the window; others do not. A missed
  enquire_link or unbind, or DEAD_AFTER_TIMEOUTS misses in a row, mean the link is dead.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.smpp.pdu import (
    ESME_RBINDFAIL,
    ESME_RINVCMDID,
    ESME_ROK,
    ESME_RX_T_APPN,
    MAX_SEQUENCE,
    BadPdu,
    Framer,
    Pdu,
    generic_nack,
    request,
    response,
)

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
# What sending a request does to the state.
ON_SENT: dict[str, str] = {"unbind": UNBIND_SENT} | {f"bind_{kind}": BIND_SENT for kind in BIND_TYPES}
DEAD_AFTER_TIMEOUTS = 3  # responses missed in a row before the link counts as dead
NO_ANSWER = frozenset({"alert_notification"})  # SMPP 3.4 4.12.1: it has no response PDU


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


# -- what the session hands the pump -------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """Write this PDU: a protocol answer the session decided on."""

    pdu: Pdu


@dataclass(frozen=True)
class Refused:
    """A request refused: write `answer` (None: the command has no response) and log `reason`."""

    answer: Pdu | None
    command: str
    sequence: int
    reason: str


@dataclass(frozen=True)
class Deliver:
    """A deliver_sm / data_sm for the application; write `Session.answer(pdu, status)` once it decided."""

    pdu: Pdu


@dataclass(frozen=True)
class Settled:
    """`pdu` answers the request `pending` (its token is the caller's)."""

    pending: Pending
    pdu: Pdu


@dataclass(frozen=True)
class Expired:
    """No answer to `pending` before its deadline."""

    pending: Pending


@dataclass(frozen=True)
class Stray:
    """A response that answers nothing in flight: logged, never answered (SMPP 3.4 2.7)."""

    pdu: Pdu


@dataclass(frozen=True)
class Close:
    """End the link now (after writing what came before)."""

    reason: str


Event = Send | Refused | Deliver | Settled | Expired | Stray | Close


class Session:
    """One bind's protocol, pure: bytes and requests in, events and PDUs out."""

    def __init__(self, bind: str = "transceiver", window: int = 10, keepalive: float | None = None,
                 response_timeout: float = 10.0):
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
        self._framer = Framer()
        self.missed = 0  # responses missed in a row
        self.bind_status: int | None = None  # the bind_resp's command_status, once it came
        self.keepalive, self.response_timeout = keepalive, response_timeout  # enquire_link every, wait for answers
        self._enquire_at: float | None = None

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

    # -- receiving ---------------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Everything `data` completes, decided PDU by PDU in the order they came."""
        events: list[Event] = []
        for item in self._framer.feed(data):
            events += self.receive(item, now)
        return events

    def receive(self, item: Pdu | BadPdu, now: float) -> list[Event]:
        """What one parsed PDU means: answers to write, a message to hand over, a request settled."""
        if isinstance(item, BadPdu):
            return self._bad(item)
        if item.is_response:
            return self._response(item)
        return self._request(item)

    def _bad(self, bad: BadPdu) -> list[Event]:
        events: list[Event] = []
        if not bad.is_response:
            command = "?" if bad.command_id is None else f"0x{bad.command_id:08X}"
            events.append(Refused(generic_nack(bad.sequence, bad.status), command, bad.sequence, bad.reason))
        if bad.fatal:
            events.append(Close("framing lost"))
        return events

    def _request(self, pdu: Pdu) -> list[Event]:
        take = ON_REQUEST.get(pdu.command)
        if take is None:
            return [Refused(generic_nack(pdu.sequence, ESME_RINVCMDID), pdu.command, pdu.sequence,
                            "not a request an ESME takes")]
        if not self.may_receive(pdu.command):
            answer = None if pdu.command in NO_ANSWER else response(pdu, ESME_RX_T_APPN)
            return [Refused(answer, pdu.command, pdu.sequence, f"not now: {self.bind} bind, state {self.state}")]
        return take(self, pdu)

    def _on_enquire_link(self, pdu: Pdu) -> list[Event]:
        return [Send(response(pdu))]

    def _on_unbind(self, pdu: Pdu) -> list[Event]:
        self.handle(UNBIND_RECEIVED)
        self.handle(UNBOUND)
        return [Send(response(pdu)), Close("unbound by the SMSC")]

    def _on_message(self, pdu: Pdu) -> list[Event]:
        return [Deliver(pdu)]

    def _on_alert(self, pdu: Pdu) -> list[Event]:
        return []  # nothing waits for the subscriber's availability; it has no response

    def answer(self, pdu: Pdu, status: int) -> Pdu | None:
        """The response to a delivered `pdu` with the application's status; None once the link is gone."""
        if self.state == CLOSED:
            return None
        return response(pdu, status)

    def _response(self, pdu: Pdu) -> list[Event]:
        pending = self.settle(pdu)
        if pending is None:
            return [Stray(pdu)]
        self.missed = 0
        then = ON_ANSWER.get(pending.command)
        after = then(self, pdu) if then is not None else []
        return [Settled(pending, pdu), *after]

    def _bind_answered(self, pdu: Pdu) -> list[Event]:
        nacked = pdu.command == "generic_nack" and pdu.status == ESME_ROK  # a nack that says nothing
        self.bind_status = ESME_RBINDFAIL if nacked else pdu.status
        if self.state == BINDING:  # not after an unbind the SMSC sent before answering the bind
            self.handle(BIND_OK if self.bind_status == ESME_ROK else BIND_FAILED)
        return []

    def _unbind_answered(self, pdu: Pdu) -> list[Event]:
        if self.state == UNBINDING:
            self.handle(UNBOUND)
        return [Close("unbound")]

    # -- sending ---------------------------------------------------------------------------------
    def request(self, command: str, now: float, timeout: float, token: object = None,
                tlvs: dict | None = None, **fields: object) -> tuple[Pending, Pdu]:
        """A request to send now, registered in flight; the state moves as sending it implies."""
        pending = self.start(command, now, timeout, token)
        if command in ON_SENT:
            self.handle(ON_SENT[command])
        return pending, request(command, pending.sequence, tlvs, **fields)

    def tick(self, now: float) -> list[Event]:
        """What time alone brings by `now`: late requests, Close if the link is dead, an enquire_link."""
        events = self.expire(now)
        if self.keepalive is None:
            return events
        if self._enquire_at is None:
            self._enquire_at = now + self.keepalive
        elif now >= self._enquire_at:
            self._enquire_at = now + self.keepalive
            if self.may_send("enquire_link"):  # not while unbinding: the link is ending anyway
                events.append(Send(self.request("enquire_link", now, self.response_timeout)[1]))
        return events

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next (None: nothing is due)."""
        times = [p.deadline for p in self._pending.values()]
        if self._enquire_at is not None:
            times.append(self._enquire_at)
        return min(times, default=None)

    def expire(self, now: float) -> list[Event]:
        """Requests whose deadline passed, and Close if the link is dead."""
        events: list[Event] = []
        for pending in self.expired(now):
            self.missed += 1
            events.append(Expired(pending))
            if pending.command in ("enquire_link", "unbind") or self.missed >= DEAD_AFTER_TIMEOUTS:
                events.append(Close(f"{pending.command} unanswered"))
        return events

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


# What the session does with each request the peer may send, and after each answer we get.
ON_REQUEST: dict[str, Callable[[Session, Pdu], list[Event]]] = {
    "enquire_link": Session._on_enquire_link,
    "unbind": Session._on_unbind,
    "deliver_sm": Session._on_message,
    "data_sm": Session._on_message,
    "alert_notification": Session._on_alert,
}
ON_ANSWER: dict[str, Callable[[Session, Pdu], list[Event]]] = {
    "unbind": Session._unbind_answered,
    **{f"bind_{kind}": Session._bind_answered for kind in BIND_TYPES},
}
