"""Webhooks from SMS APIs: signature checks and parsing, raw bytes in, typed values out.

Rules:
- The signature is checked first, on the raw body, before anything is parsed: a request with a
  bad or missing signature raises SignatureError (403) whatever its body is.
- Every other problem raises MalformedWebhook (400) naming the field (or "body") and what is
  wrong with it, whatever the body holds: bodies are parsed defensively in one place (`_decode`,
  `_json_object`, `Fields`): nesting too deep, integers too long for int(), ids, numbers and
  texts too long for their columns are all 400s, never an exception the server did not expect.
- The generic webhook takes only application/json (UnsupportedMediaType, 415, after the signature).
- Every decodable message is stored: text-like fields that reach the store (text, media, error
  texts) go through `gateway.text.storable`, and when any had to change (or the body was not
  valid UTF-8) the raw body is kept as `InboundSms.original`. Fields that must stay exact (ids,
  numbers, statuses) are refused instead, naming the field.
- Recipients (our numbers) are strict E.164; senders may be short codes or alphanumeric ids.
- No server code here: the caller hands in the URL, body and headers and writes the answer.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlparse

from multidict import MultiDict
from twilio.request_validator import RequestValidator, add_port, compare, remove_port

from gateway.fields import (
    MAX_MEDIA,
    Fields,
    SignatureError,
    decode_body,
    json_object,
    require_json,
)
from gateway.fields import MalformedWebhook as MalformedWebhook  # the refusals, for callers of this module
from gateway.fields import UnsupportedMediaType as UnsupportedMediaType
from gateway.fields import WebhookError as WebhookError
from gateway.messages import (
    DELIVERED,
    FAILED,
    QUEUED,
    SENT,
    STATUSES,
    UNDELIVERED,
    InboundSms,
    Media,
    StatusReport,
)
from gateway.numbers import normalize_number, normalize_sender

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
DIDCHAT_SIGNATURE_HEADER = "X-Didchat-Signature"

# Twilio's message statuses, mapped onto ours.
TWILIO_STATUSES = {
    "accepted": QUEUED,
    "queued": QUEUED,
    "scheduled": QUEUED,
    "sending": SENT,
    "sent": SENT,
    "delivered": DELIVERED,
    "read": DELIVERED,
    "undelivered": UNDELIVERED,
    "failed": FAILED,
    "canceled": FAILED,
}



@dataclass(frozen=True)
class WebhookReply:
    """What to answer a webhook we accepted."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class TwilioRouting:
    """Unverified routing hints from a Twilio body, only to pick whose token verifies it."""

    account_sid: str | None
    messaging_service_sid: str | None
    to: str | None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up case-insensitively in any mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)



# --- Twilio -----------------------------------------------------------------------------------


def twilio_params(body: bytes) -> MultiDict[str]:
    """Read a form-encoded body as Twilio signs it: every field, blank values included."""
    text = body.decode("utf-8", errors="replace")
    return MultiDict(parse_qsl(text, keep_blank_values=True))


def _form(body: bytes) -> tuple[MultiDict[str], bool]:
    """The fields as twilio_params reads them, and whether the body was not UTF-8 throughout (raw
    and percent-encoded bytes alike): one parse when it is, the usual case."""
    try:
        return MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")), False
    except UnicodeDecodeError:
        return twilio_params(body), True


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Sign a request as Twilio does: HMAC-SHA1 of the URL and the sorted params, base64."""
    return RequestValidator(auth_token).compute_signature(url, params)


def twilio_routing(body: bytes) -> TwilioRouting:
    """Peek at the account fields of an unverified body, to choose the connector that checks it."""
    params = twilio_params(body)
    return TwilioRouting(params.get("AccountSid"), params.get("MessagingServiceSid"), params.get("To"))


class TwilioWebhook:
    """Twilio's incoming-message and status-callback webhooks for one connector."""

    recipient_field = "To"

    reply = WebhookReply(
        200, b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml"
    )

    def __init__(self, connector: str, auth_token: str, *, account_sid: str | None = None):
        self.connector = connector
        self.account_sid = account_sid
        self._validator = RequestValidator(auth_token)

    def parse_message(self, url: str, body: bytes, headers: Mapping[str, str]) -> InboundSms:
        """Verify and read an incoming message; `url` is the exact public URL Twilio called."""
        params, altered = self._checked(url, body, headers)
        fields = Fields(params, altered=altered)
        media = _twilio_media(fields)
        return InboundSms(
            connector=self.connector,
            provider_id=fields.first("MessageSid", "SmsSid"),
            sender=fields.number("From", normalize_sender),
            recipient=fields.number("To", normalize_number),
            text=fields.text("Body", allow_empty=bool(media), required=not media),
            media=media,
            original=body if fields.altered else None,
        )

    def parse_status(self, url: str, body: bytes, headers: Mapping[str, str]) -> StatusReport:
        """Verify and read a status callback for a message we sent."""
        fields = Fields(self.verify(url, body, headers))
        name = "MessageStatus" if "MessageStatus" in fields.data else "SmsStatus"
        return StatusReport(
            connector=self.connector,
            provider_id=fields.first("MessageSid", "SmsSid"),
            status=fields.choice(name, TWILIO_STATUSES),
            error=_twilio_error(fields.optional_text("ErrorCode"), fields.optional_text("ErrorMessage")),
        )

    def verify(self, url: str, body: bytes, headers: Mapping[str, str]) -> MultiDict[str]:
        """Check X-Twilio-Signature over the URL and the raw body; return the form fields."""
        return self._checked(url, body, headers)[0]

    def _checked(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[MultiDict[str], bool]:
        signature = header(headers, TWILIO_SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing header {TWILIO_SIGNATURE_HEADER}")
        params, altered = _form(body)
        if not self._signed(url, params, signature):
            raise SignatureError(f"bad {TWILIO_SIGNATURE_HEADER} for {url}")
        if self.account_sid and params.get("AccountSid") != self.account_sid:
            raise SignatureError(f"AccountSid is not connector {self.connector!r}'s account")
        return params, altered

    def _signed(self, url: str, params: MultiDict[str], signature: str) -> bool:
        """RequestValidator.validate's answer for a form body: the signature of the URL without its port or
        with it (Twilio signs either). The SDK computes both every time; the second is needed only when the
        first does not match, so the URL as public_url writes it (with its port or without) goes first."""
        parsed = urlparse(url)
        first, second = (add_port, remove_port) if parsed.port is not None else (remove_port, add_port)
        if compare(self._validator.compute_signature(first(parsed), params), signature):
            return True
        return compare(self._validator.compute_signature(second(parsed), params), signature)


def _twilio_media(fields: Fields) -> tuple[Media, ...]:
    """Read NumMedia and its MediaUrlN / MediaContentTypeN pairs."""
    count = fields.integer("NumMedia", 0, MAX_MEDIA)
    return tuple(
        Media(url=fields.short_text(f"MediaUrl{n}"), content_type=fields.short_text(f"MediaContentType{n}"))
        for n in range(count)
    )


def _twilio_error(code: str | None, message: str | None) -> str | None:
    """Join Twilio's ErrorCode and ErrorMessage into one error text."""
    parts = [part for part in (code, message) if part]
    return ": ".join(parts) or None


# --- generic JSON -------------------------------------------------------------------------------


def didchat_signature(secret: str, body: bytes) -> str:
    """Return the X-Didchat-Signature value for `body`: sha256=<hex HMAC-SHA256>."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class GenericWebhook:
    """didchat's generic JSON webhooks, signed with X-Didchat-Signature, for one connector."""

    recipient_field = "to"

    reply = WebhookReply(200, b"{}", "application/json")

    def __init__(self, connector: str, secret: str):
        self.connector = connector
        self._secret = secret

    def sign(self, body: bytes) -> str:
        """Return the signature header value for `body`."""
        return didchat_signature(self._secret, body)

    def parse_message(self, body: bytes, headers: Mapping[str, str]) -> InboundSms:
        """Verify and read {"id", "from", "to", "text", "timestamp"?}."""
        fields = self._fields(body, headers)
        return InboundSms(
            connector=self.connector,
            provider_id=fields.identifier("id"),
            sender=fields.number("from", normalize_sender),
            recipient=fields.number("to", normalize_number),
            text=fields.text("text"),
            received_at=fields.timestamp("timestamp"),
            original=body if fields.altered else None,
        )

    def parse_status(self, body: bytes, headers: Mapping[str, str]) -> StatusReport:
        """Verify and read {"id", "status", "error"?}; status is one of gateway.messages.STATUSES."""
        fields = self._fields(body, headers)
        return StatusReport(
            connector=self.connector,
            provider_id=fields.identifier("id"),
            status=fields.choice("status", {status: status for status in STATUSES}),
            error=fields.optional_text("error"),
        )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Mapping[str, Any]:
        """Check X-Didchat-Signature in constant time, then the content type; return the JSON object."""
        return self._fields(body, headers).data

    def _fields(self, body: bytes, headers: Mapping[str, str]) -> Fields:
        """The verified body's fields, knowing whether its text had to be decoded with replacements."""
        signature = header(headers, DIDCHAT_SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing header {DIDCHAT_SIGNATURE_HEADER}")
        expected = self.sign(body).encode("ascii")
        # aiohttp reads header bytes that are not UTF-8 as surrogate escapes; they must not raise here.
        if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected):
            raise SignatureError(f"bad {DIDCHAT_SIGNATURE_HEADER}")
        require_json(header(headers, "Content-Type"))
        text, altered = decode_body(body)
        return Fields(json_object(text), altered=altered)
