"""Plivo: the Messaging API (v1), SMS and MMS from Plivo numbers.

Webhooks (https://www.plivo.com/docs/voice/xml/request/validation and the SDK's
plivo/utils/signature_v3.py, which this follows byte for byte):
- Signed with X-Plivo-Signature-V3 and X-Plivo-Signature-V3-Nonce: base64 HMAC-SHA256, keyed with the
  (sub)account's auth token, of `signed_url + "." + nonce`. For a POST the signed URL is the URL without
  its query, then "?" and the query's fields sorted ("k=v" joined by "&"; then "." when there is a query
  and a body), then the form fields sorted by name, written `namevalue` with nothing between them. A GET
  signs the URL with its query sorted. The header may hold several signatures, comma-separated: any one
  matching is enough. X-Plivo-Signature-Ma-V3 carries the same, keyed with the main account's token
  (https://www.plivo.com/docs/voice/xml/request/validation lists message_url and the message `url` among
  the signed callbacks): a signature in either header made with the connector's token is accepted, so the
  token may be the subaccount's or the main account's. No timestamp is signed: nothing can be judged
  stale. The older X-Plivo-Signature-V2 (which Plivo's messaging page still describes) signs neither the
  body nor the query and is not accepted.
- Incoming message (https://www.plivo.com/docs/messaging/api/message/handling-incoming), form fields (POST)
  or query fields (GET): From, To (digits without "+"), Type (sms, mms, whatsapp; default sms),
  MessageUUID, Text (SMS) or Body (MMS), MediaCount and Media1..MediaN (MMS). The docs number the media
  from 1, Plivo's support article from Media0: both are read. No content type is given for MMS media.
  WhatsApp messages are not ours: read as no event.
- Status callback (https://www.plivo.com/docs/messaging/api/message/message-status-callbacks): MessageUUID,
  ParentMessageUUID? (the first part's UUID for every part of a split message), Status (queued, sent,
  failed, delivered, undelivered, read; older docs also list rejected), ErrorCode (failed/undelivered).
- The answer to the message URL is Plivo XML; an empty <Response/> sends nothing back.
Sending (https://www.plivo.com/docs/messaging/api/message/send-a-message):
- POST {api_base}/v1/Account/{auth_id}/Message/, JSON, HTTP basic auth (auth_id, auth_token): src, dst
  (digits, country code first), text, url + method (the status callback), type "mms" with media_urls.
- 202 {"api_id", "message", "message_uuid": [...]}: every UUID is kept. Errors are {"api_id", "error"}
  with a text and no code; 429 and 5xx are temporary (with Retry-After when given), other 4xx permanent.
- A recipient who replied STOP is not refused by the API: Plivo takes the message (202) and reports it
  `failed` with ErrorCode 200 (https://www.plivo.com/docs/messaging/concepts/dnd-service,
  https://www.plivo.com/docs/messaging/troubleshooting/error-codes). OPT_OUT_CODES names that code; the
  status report's error then starts with "200:".
Media: Plivo documents inbound media URLs (media.plivo.com) as publicly accessible; its Media API
(api.plivo.com/v1/Account/{auth_id}/Media/) takes HTTP basic auth, so media_headers sends it.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode, urlparse, urlunparse

from pydantic import Field, SecretStr

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
    SenderContext,
    Simulated,
    Supports,
    WebhookReply,
    WebhookRequest,
    basic_auth,
    e164_digits,
    header,
)
from gateway.providers.http import Answer, HttpClient

SIGNATURE_HEADER = "X-Plivo-Signature-V3"  # keyed with the token of the account or subaccount the number is in
MAIN_ACCOUNT_HEADER = "X-Plivo-Signature-Ma-V3"  # the same, keyed with the main account's token
SIGNATURE_HEADERS = (SIGNATURE_HEADER, MAIN_ACCOUNT_HEADER)
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"
OPT_OUT_CODES = frozenset({"200"})  # the message was blocked: the recipient replied STOP (Plivo's DND)

# Plivo's message states for outbound messages, mapped onto ours.
STATUSES = {
    "queued": QUEUED,
    "sent": SENT,
    "delivered": DELIVERED,
    "read": DELIVERED,  # WhatsApp only
    "undelivered": UNDELIVERED,
    "failed": FAILED,
    "rejected": FAILED,  # in older docs and the SDK's message_state filter
}
TYPES = {"sms": "sms", "mms": "mms", "whatsapp": "whatsapp"}
PLIVO_XML_EMPTY = WebhookReply(200, b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>',
                               "application/xml")


class PlivoSettings(ApiSettings):
    type: Literal["plivo"]
    auth_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$",
                         description="the account's (or subaccount's) Auth ID")
    auth_token: SecretStr
    api_base: HttpUrl = "https://api.plivo.com"


# --- webhooks ---------------------------------------------------------------------------------------


Params = dict[str, list[str]]


def _params(query: str) -> tuple[Params, bool]:
    """Read form-encoded fields (every value, blank ones too) and whether they were not UTF-8 throughout."""
    try:
        pairs, altered = form_pairs(query), False
    except UnicodeDecodeError:
        pairs, altered = form_pairs(query, errors="replace"), True
    params: Params = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params, altered


def signed_url(method: str, url: str, params: Mapping[str, list[str]]) -> str:
    """The text Plivo signs before ".nonce" (the SDK's construct_get_url / construct_post_url)."""
    base, sorted_query = _url_part(url)
    if method.upper() == "GET":
        params = {}
    if sorted_query or params:
        base += "?" + sorted_query
    if sorted_query and params:
        base += "."
    return base + "".join([name + value for name in sorted(params) for value in sorted(params[name])])


@functools.lru_cache(maxsize=256)  # a connector's POSTed webhooks all come to the same few URLs
def _url_part(url: str) -> tuple[str, str]:
    """The URL without its query, and its query's fields sorted as Plivo signs them (name=value joined by &)."""
    parsed = urlparse(url)
    query, _ = _params(parsed.query)
    sorted_query = "&".join("&".join(f"{name}={value}" for value in sorted(query[name])) for name in sorted(query))
    return urlunparse((parsed.scheme, parsed.netloc, parsed.path, "", "", "")), sorted_query


def plivo_signature(auth_token: str, method: str, url: str, params: Mapping[str, list[str]], nonce: str) -> str:
    """X-Plivo-Signature-V3 for a request: base64 HMAC-SHA256 of the signed URL, ".", the nonce."""
    # The SDK reads the nonce header's UTF-8 bytes one by one as characters, then encodes them as UTF-8.
    nonce_text = nonce.encode("utf-8", "surrogateescape").decode("latin-1")
    message = f"{signed_url(method, url, params)}.{nonce_text}".encode("utf-8", "surrogateescape")
    return base64.b64encode(hmac.new(auth_token.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


class PlivoWebhook(Reader):
    """Plivo's incoming-message and status-callback webhooks for one connector."""

    reply = PLIVO_XML_EMPTY

    def __init__(self, connector: str, auth_token: str):
        self.connector = connector
        self._auth_token = auth_token

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        params, altered = self._checked(request)
        fields = Fields(params, altered=altered)
        if route == "status":
            return (self._status(fields),)
        kind = fields.choice("Type", TYPES) if fields.data.get("Type") else "sms"
        if kind == "whatsapp":
            return ()
        return (self._message(fields, kind, request),)

    def _message(self, fields: Fields, kind: str, request: WebhookRequest) -> InboundSms:
        media = _media(fields)
        names = ("Body", "Text") if kind == "mms" else ("Text", "Body")
        name = next((n for n in names if fields.data.get(n) is not None), names[0])
        return InboundSms(
            connector=self.connector,
            provider_id=fields.identifier("MessageUUID"),
            sender=fields.number("From", lambda value: normalize_sender(e164_digits(value))),
            recipient=fields.number("To", lambda value: normalize_number(e164_digits(value))),
            text=fields.text(name, allow_empty=bool(media), required=not media),
            media=media,
            original=(request.body or request.url.encode("utf-8", "surrogateescape")) if fields.altered else None,
        )

    def _status(self, fields: Fields) -> StatusReport:
        status = fields.choice("Status", STATUSES)
        code = fields.optional_text("ErrorCode")
        return StatusReport(
            connector=self.connector,
            provider_id=fields.first("ParentMessageUUID", "MessageUUID"),
            status=status,
            error=_error(code) if status in (FAILED, UNDELIVERED) else None,
            opt_out=status in (FAILED, UNDELIVERED) and code in OPT_OUT_CODES,
        )

    def _checked(self, request: WebhookRequest) -> tuple[dict[str, str], bool]:
        """Verify the signature over the URL and the raw fields, then return the fields (first values)."""
        signatures = ",".join(filter(None, (header(request.headers, name) for name in SIGNATURE_HEADERS)))
        nonce = header(request.headers, NONCE_HEADER)
        if not signatures:
            raise SignatureError(f"missing header {SIGNATURE_HEADER}")
        if nonce is None:
            raise SignatureError(f"missing header {NONCE_HEADER}")
        get = request.method.upper() == "GET"
        try:
            if get:
                params, altered = _params(urlparse(request.url).query)
            else:
                params, altered = _params(request.body.decode("utf-8", errors="surrogateescape"))
            expected = plivo_signature(self._auth_token, request.method, request.url,
                                       {} if get else params, nonce).encode("ascii")
            offered = signatures.encode("utf-8", "surrogateescape").split(b",")
        except (UnicodeError, ValueError):  # a URL, nonce or header that cannot be what Plivo signed
            raise SignatureError(f"bad {SIGNATURE_HEADER} for {request.url}") from None
        if not any(hmac.compare_digest(candidate, expected) for candidate in offered):
            raise SignatureError(f"bad {SIGNATURE_HEADER} for {request.url}")
        return {name: values[0] for name, values in params.items()}, altered


def _media(fields: Fields) -> tuple[Media, ...]:
    """Read MediaCount and Media1..MediaN (or Media0..MediaN-1, as Plivo's support article numbers them).
    Without MediaCount, every consecutive MediaN present is read. Plivo gives no content type."""
    first = 0 if fields.data.get("Media0") is not None else 1
    if fields.data.get("MediaCount") in (None, ""):
        count = next((n for n in range(MAX_MEDIA + 1) if fields.data.get(f"Media{first + n}") is None), MAX_MEDIA)
    else:
        count = fields.integer("MediaCount", 0, MAX_MEDIA)
    return tuple(Media(url=fields.short_text(f"Media{n}"), content_type="") for n in range(first, first + count))


def _error(code: str | None) -> str | None:
    """Plivo's ErrorCode as an error text, saying so when it is the opt-out code."""
    if code in OPT_OUT_CODES:
        return f"{code}: the recipient opted out (replied STOP); Plivo blocks messages to them"
    return code


# --- sending ----------------------------------------------------------------------------------------


class PlivoSender:
    """Sends SMS and MMS with one Plivo account (or subaccount)."""

    def __init__(self, auth_id: str, auth_token: str, api_base: str = "https://api.plivo.com",
                 timeout: float = 10.0):
        self.url = f"{api_base.rstrip('/')}/v1/Account/{auth_id}/Message/"
        self._http = HttpClient(timeout, {"Authorization": basic_auth(auth_id, auth_token)})

    async def send(self, sms: OutboundSms) -> SendResult:
        """Create one message; Plivo answers with the UUIDs it queued."""
        answer = await self._http.post(self.url, json=plivo_body(sms))
        if not answer.ok:
            raise plivo_error(answer)
        ids = answer.field("message_uuid")
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise SendError(f"Plivo answered {answer.status} without a message_uuid", temporary=False)
        return SendResult(provider_ids=tuple(ids), status=QUEUED)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()


def plivo_body(sms: OutboundSms) -> dict[str, Any]:
    """The JSON that sends `sms`: numbers as digits with their country code, as Plivo writes them."""
    body: dict[str, Any] = {"src": sms.sender.removeprefix("+"), "dst": sms.recipient.removeprefix("+")}
    if sms.text or not sms.media:
        body["text"] = sms.text
    if sms.media:
        body["type"] = "mms"
        body["media_urls"] = list(sms.media)
    else:
        body["type"] = "sms"
    if sms.status_callback:
        body["url"] = sms.status_callback
        body["method"] = "POST"
    return body


def plivo_error(answer: Answer) -> SendError:
    """Turn a Plivo error answer ({"api_id", "error"}) into a SendError keeping Plivo's words."""
    error = answer.field("error")
    if isinstance(error, dict):  # field errors, {"dst": "..."}: say them all
        error = "; ".join(f"{name}: {value}" for name, value in error.items())
    words = str(error) if error else f"Plivo answered HTTP {answer.status}"
    return answer.error(f"{words} (HTTP {answer.status})")


# --- the table's row --------------------------------------------------------------------------------


def _simulate(conn: PlivoSettings, url: str, sender: str, to: str, text: str, message_id: str) -> Simulated:
    path = f"/webhooks/plivo/{conn.name}"
    fields = {"From": sender.removeprefix("+"), "To": to.removeprefix("+"), "Type": "sms", "Text": text,
              "MessageUUID": message_id or str(uuid.uuid4()), "Units": "1"}
    nonce = str(secrets.randbelow(10**20))
    signature = plivo_signature(conn.auth_token.get_secret_value(), "POST", url.rstrip("/") + path,
                                {name: [value] for name, value in fields.items()}, nonce)
    return Simulated(path, urlencode(fields).encode(), {
        SIGNATURE_HEADER: signature, NONCE_HEADER: nonce, "Content-Type": "application/x-www-form-urlencoded"})


def _sender(conn: PlivoSettings, context: SenderContext) -> PlivoSender:
    return PlivoSender(conn.auth_id, conn.auth_token.get_secret_value(), conn.api_base, context.timeout)


PROVIDER = Provider(
    type="plivo",
    title="Plivo",
    settings=PlivoSettings,
    webhook=lambda conn: PlivoWebhook(conn.name, conn.auth_token.get_secret_value()),
    sender=_sender,
    supports=Supports(mms_in=True, mms_out=True,
                      signed="X-Plivo-Signature-V3 (HMAC-SHA256 of URL, sorted fields and nonce)"),
    media_headers=lambda conn: {"Authorization": basic_auth(conn.auth_id, conn.auth_token.get_secret_value())},
    simulate=_simulate,
)
