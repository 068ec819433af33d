"""A local Telnyx Messaging API v2, for tests: sends, signed webhooks, presigned media.

Rules:
- It speaks Telnyx's documented wire format: POST /v2/messages with `Authorization: Bearer <API key>`
  and a JSON body; 200 {"data": <message record>}; errors {"errors": [{"code", "title", "detail"}]}
  (401 10009 for a bad key, 422 for bad parameters, 409 40300 for a recipient who texted STOP, 429
  10011 when throttled).
- Webhooks are {"data": {"record_type": "event", "event_type", "id", "occurred_at", "payload"},
  "meta": {...}}, signed as Telnyx signs them: Ed25519 over f"{telnyx-timestamp}|{body}", base64 in
  `telnyx-signature-ed25519`, with a key pair the fake makes (signed here with `cryptography`, not by
  gateway/). `public_key` is the base64 public key the connector is configured with.
- Media is served at presigned URLs (a signature in the query, no credentials), as Telnyx's are.
- Every send request is recorded as `Sent`, refused or not. It listens on 127.0.0.1 and sleeps nowhere.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.fakes.provider import Sent, Served, Webhook

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MEDIA = b"\x89PNG\r\n\x1a\nfake image bytes"


@dataclass(frozen=True)
class TelnyxFailure:
    """An error answer Telnyx may give."""

    status: int
    code: str
    title: str
    detail: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def response(self) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "title": self.title}
        if self.detail:
            error["detail"] = self.detail
        return web.json_response({"errors": [error]}, status=self.status, headers=dict(self.headers))


UNAUTHORIZED = TelnyxFailure(401, "10009", "Authentication failed",
                             "The required authentication headers were either invalid or not included in the request.")
SERVER_ERROR = TelnyxFailure(500, "10007", "Unexpected error", "An unexpected error occured.")
TOO_MANY_REQUESTS = TelnyxFailure(429, "10011", "Too many requests",
                                  "You have exceeded the maximum number of allowed requests.")
# https://developers.telnyx.com/api/errors/40300 (HTTP 409); the detail names both numbers.
OPTED_OUT = TelnyxFailure(409, "40300", "Blocked due to STOP message")


def public_key_of(private: Ed25519PrivateKey) -> str:
    """The base64 public key, as Mission Control shows it."""
    return base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def sign(private: Ed25519PrivateKey, timestamp: str, body: bytes) -> str:
    """Telnyx's signature of a webhook: Ed25519 of "{timestamp}|{body}", base64."""
    return base64.b64encode(private.sign(timestamp.encode("ascii") + b"|" + body)).decode("ascii")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class FakeTelnyxApi(Served):
    """Telnyx's Messaging API for one account, on a local port."""

    type = "telnyx"

    def __init__(self, api_key: str | None = None):
        self.api_key = api_key or "KEY" + secrets.token_hex(16).upper()
        self._private = Ed25519PrivateKey.generate()
        self.public_key = public_key_of(self._private)
        self._media_secret = secrets.token_bytes(16)
        self.sent: list[Sent] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self._failures: list[TelnyxFailure] = []
        self.base_url = ""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/messages", self._create)
        app.router.add_get("/media/{name}", self._media)

    def connector_yaml(self, name: str, numbers: list[str]) -> str:
        return "\n".join([
            "  - type: telnyx",
            f"    name: {name}",
            f"    api_key: {json.dumps(self.api_key)}",
            f"    public_key: {json.dumps(self.public_key)}",
            f"    api_base: {json.dumps(self.base_url)}",
            f"    numbers: {json.dumps(numbers)}",
        ])

    # --- failures ---------------------------------------------------------------------------------

    def refuse_next_as_opted_out(self) -> None:
        """Answer the next send as Telnyx answers one to a recipient with a STOP block rule."""
        self._failures.append(OPTED_OUT)

    def fail_next(self, status: int = 500, code: str | None = None, title: str | None = None, detail: str = "",
                  retry_after: str | None = None, headers: dict[str, str] | None = None) -> None:
        """Answer the next authenticated send with an error."""
        default = TOO_MANY_REQUESTS if status == 429 else SERVER_ERROR
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = retry_after
        self._failures.append(TelnyxFailure(status, code or default.code, title or default.title,
                                            detail or default.detail, tuple(extra.items())))

    # --- webhooks ---------------------------------------------------------------------------------

    def signed(self, body: bytes, timestamp: int | None = None, route: str = "message",
               key: Ed25519PrivateKey | None = None) -> Webhook:
        """A webhook body with Telnyx's signature headers."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return Webhook(body=body, route=route, headers={
            "Content-Type": "application/json",
            "telnyx-timestamp": stamp,
            "telnyx-signature-ed25519": sign(key or self._private, stamp, body),
        })

    def event(self, event_type: str, payload: dict[str, Any], url: str) -> bytes:
        """The JSON of one webhook event."""
        return json.dumps({
            "data": {"record_type": "event", "id": str(uuid.uuid4()), "event_type": event_type,
                     "occurred_at": _now(), "payload": payload},
            "meta": {"attempt": 1, "delivered_to": url},
        }).encode("utf-8")

    def inbound(self, url: str, sender: str, to: str, text: str, message_id: str,
                media: list[tuple[str, str]] | None = None) -> list[Webhook]:
        payload = {
            "record_type": "message", "direction": "inbound", "id": message_id or str(uuid.uuid4()),
            "type": "MMS" if media else "SMS", "messaging_profile_id": str(uuid.uuid4()),
            "organization_id": str(uuid.uuid4()),
            "from": {"phone_number": sender, "carrier": "T-MOBILE USA, INC.", "line_type": "Wireless"},
            "to": [{"phone_number": to, "status": "webhook_delivered", "carrier": "TELNYX LLC", "line_type": "VoIP"}],
            "cc": [], "text": text,
            "media": [{"url": u, "content_type": t, "size": len(MEDIA), "hash_sha256": None} for u, t in media or []],
            "webhook_url": url, "webhook_failover_url": None, "encoding": "GSM-7", "parts": 1, "tags": [],
            "cost": None, "received_at": _now(), "sent_at": None, "completed_at": None, "valid_until": None,
            "errors": [],
        }
        return [self.signed(self.event("message.received", payload, url))]

    def status(self, url: str, sent: Sent, status: str, errors: list[dict[str, str]] | None = None,
               event_type: str = "message.finalized") -> Webhook:
        """A delivery update for a message the fake took: the message record with its recipient's status."""
        record = dict(self.messages.get(sent.provider_id) or self._record(sent.raw or {}, sent.provider_id))
        record["to"] = [{**record["to"][0], "status": status}]
        record["errors"] = errors or []
        record["completed_at"] = _now() if event_type == "message.finalized" else None
        return self.signed(self.event(event_type, record, url), route="status" if sent.status_url else "message")

    def delivered(self, url: str, sent: Sent) -> Webhook:
        return self.status(url, sent, "delivered")

    def forged(self, webhook: Webhook) -> Webhook:
        stamp = int(webhook.headers["telnyx-timestamp"])
        return self.signed(webhook.body, stamp, webhook.route, key=Ed25519PrivateKey.generate())

    # --- media ------------------------------------------------------------------------------------

    def media_url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}?X-Amz-Signature={self._media_signature(name)}"

    def _media_signature(self, name: str) -> str:
        return hmac.new(self._media_secret, name.encode(), hashlib.sha256).hexdigest()

    async def _media(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        given = request.query.get("X-Amz-Signature", "")
        if not hmac.compare_digest(given, self._media_signature(name)):
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>",
                                content_type="application/xml")
        return web.Response(body=MEDIA, content_type="image/png")

    # --- sending ----------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        provider_id = str(uuid.uuid4())
        refusal = self._authenticate(request) or self._next_failure() or _validate(body)
        if refusal is None:
            self.messages[provider_id] = self._record(body, provider_id)
        record = body if isinstance(body, dict) else {}
        self.sent.append(Sent(
            sender=str(record.get("from", "")), recipient=str(record.get("to", "")), text=str(record.get("text", "")),
            media=tuple(record.get("media_urls") or ()), status_url=record.get("webhook_url"),
            provider_id="" if refusal else provider_id, raw=body, at=time.monotonic(), headers=dict(request.headers)))
        if refusal is not None:
            if refusal is OPTED_OUT:
                refusal = TelnyxFailure(OPTED_OUT.status, OPTED_OUT.code, OPTED_OUT.title,
                                        f"Messages cannot be sent from '{record.get('from')}' to "
                                        f"'{record.get('to')}' due to an existing block rule.")
            return refusal.response()
        return web.json_response({"data": self.messages[provider_id]})

    def _authenticate(self, request: web.Request) -> TelnyxFailure | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(token.encode(), self.api_key.encode()):
            return UNAUTHORIZED
        return None

    def _next_failure(self) -> TelnyxFailure | None:
        return self._failures.pop(0) if self._failures else None

    def _record(self, body: dict[str, Any], provider_id: str) -> dict[str, Any]:
        """The message record Telnyx answers a send with (and posts in delivery updates)."""
        media = body.get("media_urls") or []
        return {
            "record_type": "message", "direction": "outbound", "id": provider_id, "type": "MMS" if media else "SMS",
            "messaging_profile_id": body.get("messaging_profile_id") or str(uuid.uuid4()),
            "organization_id": str(uuid.uuid4()),
            "from": {"phone_number": body.get("from"), "carrier": "TELNYX LLC", "line_type": "VoIP"},
            "to": [{"phone_number": body.get("to"), "status": "queued", "carrier": "T-MOBILE USA, INC.",
                    "line_type": "Wireless"}],
            "cc": [], "text": body.get("text"),
            "media": [{"url": u, "content_type": None, "sha256": None, "size": None} for u in media],
            "webhook_url": body.get("webhook_url"), "webhook_failover_url": body.get("webhook_failover_url"),
            "encoding": "GSM-7", "parts": 1, "tags": [], "cost": None, "received_at": _now(), "sent_at": None,
            "completed_at": None, "valid_until": None, "errors": [],
        }


def _validate(body: Any) -> TelnyxFailure | None:
    """Check the request as Telnyx does, with its error codes."""
    if not isinstance(body, dict):
        return TelnyxFailure(400, "10015", "Bad Request", "The request failed because it was not well-formed.")
    to, sender = body.get("to"), body.get("from")
    if not to:
        return TelnyxFailure(422, "10004", "Missing required parameter", "The 'to' parameter is required.")
    if not isinstance(to, str) or not E164.match(to):
        return TelnyxFailure(422, "10016", "Phone number must be in +E.164 format",
                             "The 'to' parameter must be in +E.164 format.")
    if not sender and not body.get("messaging_profile_id"):
        return TelnyxFailure(422, "10004", "Missing required parameter", "The 'from' parameter is required.")
    if not body.get("text") and not body.get("media_urls"):
        return TelnyxFailure(422, "10004", "Missing required parameter",
                             "The 'text' parameter is required for SMS.")
    return None
