"""What crosses the gateway's edge: inbound messages, status reports, outbound requests.

Rule: these are plain frozen values. The gateway never stores them; it hands them to a
callback (inbound) or takes them from the caller (outbound).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Statuses of an outbound message, the same for every connector.
QUEUED, SENT, DELIVERED, UNDELIVERED, FAILED = "queued", "sent", "delivered", "undelivered", "failed"
STATUSES = (QUEUED, SENT, DELIVERED, UNDELIVERED, FAILED)
FINAL_STATUSES = frozenset({DELIVERED, UNDELIVERED, FAILED})


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str


@dataclass(frozen=True)
class InboundSms:
    """One inbound (MO) message as the provider gave it, numbers normalised."""

    connector: str
    provider_id: str
    sender: str  # E.164, or a short code / alphanumeric kept as given
    recipient: str  # E.164: one of our access numbers
    text: str
    received_at: datetime | None = None
    media: tuple[Media, ...] = field(default=())
    # The payload as received (JSON text, form body or PDU short_message bytes), kept when the text
    # had to be changed to be storable (gateway.text.storable), so nothing the sender sent is lost.
    original: bytes | None = None


@dataclass(frozen=True)
class StatusReport:
    """A delivery status for a message we sent, keyed by the provider's id for it."""

    connector: str
    provider_id: str
    status: str  # one of STATUSES
    error: str | None = None
    opt_out: bool = False  # the provider did not deliver it because the recipient opted out with it (texted STOP)


@dataclass(frozen=True)
class OutboundSms:
    """A message to send. `reference` is our id for it, echoed where the provider allows."""

    connector: str
    sender: str
    recipient: str
    text: str
    reference: str
    status_callback: str | None = None
    media: tuple[str, ...] = ()  # URLs the provider fetches the attachments from (MMS)


@dataclass(frozen=True)
class SendResult:
    provider_ids: tuple[str, ...]
    status: str = QUEUED


class SendError(Exception):
    """A send that did not go through. `temporary` errors are retried by the caller, after `retry_after`
    seconds when the provider said how long (429's Retry-After); `opt_out` says the provider refused
    because the recipient opted out with it (Twilio's 21610), which the chat records as an opt-out."""

    def __init__(self, message: str, *, temporary: bool, code: str | None = None, opt_out: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.temporary = temporary
        self.code = code
        self.opt_out = opt_out
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message
