"""What goes into the engine (events) and what comes out (effects): plain frozen values.

The engine decides; the caller performs effects and answers with events. Nothing here does I/O.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from scenarios.program import SYSTEM_TRIGGERS, TRIGGERS

__all__ = [
    "TRIGGERS", "SYSTEM_TRIGGERS", "Trigger", "CustomerReply", "Timeout", "CallResult",
    "SendReply", "Route", "Notify", "Tag", "Present", "Close", "SetContactFields", "Call", "SaveActivity",
    "SetTimer", "OptOut", "Result",
]


# -- events --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trigger:
    """Something happened to the conversation; `name` is one of TRIGGERS or SYSTEM_TRIGGERS."""
    name: str
    data: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerReply:
    """A customer message answering the run's wait_reply."""
    text: str


@dataclass(frozen=True)
class Timeout:
    """The run's wake_at has passed."""


@dataclass(frozen=True)
class CallResult:
    """The answer to a Call effect (status 0: network error or timeout)."""
    call_id: str
    status: int
    body: object = None


# -- effects -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendReply:
    """Send this text to the customer."""
    text: str


@dataclass(frozen=True)
class Route:
    """Give the conversation to the owner, a user (`name`) or a team's queue (`name`)."""
    target: str
    name: str | None = None


@dataclass(frozen=True)
class Notify:
    """A note for the agent, never sent to the customer."""
    text: str


@dataclass(frozen=True)
class Tag:
    tag: str


@dataclass(frozen=True)
class Present:
    """Present this number (a callback name or a number) in the conversation's replies."""
    number: str


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class SetContactFields:
    """Keep these fields on the contact (from a CRM lookup)."""
    fields: Mapping[str, object]


@dataclass(frozen=True)
class Call:
    """Make this HTTP request and answer with CallResult(call_id, ...); the run waits for it."""
    call_id: str
    method: str
    url: str
    headers: Mapping[str, str]
    body: object | None
    timeout: float


@dataclass(frozen=True)
class SaveActivity:
    """Deliver this activity to the CRM exactly once (outbox, retried until 2xx); `key` is stable."""
    url: str
    headers: Mapping[str, str]
    body: object
    key: str


@dataclass(frozen=True)
class SetTimer:
    """At `at`, feed Trigger("timer", {"name": name})."""
    name: str
    at: datetime


@dataclass(frozen=True)
class OptOut:
    """The contact opted out (True) or back in (False)."""
    opted_out: bool


@dataclass(frozen=True)
class Result:
    """The next state of a conversation's execution, the effects to perform, and when to wake it."""
    run: dict | None
    effects: tuple
    wake_at: datetime | None
