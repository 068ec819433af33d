"""A local Bandwidth Messaging API v2, for tests: the FakeProvider of tests/fakes/provider.py.

It speaks Bandwidth's documented wire format (https://dev.bandwidth.com/docs/messaging/createMessage,
/docs/messaging/webhooks, /docs/messaging/errors), never a shortcut through gateway/:
- POST /api/v2/users/{accountId}/messages with HTTP Basic (the API user) and JSON {"applicationId", "to",
  "from", "text", "media"?, "tag"?}: 202 with the message; errors {"type", "description", "fieldErrors"?}
  (401 unauthorized, 403 forbidden, 415 unsupported-content-type, 400 request-validation, 429, 5xx).
- Callbacks are JSON arrays of events, authenticated as Bandwidth does: HTTP Basic with the application's
  callback credentials. Opt-outs, as with the real API, are accepted (202) and then fail in a
  message-failed callback with errorCode 4775.
- GET /api/v2/users/{accountId}/media/{name} serves inbound media behind the API user's Basic auth.
"""
from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.provider import Sent, Served, Webhook

MAX_TEXT = 2048
MAX_RECIPIENTS = 10
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@dataclass(frozen=True)
class Failure:
    """An error answer Bandwidth may give."""

    status: int
    type: str
    description: str
    retry_after: str | None = None
    extra: dict[str, Any] | None = None

    def response(self) -> web.Response:
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        return web.json_response({"type": self.type, "description": self.description, **(self.extra or {})},
                                 status=self.status, headers=headers)


UNAUTHORIZED = Failure(401, "unauthorized", "Authentication Failed")
FORBIDDEN = Failure(403, "forbidden", "Access Denied")
QUEUE_FULL = Failure(429, "max-message-queue-size-exceeded",
                     "The SMS queue for your account is full and cannot accept more messages right now.")
SERVER_ERROR = Failure(500, "internal-server-error", "An internal server error occurred")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_message_id() -> str:
    """A Bandwidth-style message id: the epoch milliseconds and 16 lowercase letters and digits."""
    alphabet = string.ascii_lowercase + string.digits
    return f"{int(time.time() * 1000)}{''.join(secrets.choice(alphabet) for _ in range(16))}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class FakeBandwidthApi(Served):
    """Bandwidth's messages and media resources for one account and messaging application."""

    type = "bandwidth"

    def __init__(self) -> None:
        self.account_id = str(secrets.randbelow(9_000_000) + 1_000_000)
        self.username = "api-" + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(16)
        self.application_id = "93de2206-9669-4e07-948d-" + secrets.token_hex(6)
        self.callback_username = "cb-" + secrets.token_hex(4)
        self.callback_password = secrets.token_urlsafe(16)
        self.sent: list[Sent] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.opted_out: set[str] = set()  # message ids whose callback will be message-failed 4775
        self._failures: list[Failure] = []
        self._opt_out_next = False
        self.base_url = ""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v2/users/{account}/messages", self._create)
        app.router.add_get("/api/v2/users/{account}/media/{name:.+}", self._media)

    def connector_yaml(self, name: str, numbers: list[str]) -> str:
        return "\n".join([
            "  - type: bandwidth", f"    name: {name}", f"    numbers: {json.dumps(numbers)}",
            f"    account_id: '{self.account_id}'", f"    username: {self.username}", f"    password: {self.password}",
            f"    application_id: {self.application_id}", f"    callback_username: {self.callback_username}",
            f"    callback_password: {self.callback_password}", f"    api_base: {self.base_url}",
        ]) + "\n"

    # --- what tests inject ---------------------------------------------------------------------------

    def fail_next(self, status: int = 500, type: str | None = None, description: str | None = None,
                  retry_after: str | None = None, **extra: Any) -> None:
        """Answer the next authenticated send with an error (429 and 5xx are temporary)."""
        default = QUEUE_FULL if status == 429 else SERVER_ERROR if status >= 500 else \
            Failure(status, "request-validation", "Your request could not be accepted")
        self._failures.append(Failure(status, type or default.type, description or default.description,
                                      retry_after, extra or None))

    def refuse_next_as_opted_out(self) -> None:
        """As Bandwidth does: the next send is accepted (202), then fails with errorCode 4775 (opt-out)."""
        self._opt_out_next = True

    def media_url(self, name: str) -> str:
        self.media.setdefault(name, (PNG, "image/png"))
        return f"{self.base_url}/api/v2/users/{self.account_id}/media/{name}"

    # --- callbacks Bandwidth would post -------------------------------------------------------------

    def callback(self, events: list[dict[str, Any]], route: str = "message", password: str | None = None) -> Webhook:
        """A callback as Bandwidth posts it: a JSON array, with the application's callback credentials."""
        body = json.dumps(events).encode()
        return Webhook(body, {
            "Content-Type": "application/json; charset=utf-8", "User-Agent": "BandwidthAPI/v2",
            "Authorization": basic(self.callback_username, self.callback_password if password is None else password),
        }, route=route)

    def inbound_event(self, sender: str, to: str, text: str, message_id: str,
                      media: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        stamp = now_iso()
        message: dict[str, Any] = {
            "id": message_id, "owner": to, "applicationId": self.application_id, "time": stamp, "segmentCount": 1,
            "direction": "in", "to": [to], "from": sender, "text": text}
        if media:
            message["media"] = [url for url, _ in media]
        return {"type": "message-received", "time": stamp, "description": "Incoming message received", "to": to,
                "message": message}

    def inbound(self, url: str, sender: str, to: str, text: str, message_id: str,
                media: list[tuple[str, str]] | None = None) -> list[Webhook]:
        return [self.callback([self.inbound_event(sender, to, text, message_id, media)])]

    def status_event(self, sent: Sent, type: str, description: str, error_code: int | None = None) -> dict[str, Any]:
        raw = sent.raw if isinstance(sent.raw, dict) else {}
        message: dict[str, Any] = {
            "id": sent.provider_id, "owner": sent.sender, "applicationId": self.application_id, "time": now_iso(),
            "segmentCount": 1, "direction": "out", "to": [sent.recipient], "from": sent.sender, "text": ""}
        if sent.media:
            message["media"] = list(sent.media)
        if "tag" in raw:
            message["tag"] = raw["tag"]
        event: dict[str, Any] = {"type": type, "time": now_iso(), "description": description, "to": sent.recipient,
                                 "message": message}
        if error_code is not None:
            event["errorCode"] = error_code
        return event

    def delivered(self, url: str, sent: Sent) -> Webhook:
        """The message's outcome: message-delivered, or message-failed 4775 for a recipient who opted out."""
        if sent.provider_id in self.opted_out:
            return self.failed(url, sent, 4775, "destination-rejected-due-to-user-opt-out")
        return self.callback([self.status_event(sent, "message-delivered", "ok")], route="status")

    def failed(self, url: str, sent: Sent, error_code: int, description: str) -> Webhook:
        return self.callback([self.status_event(sent, "message-failed", description, error_code)], route="status")

    def forged(self, webhook: Webhook) -> Webhook:
        headers = {**webhook.headers, "Authorization": basic(self.callback_username, "not-" + self.callback_password)}
        return Webhook(webhook.body, headers, webhook.route, webhook.method, webhook.query)

    # --- the REST API --------------------------------------------------------------------------------

    def _authenticated(self, request: web.Request) -> Failure | None:
        if _credentials(request.headers.get("Authorization", "")) != (self.username, self.password):
            return UNAUTHORIZED
        if request.match_info["account"] != self.account_id:
            return FORBIDDEN
        return None

    async def _create(self, request: web.Request) -> web.Response:
        refusal = self._authenticated(request)
        if refusal:
            return refusal.response()
        if request.content_type != "application/json":
            return Failure(415, "unsupported-content-type", f"Content type '{request.content_type}' not supported. "
                           "Please use 'application/json'").response()
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        problem = _validate(body, self.application_id)
        to = body.get("to") if isinstance(body, dict) else None
        recipients = [to] if isinstance(to, str) else to if isinstance(to, list) else []
        failure = problem or (self._failures.pop(0) if self._failures else None)
        message_id = "" if failure else new_message_id()
        if isinstance(body, dict):
            self.sent.append(Sent(
                sender=str(body.get("from", "")), recipient=str(recipients[0]) if recipients else "",
                text=str(body.get("text") or ""), media=tuple(body.get("media") or ()), provider_id=message_id,
                raw=body, at=time.monotonic(), headers=dict(request.headers)))
        if failure:
            return failure.response()
        if self._opt_out_next:
            self._opt_out_next = False
            self.opted_out.add(message_id)
        message = {"id": message_id, "owner": body["from"], "applicationId": body["applicationId"], "time": now_iso(),
                   "segmentCount": 1, "direction": "out", "to": recipients, "from": body["from"],
                   "text": body.get("text") or ""}
        for key in ("media", "tag"):
            if key in body:
                message[key] = body[key]
        return web.json_response(message, status=202)

    async def _media(self, request: web.Request) -> web.Response:
        refusal = self._authenticated(request)
        if refusal:
            return refusal.response()
        found = self.media.get(request.match_info["name"])
        if found is None:
            return Failure(404, "not-found", "Media not found").response()
        return web.Response(body=found[0], content_type=found[1])


def _credentials(value: str) -> tuple[str, str] | None:
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _validate(body: Any, application_id: str) -> Failure | None:
    """Check the request as Bandwidth does: 400 request-validation with fieldErrors."""
    def invalid(field: str, why: str) -> Failure:
        return Failure(400, "request-validation", "Your request could not be accepted.",
                       extra={"fieldErrors": [{"fieldName": field, "description": why}]})

    if not isinstance(body, dict):
        return Failure(400, "request-validation", "Your request could not be accepted.")
    if body.get("applicationId") != application_id:
        return invalid("applicationId", "The application id is not valid for this account")
    to = body.get("to")
    recipients = [to] if isinstance(to, str) else to
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS or \
            not all(isinstance(n, str) and n.startswith("+") and n[1:].isdigit() for n in recipients):
        return invalid("to", "'to' must contain 1 to 10 numbers in E.164 format")
    if not isinstance(body.get("from"), str) or not body["from"]:
        return invalid("from", "'from' must be a Bandwidth number or sender id")
    text, media = body.get("text"), body.get("media")
    if not text and not media:
        return invalid("text", "'text' or 'media' must be given")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return invalid("text", f"'text' must be {MAX_TEXT} characters or less")
    return None
