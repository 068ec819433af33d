"""Webhooks from SMS APIs: signature checks and parsing, raw bytes in, typed values out.

Rules:
- The signature is checked first, on the raw body, before anything is parsed: a request with a
  bad or missing signature raises SignatureError (403) whatever its body is.
- Every other problem raises MalformedWebhook (400) naming the field (or "body") and what is
  wrong with it, whatever the body holds: bodies are parsed defensively in one place (`_decode`,
  `_json_object`, `_Fields`): nesting too deep, integers too long for int(), ids, numbers and
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
import json
import re
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
from gateway.text import storable

MAX_TEXT = 10_000
MAX_MEDIA = 10
MAX_ID = 128  # messages.provider_id is VARCHAR(128): a longer id could never be stored
MAX_NUMBER = 64  # longer than any phone number, short code or sender id (and than phonenumbers reads)
MAX_SHORT = 2_048  # a media URL or content type
MAX_DIGITS = 64  # no field we read holds a longer integer; int() refuses 4,300 digits and more
_DECIMAL = re.compile(r"[0-9]{1,18}")  # a count in a form field: ASCII digits, bounded before int()
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


class UnsupportedMediaType(WebhookError):
    """The request is signed but its body is not of the content type the webhook takes."""

    status = 415


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


def _utf8_form(body: bytes) -> bool:
    """Whether a form body reads as UTF-8 throughout, raw and percent-encoded bytes alike."""
    try:
        parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


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
        fields = _Fields(self.verify(url, body, headers), altered=not _utf8_form(body))
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
        fields = _Fields(self.verify(url, body, headers))
        name = "MessageStatus" if "MessageStatus" in fields.data else "SmsStatus"
        return StatusReport(
            connector=self.connector,
            provider_id=fields.first("MessageSid", "SmsSid"),
            status=fields.choice(name, TWILIO_STATUSES),
            error=_twilio_error(fields.optional_text("ErrorCode"), fields.optional_text("ErrorMessage")),
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

    def _fields(self, body: bytes, headers: Mapping[str, str]) -> _Fields:
        """The verified body's fields, knowing whether its text had to be decoded with replacements."""
        signature = header(headers, DIDCHAT_SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing header {DIDCHAT_SIGNATURE_HEADER}")
        expected = self.sign(body).encode("ascii")
        # aiohttp reads header bytes that are not UTF-8 as surrogate escapes; they must not raise here.
        if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected):
            raise SignatureError(f"bad {DIDCHAT_SIGNATURE_HEADER}")
        _require_json(header(headers, "Content-Type"))
        text, altered = _decode(body)
        return _Fields(_json_object(text), altered=altered)


def _require_json(content_type: str | None) -> None:
    """Refuse a body that does not say it is JSON (RFC 8259 JSON is UTF-8, parameters aside)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        got = _shown(content_type) if content_type else "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {got}", "Content-Type")


def _decode(body: bytes) -> tuple[str, bool]:
    """The body as UTF-8 text, bytes that are not UTF-8 read as U+FFFD; whether any were."""
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace"), True


@dataclass(frozen=True)
class _LongInteger:
    """A JSON integer with more digits than any field may hold, kept unconverted."""

    digits: int

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def _json_integer(text: str) -> int | _LongInteger:
    """Convert a JSON integer, unless it is too long to be any field's value (or for int())."""
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_DIGITS else _LongInteger(digits)


def _json_object(text: str) -> dict[str, Any]:
    """Decode a body that must be one JSON object, whatever it holds instead."""
    try:
        data = json.loads(text, parse_int=_json_integer)
    except RecursionError:
        raise MalformedWebhook("body is nested too deeply to be a webhook", "body") from None
    except ValueError as err:  # JSONDecodeError, and anything a number's conversion raises
        raise MalformedWebhook(f"body is not valid JSON: {err}", "body") from None
    if not isinstance(data, dict):
        raise MalformedWebhook("body is not a JSON object", "body")
    return data


def _shown(value: Any, limit: int = 40) -> str:
    """A value for an error message: its repr (escapes NULs and surrogates), cut short."""
    if isinstance(value, list | dict):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# --- fields -------------------------------------------------------------------------------------


class _Fields:
    """Typed reads of a webhook's fields, each failure naming the field.

    `altered` says whether anything read so far had to change to be storable (or was decoded
    with replacements): then the caller keeps the original payload.
    """

    def __init__(self, data: Mapping[str, Any], *, altered: bool = False):
        self.data = data
        self.altered = altered

    def required(self, name: str) -> Any:
        """Return a field that must be present and not null."""
        value = self.data.get(name)
        if value is None:
            raise MalformedWebhook(f"missing field {name!r}", name)
        return value

    def first(self, *names: str) -> str:
        """Return the first non-empty of several alternative id fields."""
        name = next((n for n in names if self.data.get(n)), None)
        if name is None:
            raise MalformedWebhook(f"missing field {names[0]!r}", names[0])
        return self.identifier(name)

    def repaired(self, value: str) -> str:
        """Return `value` as the store can hold it (gateway.text.storable), noting when it had to change."""
        value, changed = storable(value)
        self.altered = self.altered or changed
        return value

    def string(self, name: str) -> str:
        """Return a field that must be a string."""
        value = self.required(name)
        if not isinstance(value, str):
            raise MalformedWebhook(f"field {name!r} must be a string", name)
        return value

    def identifier(self, name: str) -> str:
        """Return a non-empty id, given as a string or an integer, exactly as the provider gave it."""
        value = self.required(name)
        if isinstance(value, _LongInteger):
            raise MalformedWebhook(f"field {name!r} is {value!r}; an id has at most {MAX_ID} characters", name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value:
            raise MalformedWebhook(f"field {name!r} must be a non-empty string", name)
        if len(value) > MAX_ID:
            raise MalformedWebhook(f"field {name!r} is longer than {MAX_ID} characters", name)
        if storable(value)[1]:  # an id must match the provider's exactly: it cannot be repaired
            raise MalformedWebhook(f"field {name!r} holds U+0000 or a lone surrogate, which no id may", name)
        return value

    def number(self, name: str, normalize: Callable[[str], str]) -> str:
        """Return a phone number field normalised, or name the field and why it is refused."""
        value = self.string(name)
        if len(value) > MAX_NUMBER:
            raise MalformedWebhook(f"field {name!r} is longer than {MAX_NUMBER} characters", name)
        try:
            return normalize(value)
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
        return self.repaired(value)

    def short_text(self, name: str) -> str:
        """Return a required short text (a media URL or content type), made storable."""
        value = self.string(name)
        if len(value) > MAX_SHORT:
            raise MalformedWebhook(f"field {name!r} is longer than {MAX_SHORT} characters", name)
        return self.repaired(value)

    def optional_text(self, name: str) -> str | None:
        """Return an optional short text (an error message or code), made storable, or None."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MalformedWebhook(f"field {name!r} must be a string", name)
        return storable(str(value)[:MAX_TEXT])[0]

    def choice(self, name: str, table: Mapping[str, str]) -> str:
        """Return the value a field's value maps to in `table`."""
        value = self.string(name)
        if value not in table:
            allowed = ", ".join(sorted(table))
            raise MalformedWebhook(f"field {name!r}: {_shown(value)} is not one of {allowed}", name)
        return table[value]

    def integer(self, name: str, low: int, high: int, default: int = 0) -> int:
        """Return an optional integer field (int or decimal string) within [low, high]."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        # Digits are counted before int(): int() of 4,300 digits or more raises ValueError.
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not _DECIMAL.fullmatch(text) or not low <= int(text) <= high:
            raise MalformedWebhook(f"field {name!r} must be an integer from {low} to {high}", name)
        return int(text)

    def timestamp(self, name: str) -> datetime | None:
        """Return an optional time given as ISO 8601 or unix seconds, in UTC when unzoned."""
        value = self.data.get(name)
        if value is None:
            return None
        try:
            return _timestamp(value)
        except (TypeError, ValueError, OverflowError, OSError):
            problem = "must be ISO 8601 or unix seconds"
            raise MalformedWebhook(f"field {name!r}: {_shown(value)} {problem}", name) from None


def _timestamp(value: Any) -> datetime:
    """Read ISO 8601 text or unix seconds; raise ValueError/TypeError otherwise."""
    if isinstance(value, bool | _LongInteger):
        raise TypeError(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
