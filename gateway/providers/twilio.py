"""Twilio: Programmable Messaging (the 2010-04-01 REST API), SMS and MMS, with Messaging Services.

Webhooks (https://www.twilio.com/docs/usage/webhooks/messaging-webhooks):
- Form-encoded POSTs signed with X-Twilio-Signature: HMAC-SHA1, keyed with the auth token, of the full
  URL followed by every form field sorted by name (name then value), base64. Twilio signs the URL with
  or without its port; both are accepted (the SDK's RequestValidator does the same).
- Incoming message: MessageSid, AccountSid, MessagingServiceSid?, From, To, Body, NumMedia and
  MediaUrlN / MediaContentTypeN. Status callback: MessageSid, MessageStatus, ErrorCode?, ErrorMessage?.
- The answer is TwiML; an empty <Response/> sends nothing back.
Sending (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
- POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded, HTTP basic auth (sid, token):
  To, From (the agent's number) and/or MessagingServiceSid, Body, MediaUrl (repeated), StatusCallback.
- 201 carries the message resource: `sid` is the provider id, `status` mapped as the callbacks are.
- Errors are JSON {"code", "message", "more_info", "status"}; 21610 means the recipient replied STOP to
  Twilio (an opt-out we record), 429 and 5xx are temporary (with Retry-After when Twilio gives one).
Media: MediaUrlN needs HTTP basic auth with the account's credentials when media auth is on.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlencode, urlparse

from multidict import MultiDict
from pydantic import Field, SecretStr
from twilio.request_validator import RequestValidator, add_port, remove_port

from gateway.fields import MAX_MEDIA, Fields, SignatureError, form_pairs
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
    ApiSettings,
    Event,
    HttpUrl,
    Provider,
    Reader,
    Route,
    Simulated,
    Supports,
    WebhookReply,
    WebhookRequest,
    basic_auth,
    header,
)
from gateway.providers.http import Answer, HttpClient

SIGNATURE_HEADER = "X-Twilio-Signature"
OPT_OUT_CODES = frozenset({"21610"})  # "Attempt to send to unsubscribed recipient"

# Twilio's message statuses, mapped onto ours.
STATUSES = {
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
TWIML_EMPTY = WebhookReply(200, b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")


class TwilioSettings(ApiSettings):
    type: Literal["twilio"]
    account_sid: str = Field(min_length=1, max_length=64)
    auth_token: SecretStr
    messaging_service_sid: str | None = Field(
        default=None, pattern=r"^MG[0-9a-fA-F]{32}$",
        description="send through this Messaging Service (its sender pool, compliance and callbacks) from the agent's number")
    api_base: HttpUrl = "https://api.twilio.com"


# --- webhooks ---------------------------------------------------------------------------------------


def twilio_params(body: bytes) -> MultiDict[str]:
    """Read a form-encoded body as Twilio signs it: every field, blank values included."""
    return MultiDict(form_pairs(body.decode("utf-8", errors="replace"), errors="replace"))


def _form(body: bytes) -> tuple[MultiDict[str], bool]:
    """The fields as twilio_params reads them, and whether the body was not UTF-8 throughout (raw
    and percent-encoded bytes alike): one parse when it is, the usual case."""
    try:
        return MultiDict(form_pairs(body.decode("utf-8"))), False
    except UnicodeDecodeError:
        return twilio_params(body), True


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Sign a request as Twilio does: HMAC-SHA1 of the URL and the sorted params, base64."""
    return RequestValidator(auth_token).compute_signature(url, params)


class TwilioWebhook(Reader):
    """Twilio's incoming-message and status-callback webhooks for one connector."""

    reply = TWIML_EMPTY

    def __init__(self, connector: str, auth_token: str, *, account_sid: str | None = None):
        self.connector = connector
        self.account_sid = account_sid
        self._validator = RequestValidator(auth_token)

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        params, altered = self._checked(request)
        fields = Fields(params, altered=altered)
        return (self._message(fields, request.body) if route == "message" else self._status(fields),)

    def _message(self, fields: Fields, body: bytes) -> InboundSms:
        media = _media(fields)
        return InboundSms(
            connector=self.connector,
            provider_id=fields.first("MessageSid", "SmsSid"),
            sender=fields.number("From", normalize_sender),
            recipient=fields.number("To", normalize_number),
            text=fields.text("Body", allow_empty=bool(media), required=not media),
            media=media,
            original=body if fields.altered else None,
        )

    def _status(self, fields: Fields) -> StatusReport:
        name = "MessageStatus" if "MessageStatus" in fields.data else "SmsStatus"
        return StatusReport(
            connector=self.connector,
            provider_id=fields.first("MessageSid", "SmsSid"),
            status=fields.choice(name, STATUSES),
            error=_error(fields.optional_text("ErrorCode"), fields.optional_text("ErrorMessage")),
            opt_out=fields.optional_text("ErrorCode") in OPT_OUT_CODES,
        )

    def _checked(self, request: WebhookRequest) -> tuple[MultiDict[str], bool]:
        signature = header(request.headers, SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing header {SIGNATURE_HEADER}")
        params, altered = _form(request.body)
        if not self._signed(request.url, params, signature):
            raise SignatureError(f"bad {SIGNATURE_HEADER} for {request.url}")
        if self.account_sid and params.get("AccountSid") != self.account_sid:
            raise SignatureError(f"AccountSid is not connector {self.connector!r}'s account")
        return params, altered

    def _signed(self, url: str, params: MultiDict[str], signature: str) -> bool:
        """RequestValidator.validate's answer for a form body: the signature of the URL without its port or
        with it (Twilio signs either). The SDK computes both every time; the second is needed only when the
        first does not match, so the URL as public_url writes it (with its port or without) goes first. (Compared
        with hmac.compare_digest: the SDK's `compare` is a loop in Python over every character.)"""
        given = signature.encode("utf-8", "surrogateescape")
        first, second = _url_variants(url)
        fields = _signed_fields(params)
        if hmac.compare_digest(self._signature(first + fields), given):
            return True
        return hmac.compare_digest(self._signature(second + fields), given)

    def _signature(self, text: str) -> bytes:
        """RequestValidator.compute_signature's: base64 of the HMAC-SHA1, keyed with the auth token, of `text`."""
        return base64.b64encode(hmac.new(self._validator.token, text.encode("utf-8"), hashlib.sha1).digest())


def _signed_fields(params: MultiDict[str]) -> str:
    """What Twilio signs after the URL (RequestValidator.compute_signature's loop, in one pass over the fields):
    each name, sorted, followed by each of its distinct values, sorted."""
    values: dict[str, set[str]] = {}
    for name, value in params.items():
        values.setdefault(name, set()).add(value)
    return "".join(name + value for name in sorted(values) for value in sorted(values[name]))


@functools.lru_cache(maxsize=256)  # a connector's webhooks all come to the same few URLs
def _url_variants(url: str) -> tuple[str, str]:
    """The URL as Twilio may have signed it: as given first, then with its port added or removed."""
    parsed = urlparse(url)
    first, second = (add_port, remove_port) if parsed.port is not None else (remove_port, add_port)
    return first(parsed), second(parsed)


def _media(fields: Fields) -> tuple[Media, ...]:
    """Read NumMedia and its MediaUrlN / MediaContentTypeN pairs."""
    count = fields.integer("NumMedia", 0, MAX_MEDIA)
    return tuple(
        Media(url=fields.short_text(f"MediaUrl{n}"), content_type=fields.short_text(f"MediaContentType{n}"))
        for n in range(count)
    )


def _error(code: str | None, message: str | None) -> str | None:
    """Join Twilio's ErrorCode and ErrorMessage into one error text."""
    parts = [part for part in (code, message) if part]
    return ": ".join(parts) or None


# --- sending ----------------------------------------------------------------------------------------


class TwilioSender:
    """Sends SMS and MMS with one Twilio account."""

    def __init__(self, account_sid: str, auth_token: str, api_base: str = "https://api.twilio.com",
                 timeout: float = 10.0, messaging_service_sid: str | None = None):
        self.url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.messaging_service_sid = messaging_service_sid
        self._http = HttpClient(timeout, {"Authorization": basic_auth(account_sid, auth_token)})

    async def send(self, sms: OutboundSms) -> SendResult:
        """Create one Message resource."""
        answer = await self._http.post(self.url, data=twilio_form(sms, self.messaging_service_sid))
        if not answer.ok:
            raise twilio_error(answer)
        sid = answer.field("sid")
        if not isinstance(sid, str) or not sid:
            raise SendError(f"Twilio answered {answer.status} without a message sid", temporary=False)
        return SendResult(provider_ids=(sid,), status=STATUSES.get(str(answer.field("status")), QUEUED))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()


def twilio_form(sms: OutboundSms, messaging_service_sid: str | None = None) -> list[tuple[str, str]]:
    """The form fields that create `sms` as a Twilio Message (MediaUrl repeated, one per attachment)."""
    form = [("To", sms.recipient)]
    if _is_messaging_service(sms.sender):
        form.append(("MessagingServiceSid", sms.sender))
    else:
        form.append(("From", sms.sender))
        if messaging_service_sid:
            form.append(("MessagingServiceSid", messaging_service_sid))
    form.append(("Body", sms.text))
    form.extend(("MediaUrl", url) for url in sms.media)
    if sms.status_callback:
        form.append(("StatusCallback", sms.status_callback))
    return form


def twilio_error(answer: Answer) -> SendError:
    """Turn a Twilio error answer into a SendError keeping Twilio's code."""
    code = answer.field("code")
    message = answer.field("message") or f"Twilio answered HTTP {answer.status}"
    return answer.error(str(message), code=code, opt_out=str(code) in OPT_OUT_CODES)


def _is_messaging_service(sender: str) -> bool:
    """Whether a sender is a Messaging Service SID rather than a number."""
    return sender.startswith("MG") and len(sender) == 34


# --- the table's row --------------------------------------------------------------------------------


def _simulate(conn: TwilioSettings, url: str, sender: str, to: str, text: str, message_id: str) -> Simulated:
    path = f"/webhooks/twilio/{conn.name}"
    params = {"MessageSid": message_id or "SM" + uuid.uuid4().hex, "AccountSid": conn.account_sid,
              "From": sender, "To": to, "Body": text, "NumMedia": "0"}
    signature = twilio_signature(conn.auth_token.get_secret_value(), url.rstrip("/") + path, params)
    return Simulated(path, urlencode(params).encode(), {
        SIGNATURE_HEADER: signature, "Content-Type": "application/x-www-form-urlencoded"})


PROVIDER = Provider(
    type="twilio",
    title="Twilio",
    settings=TwilioSettings,
    webhook=lambda conn: TwilioWebhook(conn.name, conn.auth_token.get_secret_value(), account_sid=conn.account_sid),
    sender=lambda conn, context: TwilioSender(conn.account_sid, conn.auth_token.get_secret_value(), conn.api_base,
                                              context.timeout, conn.messaging_service_sid),
    supports=Supports(mms_in=True, mms_out=True, signed="X-Twilio-Signature (HMAC-SHA1 of URL and fields)"),
    media_headers=lambda conn: {"Authorization": basic_auth(conn.account_sid, conn.auth_token.get_secret_value())},
    simulate=_simulate,
)
