"""Bandwidth: the Messaging API v2, SMS and MMS, through one messaging application.

Webhooks (https://dev.bandwidth.com/docs/messaging/webhooks):
- JSON POSTs whose body is always an ARRAY of events: [{"type", "time", "description", "to",
  "message": {"id", "owner", "applicationId", "time", "segmentCount", "direction", "to": [...],
  "from", "text", "media"?: [urls], "tag"?}, "errorCode"?}]; one body may carry several events, and
  delivery is at least once (the same message id may come again: the chat dedupes on it).
- Types: message-received (inbound), message-sending (MMS only, with MMS receipts on),
  message-delivered, message-failed (with errorCode and description); the SDK's StatusCallbackTypeEnum
  adds message-sent and message-read (RBM). Any other type carries nothing we use: no event.
- The application has an InboundCallbackUrl and an OutboundCallbackUrl (statuses), each with optional
  HTTP Basic credentials (InboundCallbackCreds / OutboundCallbackCreds,
  https://dev.bandwidth.com/docs/account/applications) that Bandwidth sends on every callback: that is
  the authentication, checked here in constant time before the body is read. Bandwidth's HMAC header
  (X-Bandwidth-Signature-SHA-256) belongs to Subscriptions 2.0 (numbers/orders), not to messaging.
- Either URL may get any event type; the route is ignored.
Sending (https://dev.bandwidth.com/docs/messaging/createMessage):
- POST {api_base}/api/v2/users/{accountId}/messages, HTTP Basic with the API user's credentials, JSON
  {"applicationId", "to": [number], "from", "text", "media"?: [urls], "tag"?}; 202 with the message
  {"id", ...}. There is no per-message callback URL: statuses go to the application's OutboundCallbackUrl.
- Errors are JSON {"type", "description", "fieldErrors"?} (https://dev.bandwidth.com/docs/messaging/errors);
  429 (max-message-queue-size-exceeded) and 5xx are temporary.
- Delivery errors come later in message-failed callbacks with a 4-digit errorCode: 4775 "carrier rejected
  due to user opt out" (4475, the same name, appears in third-party copies of the table), 4470 is SPAM, not
  an opt-out. The second digit says who failed: 1-5 Bandwidth, 6-7 the carrier; 9xxx is ambiguous downstream.
Media: inbound media URLs (https://messaging.bandwidth.com/api/v2/users/{accountId}/media/...) need HTTP
Basic with the API credentials (https://dev.bandwidth.com/docs/messaging/media).
"""
from __future__ import annotations

import binascii
import hmac
import json
import mimetypes
import uuid
from base64 import b64decode
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, SecretStr

from gateway.fields import MAX_MEDIA, MAX_SHORT, Fields, MalformedWebhook, SignatureError, decode_body, require_json
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
    Simulated,
    Supports,
    WebhookRequest,
    basic_auth,
    header,
)
from gateway.providers.http import Answer, HttpClient

INBOUND = "message-received"
# Bandwidth's status callback types, mapped onto ours (message-failed is refined by its errorCode).
STATUSES = {
    "message-sending": SENT,
    "message-sent": SENT,
    "message-delivered": DELIVERED,
    "message-read": DELIVERED,
    "message-failed": FAILED,
}
# errorCodes that mean the recipient opted out (STOP): the documented 4775, and 4475 under the same name.
OPT_OUT_CODES = frozenset({"4775", "4475"})
MAX_EVENTS = 100  # more events in one callback than any Bandwidth posts
MAX_DIGITS = 64


class BandwidthSettings(ApiSettings):
    type: Literal["bandwidth"]
    account_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                            description="the account ID shown in the Bandwidth App")
    username: str = Field(min_length=1, max_length=256, description="the API user's username")
    password: SecretStr = Field(min_length=1)
    application_id: str = Field(min_length=1, max_length=64, description="the messaging application's ID")
    callback_username: str = Field(min_length=1, max_length=256,
                                   description="the application's callback credentials' UserId (inbound and outbound)")
    callback_password: SecretStr = Field(min_length=1)
    api_base: HttpUrl = "https://messaging.bandwidth.com"


# --- webhooks ---------------------------------------------------------------------------------------


class BandwidthWebhook(Reader):
    """Bandwidth's messaging callbacks (inbound messages and statuses) for one connector."""

    reply = JSON_OK

    def __init__(self, connector: str, username: str, password: str):
        self.connector = connector
        self._expected = (username.encode("utf-8"), password.encode("utf-8"))

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        self._authenticate(header(request.headers, "Authorization"))
        require_json(header(request.headers, "Content-Type"))
        text, altered = decode_body(request.body)
        events: list[Event] = []
        for n, item in enumerate(_array(text)):
            if not isinstance(item, Mapping):
                raise MalformedWebhook(f"field '[{n}]' must be an object", f"[{n}]")
            event = self._event(Fields(item, altered=altered, prefix=f"[{n}]."), request.body)
            if event is not None:
                events.append(event)
        return tuple(events)

    def _authenticate(self, header: str | None) -> None:
        """Check the callback's HTTP Basic credentials against the application's, in constant time."""
        if not header:
            raise SignatureError("missing header Authorization (the application's callback credentials)")
        scheme, _, encoded = header.strip().partition(" ")
        try:
            decoded = b64decode(encoded.strip().encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            decoded = b""
        user, colon, password = decoded.partition(b":")
        # Both comparisons always run: how far a guess matched never shows in the time taken.
        same_user = hmac.compare_digest(user, self._expected[0])
        same_password = hmac.compare_digest(password, self._expected[1])
        if scheme.lower() != "basic" or not colon or not (same_user and same_password):
            raise SignatureError("bad Authorization: not the application's callback credentials")

    def _event(self, fields: Fields, body: bytes) -> Event | None:
        kind = fields.string("type")
        if kind == INBOUND:
            return self._message(fields, body)
        if kind in STATUSES:
            return self._status(fields, kind)
        return None  # suggestion-response, requested-location-response, ...: nothing the chat uses

    def _message(self, fields: Fields, body: bytes) -> InboundSms:
        message = fields.nested("message")
        media = _media(message)
        # message.owner is our number this copy belongs to (a group message comes once per our number);
        # the top-level "to" says the same; the docs show both, so either is taken.
        ours = (message, "owner") if message.data.get("owner") is not None else (fields, "to")
        return InboundSms(
            connector=self.connector,
            provider_id=message.identifier("id"),
            sender=message.number("from", normalize_sender),
            recipient=ours[0].number(ours[1], normalize_number),
            text=message.text("text", allow_empty=bool(media), required=not media),
            received_at=message.timestamp("time"),
            media=media,
            original=body if fields.altered else None,
        )

    def _status(self, fields: Fields, kind: str) -> StatusReport:
        message = fields.nested("message")
        provider_id = message.identifier("id")
        status, error, opt_out = STATUSES[kind], None, False
        if kind == "message-failed":
            code = _code(fields)
            status = _failed_status(code)
            error = ": ".join(part for part in (code, fields.optional_text("description")) if part) or None
            opt_out = code is not None and str(code) in OPT_OUT_CODES
        return StatusReport(connector=self.connector, provider_id=provider_id, status=status, error=error,
                            opt_out=opt_out)


def _array(text: str) -> list[Any]:
    """Decode a body that must be a JSON array of events, whatever it holds instead."""
    try:
        data = json.loads(text, parse_int=_integer)
    except RecursionError:
        raise MalformedWebhook("body is nested too deeply to be a webhook", "body") from None
    except ValueError as err:
        raise MalformedWebhook(f"body is not valid JSON: {err}", "body") from None
    if not isinstance(data, list):
        raise MalformedWebhook("body is not a JSON array of events", "body")
    if len(data) > MAX_EVENTS:
        raise MalformedWebhook(f"body has more than {MAX_EVENTS} events", "body")
    return data


def _integer(text: str) -> int:
    """A JSON integer, refused (ValueError: not valid JSON here) when longer than any field holds."""
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _code(fields: Fields) -> str | None:
    """The errorCode of a message-failed callback: an integer (a string is taken too), or None."""
    code = fields.optional_text("errorCode")
    if code is not None and not (code.isascii() and code.isdigit()):
        raise MalformedWebhook(f"field {fields.at('errorCode')!r} must be an integer", fields.at("errorCode"))
    return code


def _failed_status(code: str | None) -> str:
    """message-failed as ours: UNDELIVERED when the carrier (x6xx, x7xx) or the downstream (9xxx) failed
    it, FAILED when Bandwidth refused it (or gave no code)."""
    if code and len(code) == 4 and (code[0] == "9" or code[1] in "67"):
        return UNDELIVERED
    return FAILED


def _media(message: Fields) -> tuple[Media, ...]:
    """message.media: URLs only; the content type is guessed from the file name (Bandwidth gives none)."""
    value = message.data.get("media")
    if value is None:
        return ()
    name = message.at("media")
    if not isinstance(value, list) or not all(isinstance(url, str) and 0 < len(url) <= MAX_SHORT for url in value):
        raise MalformedWebhook(f"field {name!r} must be an array of URLs of at most {MAX_SHORT} characters", name)
    if len(value) > MAX_MEDIA:
        raise MalformedWebhook(f"field {name!r} has more than {MAX_MEDIA} items", name)
    return tuple(Media(message.repaired(url), mimetypes.guess_type(url.split("?", 1)[0])[0] or "application/octet-stream")
                 for url in value)


# --- sending ----------------------------------------------------------------------------------------


class BandwidthSender:
    """Sends SMS and MMS with one Bandwidth account and messaging application."""

    def __init__(self, account_id: str, username: str, password: str, application_id: str,
                 api_base: str = "https://messaging.bandwidth.com", timeout: float = 10.0):
        self.url = f"{api_base.rstrip('/')}/api/v2/users/{account_id}/messages"
        self.application_id = application_id
        self._http = HttpClient(timeout, {"Authorization": basic_auth(username, password)})

    async def send(self, sms: OutboundSms) -> SendResult:
        """Create one message; Bandwidth answers 202 (queued) with its id."""
        answer = await self._http.post(self.url, json=bandwidth_body(sms, self.application_id))
        if not answer.ok:
            raise bandwidth_error(answer)
        message_id = answer.field("id")
        if not isinstance(message_id, str) or not message_id:
            raise SendError(f"Bandwidth answered {answer.status} without a message id", temporary=False)
        return SendResult(provider_ids=(message_id,), status=QUEUED)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()


def bandwidth_body(sms: OutboundSms, application_id: str) -> dict[str, Any]:
    """The JSON that creates `sms` as a Bandwidth message, our reference as its tag (echoed in callbacks)."""
    body: dict[str, Any] = {"applicationId": application_id, "to": [sms.recipient], "from": sms.sender,
                            "text": sms.text}
    if sms.media:
        body["media"] = list(sms.media)
    if sms.reference:
        body["tag"] = sms.reference[:1024]
    return body


def bandwidth_error(answer: Answer) -> SendError:
    """Turn a Bandwidth error answer into a SendError keeping its type (the code) and description.

    Bandwidth documents no opt-out refusal at creation (opt-outs come as message-failed 4775); an
    answer that does carry an opt-out errorCode is read as one all the same."""
    kind, code = answer.field("type"), answer.field("errorCode")
    description = answer.field("description") or answer.field("message")  # 404s are {"status", "error", "message"}
    words = [str(description)] if description else [f"Bandwidth answered HTTP {answer.status}"]
    errors = answer.field("fieldErrors")
    words += [f"{e.get('fieldName')}: {e.get('description')}" for e in (errors if isinstance(errors, list) else [])
              if isinstance(e, dict)]
    opt_out = code is not None and str(code) in OPT_OUT_CODES
    return answer.error("; ".join(words), code=code if opt_out else kind, opt_out=opt_out,
                        temporary=False if opt_out else None)


def _media_headers(conn: BandwidthSettings) -> Mapping[str, str]:
    return {"Authorization": basic_auth(conn.username, conn.password.get_secret_value())}


# --- the table's row --------------------------------------------------------------------------------


def _simulate(conn: BandwidthSettings, url: str, sender: str, to: str, text: str, message_id: str) -> Simulated:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {"type": INBOUND, "time": now, "description": "Incoming message received", "to": to,
             "message": {"id": message_id or uuid.uuid4().hex, "owner": to, "applicationId": conn.application_id,
                         "time": now, "segmentCount": 1, "direction": "in", "to": [to], "from": sender,
                         "text": text}}
    return Simulated(f"/webhooks/bandwidth/{conn.name}", json.dumps([event]).encode(), {
        "Authorization": basic_auth(conn.callback_username, conn.callback_password.get_secret_value()),
        "Content-Type": "application/json; charset=utf-8"})


def _sender(conn: BandwidthSettings, context: SenderContext) -> BandwidthSender:
    return BandwidthSender(conn.account_id, conn.username, conn.password.get_secret_value(), conn.application_id,
                           conn.api_base, context.timeout)


PROVIDER = Provider(
    type="bandwidth",
    title="Bandwidth",
    settings=BandwidthSettings,
    webhook=lambda conn: BandwidthWebhook(conn.name, conn.callback_username, conn.callback_password.get_secret_value()),
    sender=_sender,
    supports=Supports(mms_in=True, mms_out=True, signed="HTTP Basic callback credentials set on the application"),
    status_callbacks=False,  # no per-message callback URL: set the application's OutboundCallbackUrl to .../status
    media_headers=_media_headers,
    simulate=_simulate,
)
