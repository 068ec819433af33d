"""didchat's generic JSON format: for an SMS gateway of your own, or one we do not speak yet.

Webhooks:
- JSON POSTs signed with X-Didchat-Signature: `sha256=` and the hex HMAC-SHA256 of the raw body, keyed
  with the connector's secret; only application/json is taken (415 otherwise, after the signature).
- Incoming message: {"id", "from", "to", "text", "timestamp"?, "media"?: [{"url", "content_type"}]}.
  Status: {"id", "status", "error"?, "opt_out"?}, status one of gateway.messages.STATUSES.
Sending:
- POST {"id": our reference, "from", "to", "text", "media"?: [urls], "status_url"?} to `send_url`,
  signed the same way; 2xx answers {"id": provider id, "status"?}; errors may carry {"error", "code",
  "opt_out"?: true}. 429 and 5xx are temporary (with Retry-After when given).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, SecretStr

from gateway.fields import MAX_MEDIA, Fields, SignatureError, decode_body, json_object, require_json
from gateway.messages import QUEUED, STATUSES, InboundSms, Media, OutboundSms, SendError, SendResult, StatusReport
from gateway.numbers import normalize_number, normalize_sender
from gateway.providers.base import (
    JSON_OK,
    NO_PACE,
    ApiSettings,
    Event,
    HttpUrl,
    Pace,
    Provider,
    Reader,
    Route,
    SenderContext,
    Simulated,
    Supports,
    WebhookRequest,
    header,
)
from gateway.providers.http import Answer, HttpClient

SIGNATURE_HEADER = "X-Didchat-Signature"


class GenericSettings(ApiSettings):
    type: Literal["generic"]
    secret: SecretStr = Field(min_length=16)
    send_url: HttpUrl
    pace: Pace = Field(default=NO_PACE, description="segments per second it may send (none by default: the gateway "
                                                    "behind it paces)")


def didchat_signature(secret: str, body: bytes) -> str:
    """Return the X-Didchat-Signature value for `body`: sha256=<hex HMAC-SHA256>."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class GenericWebhook(Reader):
    """didchat's generic JSON webhooks, signed with X-Didchat-Signature, for one connector."""

    reply = JSON_OK

    def __init__(self, connector: str, secret: str):
        self.connector = connector
        self._secret = secret

    def sign(self, body: bytes) -> str:
        """Return the signature header value for `body`."""
        return didchat_signature(self._secret, body)

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        fields = self._fields(request.body, request.headers)
        return (self._message(fields, request.body) if route == "message" else self._status(fields),)

    def _message(self, fields: Fields, body: bytes) -> InboundSms:
        media = tuple(Media(url=item.short_text("url"), content_type=item.short_text("content_type"))
                      for item in fields.objects("media", MAX_MEDIA))
        return InboundSms(
            connector=self.connector,
            provider_id=fields.identifier("id"),
            sender=fields.number("from", normalize_sender),
            recipient=fields.number("to", normalize_number),
            text=fields.text("text", allow_empty=bool(media), required=not media),
            received_at=fields.timestamp("timestamp"),
            media=media,
            original=body if fields.altered else None,
        )

    def _status(self, fields: Fields) -> StatusReport:
        return StatusReport(
            connector=self.connector,
            provider_id=fields.identifier("id"),
            status=fields.choice("status", {status: status for status in STATUSES}),
            error=fields.optional_text("error"),
            opt_out=fields.data.get("opt_out") is True,
        )

    def _fields(self, body: bytes, headers: Mapping[str, str]) -> Fields:
        """The verified body's fields, knowing whether its text had to be decoded with replacements."""
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing header {SIGNATURE_HEADER}")
        expected = self.sign(body).encode("ascii")
        # aiohttp reads header bytes that are not UTF-8 as surrogate escapes; they must not raise here.
        if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected):
            raise SignatureError(f"bad {SIGNATURE_HEADER}")
        require_json(header(headers, "Content-Type"))
        text, altered = decode_body(body)
        return Fields(json_object(text), altered=altered)


class GenericSender:
    """Sends SMS to an HTTP endpoint speaking the generic JSON format."""

    def __init__(self, url: str, secret: str, timeout: float = 10.0):
        self.url = url
        self._secret = secret
        self._http = HttpClient(timeout)

    async def send(self, sms: OutboundSms) -> SendResult:
        """POST one message and read the provider's id for it."""
        body = generic_body(sms)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: didchat_signature(self._secret, body)}
        answer = await self._http.post(self.url, data=body, headers=headers)
        if not answer.ok:
            raise generic_error(answer)
        return _result(answer)

    async def close(self) -> None:
        await self._http.close()


def generic_body(sms: OutboundSms) -> bytes:
    """Return the JSON body that asks the endpoint to send `sms`."""
    payload: dict = {"id": sms.reference, "from": sms.sender, "to": sms.recipient, "text": sms.text}
    if sms.media:
        payload["media"] = list(sms.media)
    if sms.status_callback:
        payload["status_url"] = sms.status_callback
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def generic_error(answer: Answer) -> SendError:
    """Turn an error answer into a SendError, keeping the endpoint's error and code."""
    message = answer.field("error") or f"endpoint answered HTTP {answer.status}"
    return answer.error(str(message), code=answer.field("code"), opt_out=answer.field("opt_out") is True)


def _result(answer: Answer) -> SendResult:
    """Read {"id", "status"?} from a 2xx answer."""
    provider_id = answer.field("id")
    if isinstance(provider_id, int) and not isinstance(provider_id, bool):
        provider_id = str(provider_id)
    if not isinstance(provider_id, str) or not provider_id:
        raise SendError(f"endpoint answered {answer.status} without an id", temporary=False)
    status = answer.field("status")
    return SendResult(provider_ids=(provider_id,), status=status if status in STATUSES else QUEUED)


def simulated(path: str, secret: str, sender: str, to: str, text: str, message_id: str) -> Simulated:
    """A signed generic inbound webhook (also the loopback's)."""
    body = json.dumps({"id": message_id or uuid.uuid4().hex, "from": sender, "to": to, "text": text}).encode()
    return Simulated(path, body, {SIGNATURE_HEADER: didchat_signature(secret, body), "Content-Type": "application/json"})


def _sender(conn: GenericSettings, context: SenderContext) -> GenericSender:
    return GenericSender(conn.send_url, conn.secret.get_secret_value(), context.timeout)


PROVIDER = Provider(
    type="generic",
    title="Generic JSON",
    settings=GenericSettings,
    webhook=lambda conn: GenericWebhook(conn.name, conn.secret.get_secret_value()),
    sender=_sender,
    supports=Supports(mms_in=True, mms_out=True, signed="X-Didchat-Signature (HMAC-SHA256 of the body)"),
    simulate=lambda conn, url, sender, to, text, mid: simulated(
        f"/webhooks/generic/{conn.name}", conn.secret.get_secret_value(), sender, to, text, mid),
)
