"""Webhooks from SMS APIs: signature checks and parsing, raw bytes in, typed values out.

Rules:
- The signature is checked first, on the raw body, before anything is parsed: a request with a
  bad or missing signature raises SignatureError (403) whatever its body is.
- Every other problem raises MalformedWebhook (400) naming the field and what is wrong with it.
- Recipients (our numbers) are strict E.164; senders may be short codes or alphanumeric ids.
- No server code here: the caller hands in the URL, body and headers and writes the answer.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from multidict import MultiDict
from twilio.request_validator import RequestValidator

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
from gateway.numbers import InvalidNumber, normalize_number, normalize_sender

MAX_TEXT = 10_000
MAX_MEDIA = 10
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


class WebhookError(Exception):
    """A webhook we refuse; `status` is the HTTP status to answer, `field` the culprit if any."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class SignatureError(WebhookError):
    """The request is not signed by the provider with our secret."""

    status = 403


class MalformedWebhook(WebhookError):
    """The request is signed but its content is not what the provider documents."""

    status = 400


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


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Sign a request as Twilio does: HMAC-SHA1 of the URL and the sorted params, base64."""
    return RequestValidator(auth_token).compute_signature(url, params)


def twilio_routing(body: bytes) -> TwilioRouting:
    """Peek at the account fields of an unverified body, to choose the connector that checks it."""
    params = twilio_params(body)
    return TwilioRouting(params.get("AccountSid"), params.get("MessagingServiceSid"), params.get("To"))


class TwilioWebhook:
    """Twilio's incoming-message and status-callback webhooks for one connector."""

    reply = WebhookReply(
        200, b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml"
    )

    def __init__(self, connector: str, auth_token: str, *, account_sid: str | None = None):
        self.connector = connector
        self.account_sid = account_sid
        self._validator = RequestValidator(auth_token)

    def parse_message(self, url: str, body: bytes, headers: Mapping[str, str]) -> InboundSms:
        """Verify and read an incoming message; `url` is the exact public URL Twilio called."""
        fields = _Fields(self.verify(url, body, headers))
        media = _twilio_media(fields)
        return InboundSms(
            connector=self.connector,
            provider_id=fields.first("MessageSid", "SmsSid"),
            sender=fields.number("From", normalize_sender),
            recipient=fields.number("To", normalize_number),
            text=fields.text("Body", allow_empty=bool(media), required=not media),
            media=media,
        )

    def parse_status(self, url: str, body: bytes, headers: Mapping[str, str]) -> StatusReport:
        """Verify and read a status callback for a message we sent."""
        fields = _Fields(self.verify(url, body, headers))
        name = "MessageStatus" if "MessageStatus" in fields.data else "SmsStatus"
        return StatusReport(
            connector=self.connector,
            provider_id=fields.first("MessageSid", "SmsSid"),
            status=fields.choice(name, TWILIO_STATUSES),
            error=_twilio_error(fields.data.get("ErrorCode"), fields.data.get("ErrorMessage")),
        )

    def verify(self, url: str, body: bytes, headers: Mapping[str, str]) -> MultiDict[str]:
        """Check X-Twilio-Signature over the URL and the raw body; return the form fields."""
        signature = header(headers, TWILIO_SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing header {TWILIO_SIGNATURE_HEADER}")
        params = twilio_params(body)
        if not self._validator.validate(url, params, signature):
            raise SignatureError(f"bad {TWILIO_SIGNATURE_HEADER} for {url}")
        if self.account_sid and params.get("AccountSid") != self.account_sid:
            raise SignatureError(f"AccountSid is not connector {self.connector!r}'s account")
        return params


def _twilio_media(fields: _Fields) -> tuple[Media, ...]:
    """Read NumMedia and its MediaUrlN / MediaContentTypeN pairs."""
    count = fields.integer("NumMedia", 0, MAX_MEDIA)
    return tuple(
        Media(url=fields.required(f"MediaUrl{n}"), content_type=fields.required(f"MediaContentType{n}"))
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

    reply = WebhookReply(200, b"{}", "application/json")

    def __init__(self, connector: str, secret: str):
        self.connector = connector
        self._secret = secret

    def sign(self, body: bytes) -> str:
        """Return the signature header value for `body`."""
        return didchat_signature(self._secret, body)

    def parse_message(self, body: bytes, headers: Mapping[str, str]) -> InboundSms:
        """Verify and read {"id", "from", "to", "text", "timestamp"?}."""
        fields = _Fields(self.verify(body, headers))
        return InboundSms(
            connector=self.connector,
            provider_id=fields.identifier("id"),
            sender=fields.number("from", normalize_sender),
            recipient=fields.number("to", normalize_number),
            text=fields.text("text"),
            received_at=fields.timestamp("timestamp"),
        )

    def parse_status(self, body: bytes, headers: Mapping[str, str]) -> StatusReport:
        """Verify and read {"id", "status", "error"?}; status is one of gateway.messages.STATUSES."""
        fields = _Fields(self.verify(body, headers))
        return StatusReport(
            connector=self.connector,
            provider_id=fields.identifier("id"),
            status=fields.choice("status", {status: status for status in STATUSES}),
            error=fields.optional_text("error"),
        )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """Check X-Didchat-Signature in constant time; return the JSON object."""
        signature = header(headers, DIDCHAT_SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing header {DIDCHAT_SIGNATURE_HEADER}")
        expected = self.sign(body).encode("ascii")
        if not hmac.compare_digest(signature.encode("utf-8"), expected):
            raise SignatureError(f"bad {DIDCHAT_SIGNATURE_HEADER}")
        return _json_object(body)


def _json_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be one JSON object."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MalformedWebhook(f"body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise MalformedWebhook("body is not a JSON object")
    return data


# --- fields -------------------------------------------------------------------------------------


class _Fields:
    """Typed reads of a webhook's fields, each failure naming the field."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data

    def required(self, name: str) -> Any:
        """Return a field that must be present and not null."""
        value = self.data.get(name)
        if value is None:
            raise MalformedWebhook(f"missing field {name!r}", name)
        return value

    def first(self, *names: str) -> str:
        """Return the first non-empty of several alternative string fields."""
        value = next((self.data[n] for n in names if self.data.get(n)), None)
        if value is None:
            raise MalformedWebhook(f"missing field {names[0]!r}", names[0])
        return value

    def string(self, name: str) -> str:
        """Return a field that must be a string."""
        value = self.required(name)
        if not isinstance(value, str):
            raise MalformedWebhook(f"field {name!r} must be a string", name)
        return value

    def identifier(self, name: str) -> str:
        """Return a non-empty id, given as a string or an integer."""
        value = self.required(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value:
            raise MalformedWebhook(f"field {name!r} must be a non-empty string", name)
        return value

    def number(self, name: str, normalize: Callable[[str], str]) -> str:
        """Return a phone number field normalised, or name the field and why it is refused."""
        try:
            return normalize(self.string(name))
        except InvalidNumber as err:
            raise MalformedWebhook(f"field {name!r}: {err}", name) from None

    def text(self, name: str, *, allow_empty: bool = False, required: bool = True) -> str:
        """Return a message text: present, non-empty unless allowed, at most MAX_TEXT characters."""
        if not required and self.data.get(name) is None:
            return ""
        value = self.string(name)
        if not value and not allow_empty:
            raise MalformedWebhook(f"field {name!r} is empty and the message has no media", name)
        if len(value) > MAX_TEXT:
            raise MalformedWebhook(f"field {name!r} is longer than {MAX_TEXT} characters", name)
        return value

    def optional_text(self, name: str) -> str | None:
        """Return an optional short text (an error message or code), or None."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MalformedWebhook(f"field {name!r} must be a string", name)
        return str(value)[:MAX_TEXT]

    def choice(self, name: str, table: Mapping[str, str]) -> str:
        """Return the value a field's value maps to in `table`."""
        value = self.string(name)
        if value not in table:
            allowed = ", ".join(sorted(table))
            raise MalformedWebhook(f"field {name!r}: {value!r} is not one of {allowed}", name)
        return table[value]

    def integer(self, name: str, low: int, high: int, default: int = 0) -> int:
        """Return an optional integer field (int or decimal string) within [low, high]."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if not str(value).isdecimal() or not low <= int(value) <= high:
            raise MalformedWebhook(f"field {name!r} must be an integer from {low} to {high}", name)
        return int(value)

    def timestamp(self, name: str) -> datetime | None:
        """Return an optional time given as ISO 8601 or unix seconds, in UTC when unzoned."""
        value = self.data.get(name)
        if value is None:
            return None
        try:
            return _timestamp(value)
        except (TypeError, ValueError, OverflowError, OSError):
            problem = "must be ISO 8601 or unix seconds"
            raise MalformedWebhook(f"field {name!r}: {value!r} {problem}", name) from None


def _timestamp(value: Any) -> datetime:
    """Read ISO 8601 text or unix seconds; raise ValueError/TypeError otherwise."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
