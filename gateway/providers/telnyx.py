"""Telnyx: the Messaging API v2, SMS and MMS, with messaging profiles.

Webhooks (https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks,
https://developers.telnyx.com/api-reference/callbacks/inbound-message,
https://developers.telnyx.com/api-reference/callbacks/delivery-update):
- JSON POSTs signed with Ed25519: `telnyx-signature-ed25519` is the base64 signature (64 bytes) of
  f"{telnyx-timestamp}|{raw body}", `telnyx-timestamp` unix seconds; verified with the account's public
  key (base64, 32 bytes, Mission Control > Keys & Credentials > Public Key). A timestamp more than 300 s
  away from arrival is refused, as Telnyx's SDKs refuse it
  (https://developers.telnyx.com/docs/development/sdk/python/webhooks).
- One URL per messaging profile receives every event, and a send's own `webhook_url` gets its statuses
  too, so the event type decides, not the route: {"data": {"event_type", "id", "occurred_at",
  "payload": {...}}, "meta": {...}}.
  message.received: payload {"id", "from": {"phone_number"}, "to": [{"phone_number"}] (WhatsApp: one
  string), "text", "media": [{"url", "content_type", "size", "hash_sha256"}], "received_at"}.
  message.sent / message.finalized: the outbound message record, payload {"id", "to": [{"phone_number",
  "status"}], "errors": [{"code", "title", "detail"}]}; statuses per the MDR page
  (https://developers.telnyx.com/docs/messaging/messages/message-detail-records). Other event types are
  answered 200 and carry nothing for us.
- Inbound media URLs are Telnyx-hosted, short-lived links that need no credentials
  (https://developers.telnyx.com/docs/messaging/messages/send-receive-mms): no media_headers.
Sending (https://developers.telnyx.com/api-reference/messages/send-a-message):
- POST {api_base}/v2/messages, `Authorization: Bearer <API key>`, JSON {"from", "to", "text",
  "media_urls"?, "webhook_url"?, "messaging_profile_id"?}; 200 {"data": {"id", "to": [{"status"}]}}.
- Errors are {"errors": [{"code", "title", "detail"}]}
  (https://developers.telnyx.com/docs/messaging/messages/error-codes): 40300 "Blocked due to STOP
  message" (HTTP 409, https://developers.telnyx.com/api/errors/40300) is the recipient's opt-out
  (https://developers.telnyx.com/docs/messaging/messages/advanced-opt-in-out); 429 (10011) and 5xx are
  temporary, with Retry-After when given, else x-ratelimit-reset
  (https://developers.telnyx.com/development/api-fundamentals/reliability/rate-limiting).
"""
from __future__ import annotations

import base64
import binascii
import time
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from gateway.fields import MAX_MEDIA, Fields, MalformedWebhook, SignatureError, decode_body, json_object
from gateway.messages import (
    DELIVERED,
    FAILED,
    QUEUED,
    SENT,
    UNDELIVERED,
    InboundSms,
    Media,
    OutboundSms,
    SendError,
    SendResult,
    StatusReport,
)
from gateway.numbers import normalize_number, normalize_sender
from gateway.providers.base import (
    JSON_OK,
    ApiSettings,
    Event,
    HttpUrl,
    Provider,
    Reader,
    Route,
    SenderContext,
    Supports,
    WebhookRequest,
    header,
)
from gateway.providers.ed25519 import SIGNATURE, Ed25519Checker, check_here
from gateway.providers.http import Answer, HttpClient, retry_after

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE = 300  # seconds a webhook's timestamp may be from its arrival, either way (the SDKs' window)
OPT_OUT_CODES = frozenset({"40300"})  # "Blocked due to STOP message": the recipient texted STOP (or END, QUIT...)
MAX_RECIPIENTS = 50  # a group MMS lists every recipient in `to`; more than any group a carrier takes
INBOUND = "message.received"
STATUS_EVENTS = frozenset({"message.sent", "message.finalized"})

# Telnyx's outbound statuses (to[].status), mapped onto ours.
STATUSES = {
    "queued": QUEUED,
    "sending": QUEUED,  # Telnyx is handing it to the carrier: not yet sent
    "sent": SENT,
    "delivered": DELIVERED,
    "read": DELIVERED,  # RCS read receipts
    # Final for Telnyx, but no receipt came: it left for the carrier and we cannot say more.
    "delivery_unconfirmed": SENT,
    "delivery_failed": UNDELIVERED,  # the carrier could not deliver it
    "expired": UNDELIVERED,  # validity lapsed on the way (errors 40005, 40014)
    "sending_failed": FAILED,  # Telnyx could not send it to the carrier
}


class TelnyxSettings(ApiSettings):
    type: Literal["telnyx"]
    api_key: SecretStr = Field(description="a Telnyx API key (Mission Control > Keys & Credentials > API Keys)")
    public_key: str = Field(
        min_length=40, max_length=64,
        description="the account's webhook public key, base64 (Mission Control > Keys & Credentials > Public Key)")
    messaging_profile_id: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="send with this messaging profile (needed for number pools and alphanumeric senders)")
    api_base: HttpUrl = "https://api.telnyx.com"

    @field_validator("public_key")
    @classmethod
    def _ed25519_key(cls, value: str) -> str:
        _public_key(value)
        return value.strip()


def _public_key(value: str) -> bytes:
    """Read a base64 Ed25519 public key as Mission Control shows it; ValueError when it is not one."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key must be base64") from None
    if len(raw) != 32:
        raise ValueError(f"public_key must be 32 bytes of Ed25519 key, got {len(raw)}")
    # checked with libsodium (PyNaCl, as Telnyx's own SDK verifies: gateway.providers.ed25519), half the cost of
    # the `cryptography` package's check; still most of a Telnyx webhook's cost, so made in a helper process.
    return raw


# --- webhooks ---------------------------------------------------------------------------------------


def signed_message(timestamp: str, body: bytes) -> bytes:
    """What Telnyx signs: the timestamp header, a "|", then the raw body."""
    return timestamp.encode("ascii") + b"|" + body


class TelnyxWebhook(Reader):
    """Telnyx's messaging webhooks (every event at one URL) for one connector."""

    reply = JSON_OK

    def __init__(self, connector: str, public_key: str):
        self.connector = connector
        self._key = _public_key(public_key)
        self._checker = Ed25519Checker()

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        self._verify(request)
        return self._read(request)

    async def read(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        """events(), the signature checked in the Ed25519 helper process (most of a Telnyx webhook's cost)."""
        if not await self._checker.check(self._key, *self._signed(request)):
            raise SignatureError(f"bad {SIGNATURE_HEADER}")
        return self._read(request)

    async def close(self) -> None:
        await self._checker.close()

    def _read(self, request: WebhookRequest) -> tuple[Event, ...]:
        text, altered = decode_body(request.body)
        data = Fields(json_object(text), altered=altered).nested("data")
        event_type = data.string("event_type")
        if event_type == INBOUND:
            return (self._message(data.nested("payload"), data, request.body),)
        if event_type in STATUS_EVENTS:
            return (self._status(data.nested("payload")),)
        return ()

    def _message(self, payload: Fields, data: Fields, body: bytes) -> InboundSms:
        media = tuple(
            Media(url=item.short_text("url"),
                  content_type=item.short_text("content_type") if item.data.get("content_type") is not None
                  else "application/octet-stream")
            for item in payload.objects("media", MAX_MEDIA))
        return InboundSms(
            connector=self.connector,
            provider_id=payload.identifier("id"),
            sender=payload.nested("from").number("phone_number", normalize_sender),
            recipient=_recipient(payload),
            text=payload.text("text", allow_empty=bool(media), required=not media),
            received_at=payload.timestamp("received_at") or data.timestamp("occurred_at"),
            media=media,
            original=body if payload.altered else None,
        )

    def _status(self, payload: Fields) -> StatusReport:
        provider_id = payload.identifier("id")
        recipients = payload.objects("to", MAX_RECIPIENTS, required=True)
        if not recipients:
            raise MalformedWebhook(f"field {payload.at('to')!r} lists no recipient", payload.at("to"))
        # We send to one recipient: its entry is the message's status.
        return StatusReport(
            connector=self.connector,
            provider_id=provider_id,
            status=recipients[0].choice("status", STATUSES),
            error=_errors(payload),
            opt_out=any(item.optional_text("code") in OPT_OUT_CODES for item in payload.objects("errors", MAX_MEDIA)),
        )

    def _verify(self, request: WebhookRequest) -> None:
        """The signature checked in this thread (events(); read() has the helper check it)."""
        if not check_here(self._key, *self._signed(request)):
            raise SignatureError(f"bad {SIGNATURE_HEADER}")

    def _signed(self, request: WebhookRequest) -> tuple[bytes, bytes]:
        """What the signature must be of, and the signature, once the headers are well formed and fresh."""
        signature = header(request.headers, SIGNATURE_HEADER)
        timestamp = header(request.headers, TIMESTAMP_HEADER)
        if not signature:
            raise SignatureError(f"missing header {SIGNATURE_HEADER}")
        if not timestamp:
            raise SignatureError(f"missing header {TIMESTAMP_HEADER}")
        # aiohttp reads header bytes that are not ASCII as surrogate escapes: they are simply not ours.
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise SignatureError(f"{TIMESTAMP_HEADER} is not unix seconds")
        now = request.received_at if request.received_at is not None else time.time()
        if abs(now - int(timestamp)) > TOLERANCE:
            raise SignatureError(f"{TIMESTAMP_HEADER} is more than {TOLERANCE}s from now (stale or replayed)")
        try:
            raw = base64.b64decode(signature.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise SignatureError(f"{SIGNATURE_HEADER} is not base64") from None
        if len(raw) != SIGNATURE:
            raise SignatureError(f"{SIGNATURE_HEADER} is not an Ed25519 signature")
        return signed_message(timestamp, request.body), raw


def _recipient(payload: Fields) -> str:
    """Our number: `to` is an array of recipients (SMS, MMS), or one number (WhatsApp's webhooks).
    A group MMS lists every recipient; the first is taken (Telnyx's docs give no order)."""
    if isinstance(payload.data.get("to"), str):
        return payload.number("to", normalize_number)
    recipients = payload.objects("to", MAX_RECIPIENTS, required=True)
    if not recipients:
        raise MalformedWebhook(f"field {payload.at('to')!r} lists no recipient", payload.at("to"))
    return recipients[0].number("phone_number", normalize_number)


def _errors(payload: Fields) -> str | None:
    """Join payload.errors[] ({"code", "title", "detail"}) into one error text."""
    texts = []
    for item in payload.objects("errors", MAX_MEDIA):
        code, title, detail = (item.optional_text(name) for name in ("code", "title", "detail"))
        words = ": ".join(dict.fromkeys(part for part in (title, detail) if part))  # detail may repeat title
        texts.append(": ".join(part for part in (code, words) if part))
    return "; ".join(text for text in texts if text) or None


# --- sending ----------------------------------------------------------------------------------------


class TelnyxSender:
    """Sends SMS and MMS with one Telnyx API key."""

    def __init__(self, api_key: str, api_base: str = "https://api.telnyx.com", timeout: float = 10.0,
                 messaging_profile_id: str | None = None):
        self.url = f"{api_base.rstrip('/')}/v2/messages"
        self.messaging_profile_id = messaging_profile_id
        self._http = HttpClient(timeout, {"Authorization": f"Bearer {api_key}", "Accept": "application/json"})

    async def send(self, sms: OutboundSms) -> SendResult:
        """Create one message."""
        answer = await self._http.post(self.url, json=telnyx_body(sms, self.messaging_profile_id))
        if not answer.ok:
            raise telnyx_error(answer)
        data = answer.field("data")
        provider_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(provider_id, str) or not provider_id:
            raise SendError(f"Telnyx answered {answer.status} without a message id", temporary=False)
        recipients = data.get("to") if isinstance(data, dict) else None
        first = recipients[0] if isinstance(recipients, list) and recipients else None
        status = first.get("status") if isinstance(first, dict) else None
        return SendResult(provider_ids=(provider_id,), status=STATUSES.get(str(status), QUEUED))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()


def telnyx_body(sms: OutboundSms, messaging_profile_id: str | None = None) -> dict[str, object]:
    """The JSON that sends `sms`: text only when there is some (an MMS may be media alone)."""
    body: dict[str, object] = {"from": sms.sender, "to": sms.recipient}
    if sms.text or not sms.media:
        body["text"] = sms.text
    if sms.media:
        body["media_urls"] = list(sms.media)
    if sms.status_callback:
        body["webhook_url"] = sms.status_callback
    if messaging_profile_id:
        body["messaging_profile_id"] = messaging_profile_id
    return body


def telnyx_error(answer: Answer) -> SendError:
    """Turn a Telnyx error answer into a SendError keeping Telnyx's first error code and words."""
    errors = answer.field("errors")
    items = [item for item in errors if isinstance(item, dict)] if isinstance(errors, list) else []
    codes = [str(item.get("code")) for item in items if item.get("code") not in (None, "")]
    first = items[0] if items else {}
    words = [str(first[name]) for name in ("title", "detail") if first.get(name)]
    message = ": ".join(words) or f"Telnyx answered HTTP {answer.status}"
    opt_out = any(code in OPT_OUT_CODES for code in codes)
    error = answer.error(message, code=codes[0] if codes else None, opt_out=opt_out,
                         temporary=False if opt_out else None)
    if error.retry_after is None and answer.status == 429:
        # Telnyx documents x-ratelimit-reset (seconds until the window resets) rather than Retry-After.
        error.retry_after = retry_after(header(answer.headers, "x-ratelimit-reset"))
    return error


# --- the table's row --------------------------------------------------------------------------------


def _sender(conn: TelnyxSettings, context: SenderContext) -> TelnyxSender:
    return TelnyxSender(conn.api_key.get_secret_value(), conn.api_base, context.timeout, conn.messaging_profile_id)


PROVIDER = Provider(
    type="telnyx",
    title="Telnyx",
    settings=TelnyxSettings,
    webhook=lambda conn: TelnyxWebhook(conn.name, conn.public_key),
    sender=_sender,
    supports=Supports(mms_in=True, mms_out=True,
                      signed="telnyx-signature-ed25519 (Ed25519 of timestamp|body, account public key)"),
    media_headers=None,  # Telnyx's inbound media links need no credentials
    status_callbacks=True,  # each send carries webhook_url: its statuses come to .../status
)
