"""What a provider module is: the shape every SMS API takes in didchat, and the connector settings they share.

A provider module (gateway/providers/NAME.py) holds everything of one SMS API, end to end, and ends with
`PROVIDER = Provider(...)`; gateway/providers/__init__.py lists them in PROVIDERS, the only such list.

Rules:
- Settings: each provider's connector settings are a pydantic model subclassing `Settings`, with
  `type: Literal["NAME"]`; credentials are `SecretStr` (sealed in the database, write-only in the API).
- Webhooks: `Webhook.events(request, route)` checks the signature on the raw body first (SignatureError,
  403, before anything is parsed), then reads the body defensively (gateway.fields: every problem a
  MalformedWebhook naming the field, never another exception) and returns what it carried: inbound
  messages, parts of long ones, status reports. A body may carry several (Bandwidth posts arrays), or none
  the chat needs (an event type we do not use): an empty tuple, answered 2xx. `route` is "message" or
  "status", the URL the provider called (`/webhooks/{path}/{connector}[/status]`); a provider that sends
  everything to one URL may ignore it.
  `read(request, route)` is what the node calls: the same answer, with a check too costly for the event loop's
  thread made elsewhere (Telnyx's Ed25519, in gateway.providers.ed25519's helper); readers that have none
  inherit `Reader`'s, which is events(). `close()` ends what a reader runs.
- Senders: `send` hands one message over and returns a SendResult, or raises a SendError whose
  `temporary` says whether to retry, `opt_out` whether the provider refused because the recipient opted
  out (Twilio's 21610), and `retry_after` how long the provider asked us to wait (429's Retry-After).
- Pure where it can be: no database, no agents, nothing of chat/. I/O only in senders and media fetches.
"""
from __future__ import annotations

import base64
import builtins
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.messages import InboundSms, OutboundSms, SendResult, StatusReport
from gateway.numbers import InvalidNumber, normalize_number, number_type

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2000,
                               description="an http:// or https:// address")]


def _e164(value: str) -> str:
    try:
        return normalize_number(str(value))
    except InvalidNumber as err:
        raise ValueError(str(err)) from None


E164 = Annotated[str, AfterValidator(_e164)]
NumberType = Literal["long_code", "toll_free", "short_code"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(Strict):
    """What every connector has: its type (the provider), its name, the numbers it owns, its pace."""

    type: str
    name: Name
    numbers: tuple[E164, ...] = ()


class Pace(Strict):
    """How fast a connector may send, in segments per second (0: no limit), kept across nodes by the chat: per
    sender number by its type (carriers' defaults for US numbers: a long code about 1, toll-free 3, a short code
    30 and more), per number where `numbers` says, and for the whole connector (an account's own limit)."""

    long_code: float = Field(default=1.0, ge=0)
    toll_free: float = Field(default=3.0, ge=0)
    short_code: float = Field(default=30.0, ge=0)
    numbers: dict[E164, float] = Field(default_factory=dict, description="number -> its own segments per second")
    connector: float = Field(default=0.0, ge=0, description="every send of the connector together; 0: no limit")

    def rates(self, connector: str, sender: str) -> tuple[tuple[str, float], ...]:
        """The limits a send from `sender` falls under: (key, segments per second), keys the same on every node."""
        own = self.numbers.get(sender)
        rate = own if own is not None else getattr(self, number_type(sender))
        limits = ((f"number:{sender}", rate), (f"connector:{connector}", self.connector))
        return tuple((key, r) for key, r in limits if r > 0)


NO_PACE = Pace(long_code=0, toll_free=0, short_code=0)


class ApiSettings(Settings):
    """An SMS API's connector: the settings every REST provider has besides its credentials."""

    pace: Pace = Field(default_factory=Pace, description="segments per second it may send (carriers' limits)")


Route = Literal["message", "status"]


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as it arrived: the exact public URL the provider called (with its query), raw body, headers."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    method: str = "POST"
    received_at: float | None = None  # unix time of arrival (stale timestamps are judged against it); None: now


@dataclass(frozen=True)
class Part:
    """One part of a long inbound message that the provider sends in parts (Vonage's SMS API): the chat
    keeps it and joins the parts, in `number` order, into one message once all `total` have come."""

    sms: InboundSms  # this part: its own provider_id, its text
    reference: str  # the same for every part of one message from one sender
    number: int  # 1 .. total
    total: int


Event = InboundSms | Part | StatusReport


@dataclass(frozen=True)
class WebhookReply:
    """What to answer a webhook we accepted."""

    status: int
    body: bytes
    content_type: str


JSON_OK = WebhookReply(200, b'{"ok":true}', "application/json")
EMPTY_OK = WebhookReply(204, b"", "text/plain")


class Webhook(Protocol):
    """One connector's signature-checking webhook reader."""

    connector: str
    reply: WebhookReply  # the answer to a webhook we accepted

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        """Verify the request, then read it (the rules above)."""
        ...

    async def read(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        """events(), its costly checks made off the event loop's thread where the reader can (the node calls this)."""
        ...

    async def close(self) -> None:
        """Release what the reader runs (a helper process); it may not be used afterwards."""
        ...


class Reader:
    """What a webhook reader whose checks are all cheap inherits: read() is events(), nothing to close."""

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        raise NotImplementedError

    async def read(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        return self.events(request, route)

    async def close(self) -> None:
        return None


class Sender(Protocol):
    """What the outbox needs of any connector's sender."""

    async def send(self, sms: OutboundSms) -> SendResult:
        """Hand one message to the provider."""
        ...

    async def close(self) -> None:
        """Release connections; the sender may not be used afterwards."""
        ...


@dataclass(frozen=True)
class SenderContext:
    """What a sender may need from the node: where it reports statuses it learns itself (the loopback)."""

    report: Callable[[StatusReport], Awaitable[None]]
    timeout: float = 10.0


@dataclass(frozen=True)
class Supports:
    """What a provider can do, for the docs' table and for refusing what it cannot with a plain reason."""

    mms_in: bool = False
    mms_out: bool = False
    receipts: bool = True
    signed: str = ""  # how its webhooks are authenticated, in a few words


@dataclass(frozen=True)
class Simulated:
    """A signed inbound webhook built for `didchat simulate sms` (the demo, trials)."""

    path: str  # below public_url
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Provider:
    """One SMS API: its settings model, webhook reader, sender and what it supports."""

    type: str  # the connector `type` in configuration
    title: str
    settings: builtins.type[Settings]
    sender: Callable[[Any, SenderContext], Sender]
    webhook: Callable[[Any], Webhook] | None = None
    supports: Supports = field(default_factory=Supports)
    path: str = ""  # the webhook URLs' segment: /webhooks/{path}/{connector} (default: type)
    status_callbacks: bool = True  # sends ask for statuses at /webhooks/{path}/{connector}/status
    media_headers: Callable[[Any], Mapping[str, str]] | None = None  # credentials to fetch inbound media
    # With supports.mms_out, connectors whose settings still send no MMS: what to call them then (Vonage's SMS API).
    no_mms_out: Callable[[Any], str | None] | None = None
    simulate: Callable[[Any, str, str, str, str, str], Simulated] | None = None  # (settings, url, from, to, text, id)

    @property
    def url_path(self) -> str:
        return self.path or self.type

    def media_refusal(self, settings: Any) -> str | None:
        """What this connector is, when it cannot send attachments (MMS), for the agent's refusal; None when it can."""
        if not self.supports.mms_out:
            return self.title
        return self.no_mms_out(settings) if self.no_mms_out is not None else None

    def status_url(self, public_url: str, connector: str) -> str | None:
        """Where this connector's provider should post delivery statuses (None: it posts none)."""
        if not self.status_callbacks:
            return None
        return f"{public_url.rstrip('/')}/webhooks/{self.url_path}/{connector}/status"


_CASE_BLIND = (CIMultiDict, CIMultiDictProxy)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by its name in any case, from any mapping (aiohttp's headers, or a test's dict)."""
    value = headers.get(name)
    if value is not None or isinstance(headers, _CASE_BLIND):  # aiohttp's: get() already ignored the case
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def basic_auth(user: str, password: str) -> str:
    """An HTTP Basic Authorization header value (without importing aiohttp, which `simulate sms` must not wait for)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def e164_digits(value: str) -> str:
    """A number some providers write without its `+` ("447700900001"): E.164 with it; others unchanged."""
    return f"+{value}" if value.isdigit() and len(value) > 8 else value
