"""A local Twilio Messages REST API (2010-04-01), for tests and benchmarks.

Rules:
- It speaks Twilio's documented wire format: form-encoded POSTs with HTTP basic auth, 201 with
  the Message resource as JSON, errors as {"code", "message", "more_info", "status"}.
- Every request is recorded (`requests`, the form fields), before any check, so tests can assert
  on what was sent even when it was refused.
- Status callbacks are form-encoded and signed with X-Twilio-Signature by Twilio's own library,
  with the account's auth token, over the StatusCallback URL the message was created with.
- It listens on 127.0.0.1 by default; nothing here sleeps but `latency` (a provider's answer
  time, 0 by default): waits are on conditions with timeouts.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import phonenumbers
from aiohttp import web
from twilio.request_validator import RequestValidator

from gateway.text import count_segments
from tests.fakes.provider import Sent, Webhook

API_VERSION = "2010-04-01"
MAX_BODY = 1600


@dataclass(frozen=True)
class TwilioFailure:
    """An error answer Twilio may give."""

    status: int
    code: int
    message: str
    retry_after: int | None = None  # seconds, sent as Retry-After (Twilio sends it with some 429s)

    def response(self) -> web.Response:
        """Render as Twilio renders errors."""
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return web.json_response(
            {
                "code": self.code,
                "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
                "status": self.status,
            },
            status=self.status,
            headers=headers,
        )


SERVER_ERROR = TwilioFailure(500, 20500, "Internal Server Error")
UNAVAILABLE = TwilioFailure(503, 20503, "Service Unavailable")
TOO_MANY_REQUESTS = TwilioFailure(429, 20429, "Too Many Requests")
UNAUTHORIZED = TwilioFailure(401, 20003, "Authenticate")


def new_sid(prefix: str) -> str:
    """Return a Twilio-style sid: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class FakeTwilioApi:
    """Twilio's Messages resource for one account, on a local port."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None):
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.requests: list[dict[str, str]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request, beside `requests` (pacing tests)
        self.sent: list[Sent] = []  # each authenticated send as tests/fakes/provider.py's FakeProvider keeps them
        self.messages: dict[str, dict[str, Any]] = {}
        self.served_media: dict[str, tuple[bytes, str]] = {}  # name -> (bytes, content type) served for it (else a stand-in PNG)
        self._failures: list[TwilioFailure] = []
        self._down: TwilioFailure | None = None  # an outage: every request answered with it until recover()
        self._stalled: asyncio.Event | None = None  # requests held (unanswered) until recover()
        self.latency = 0.0  # seconds each request takes to be answered, as a real provider's do
        self._recorded = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeTwilioApi:
        """Listen on host:port (0 picks a free port) and set `base_url`."""
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages/{{sid}}.json", self._fetch)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}/Messages/{{sid}}/Media/{{name}}", self._media)
        self._runner = web.AppRunner(app, shutdown_timeout=2)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, n: int = 1, status: int = 500, code: int | None = None, message: str | None = None,
                  retry_after: int | None = None) -> None:
        """Answer the next `n` authenticated requests with an error (5xx and 429 are temporary)."""
        default = TOO_MANY_REQUESTS if status == 429 else SERVER_ERROR
        failure = TwilioFailure(status, code or default.code, message or default.message, retry_after)
        self._failures.extend([failure] * n)

    def outage(self, failure: TwilioFailure = UNAVAILABLE) -> None:
        """Answer every authenticated request with `failure` (503 by default: temporary) until `recover()`."""
        self._down = failure

    def stall(self) -> None:
        """Hold every request unanswered until `recover()`, then answer it 503 (the message was never taken)."""
        self._stalled = asyncio.Event()

    def recover(self) -> None:
        """End an outage or a stall: requests from now on are served."""
        self._down = None
        if self._stalled is not None:
            self._stalled.set()
            self._stalled = None

    def reject_next(
        self, n: int = 1, code: int = 21610, message: str = "Attempt to send to unsubscribed recipient"
    ) -> None:
        """Answer the next `n` authenticated requests with a permanent 400 error (default: opt-out)."""
        self._failures.extend([TwilioFailure(400, code, message)] * n)

    async def wait_for_requests(self, n: int, timeout: float = 5) -> list[dict[str, str]]:
        """Wait until at least `n` requests were recorded; return them all."""
        try:
            async with asyncio.timeout(timeout):
                async with self._recorded:
                    await self._recorded.wait_for(lambda: len(self.requests) >= n)
        except TimeoutError:
            raise TimeoutError(f"got {len(self.requests)} of {n} requests within {timeout}s") from None
        return list(self.requests)

    async def send_status(self, message_sid: str, status: str, error_code: int | str | None = None) -> int:
        """POST a status callback for a message, signed as Twilio signs it; return the HTTP status."""
        message = self.messages[message_sid]
        url = message["status_callback"]
        if not url:
            raise LookupError(f"message {message_sid} was created without a StatusCallback")
        message.update(status=status, error_code=error_code)
        params = self._callback_params(message, status, error_code)
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=params, headers={"X-Twilio-Signature": signature}) as response:
                await response.read()
                return response.status

    def _callback_params(self, message: dict[str, Any], status: str, error_code: Any) -> dict[str, str]:
        """Return the form fields of a status callback."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message["from"],
            "To": message["to"],
            "MessageSid": message["sid"],
            "SmsSid": message["sid"],
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    async def _create(self, request: web.Request) -> web.Response:
        """POST Messages.json: record, authenticate, inject failures, validate, create."""
        fields = await request.post()
        form = {key: str(value) for key, value in fields.items()}  # a repeated field's first value (MediaUrl: all below)
        media = tuple(str(url) for url in fields.getall("MediaUrl", ()))
        await self._record(form)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self._stalled is not None:
            await self._stalled.wait()
            return UNAVAILABLE.response()
        refusal = self._authenticate(request) or self._down or self._next_failure() or _validate(form)
        message = None if refusal else self._message(form, len(media))
        if refusal is not UNAUTHORIZED:
            self.sent.append(Sent(sender=form.get("From", ""), recipient=form.get("To", ""), text=form.get("Body", ""),
                                  media=media, status_url=form.get("StatusCallback"), provider_id=message["sid"] if message else "",
                                  raw=form, at=time.monotonic()))
        if refusal or message is None:
            return (refusal or UNAVAILABLE).response()
        self.messages[message["sid"]] = message
        return web.json_response(_resource(message), status=201)

    # --- tests/fakes/provider.py's FakeProvider ---------------------------------------------------------

    type = "twilio"

    def connector_yaml(self, name: str, numbers: list[str]) -> str:
        return (f'  - {{type: twilio, name: {name}, account_sid: "{self.account_sid}", auth_token: "{self.auth_token}", '
                f'api_base: "{self.base_url}", numbers: {json.dumps(numbers)}}}\n')

    def _signed(self, url: str, params: dict[str, str], token: str | None = None) -> Webhook:
        signature = RequestValidator(token or self.auth_token).compute_signature(url, params)
        return Webhook(urlencode(params).encode(), {"X-Twilio-Signature": signature,
                                                     "Content-Type": "application/x-www-form-urlencoded"})

    def inbound(self, url: str, sender: str, to: str, text: str, message_id: str,
                media: list[tuple[str, str]] | None = None) -> list[Webhook]:
        """An incoming SMS or MMS as Twilio posts it to the number's messaging webhook."""
        sid = message_id if message_id.startswith(("SM", "MM")) else ("MM" if media else "SM") + message_id[:32].ljust(32, "0")
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid,
                  "From": sender, "To": to, "Body": text, "NumMedia": str(len(media or [])), "NumSegments": "1",
                  "SmsStatus": "received", "ApiVersion": API_VERSION}
        for n, (media_url, content_type) in enumerate(media or []):
            params[f"MediaUrl{n}"], params[f"MediaContentType{n}"] = media_url, content_type
        return [self._signed(url, params)]

    def delivered(self, url: str, sent: Sent) -> Webhook:
        message = self.messages[sent.provider_id]
        hook = self._signed(url, self._callback_params(message, "delivered", None))
        return Webhook(hook.body, hook.headers, route="status")

    def forged(self, webhook: Webhook) -> Webhook:
        params = dict(parse_qsl(webhook.body.decode(), keep_blank_values=True))
        forged = self._signed("http://forged.example/", params, "0" * 32)  # another URL, another token
        return Webhook(forged.body, forged.headers, webhook.route)

    def refuse_next_as_opted_out(self) -> None:
        self.reject_next()

    def media_url(self, name: str) -> str:
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/Messages/MM{'0' * 32}/Media/{name}"

    async def _media(self, request: web.Request) -> web.Response:
        """A message's media, behind HTTP basic auth (Twilio's media auth on)."""
        refusal = self._authenticate(request)
        if refusal:
            return refusal.response()
        name = request.match_info["name"]
        if name in self.served_media:
            body, content_type = self.served_media[name]
            return web.Response(body=body, content_type=content_type)
        return web.Response(body=b"\x89PNG\r\n\x1a\n" + name.encode(), content_type="image/png")

    async def _fetch(self, request: web.Request) -> web.Response:
        """GET Messages/{sid}.json."""
        refusal = self._authenticate(request)
        message = self.messages.get(request.match_info["sid"])
        if refusal or message is None:
            return (refusal or TwilioFailure(404, 20404, "The requested resource was not found")).response()
        return web.json_response(_resource(message))

    async def _record(self, form: dict[str, str]) -> None:
        """Keep a request and wake whoever waits for it."""
        async with self._recorded:
            self.requests.append(form)
            self.arrivals.append(time.monotonic())
            self._recorded.notify_all()

    def _authenticate(self, request: web.Request) -> TwilioFailure | None:
        """Check basic auth against this account, and the account in the path."""
        if _basic_auth(request.headers.get("Authorization", "")) != (self.account_sid, self.auth_token):
            return UNAUTHORIZED
        if request.match_info["account"] != self.account_sid:
            return TwilioFailure(404, 20404, "The requested resource was not found")
        return None

    def _next_failure(self) -> TwilioFailure | None:
        """Take one injected failure, if any."""
        return self._failures.pop(0) if self._failures else None

    def _message(self, form: dict[str, str], media: int = 0) -> dict[str, Any]:
        """Build the stored message from a valid form (with `media` MediaUrl fields)."""
        now = datetime.now(UTC)
        return {
            "sid": new_sid("SM"),
            "account_sid": self.account_sid,
            "from": form.get("From"),
            "to": form["To"],
            "body": form.get("Body", ""),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "status_callback": form.get("StatusCallback"),
            "num_media": str(media),
            "error_code": None,
            "date_created": now,
        }


def _basic_auth(value: str) -> tuple[str, str] | None:
    """Read user and password from a Basic Authorization header."""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _validate(form: dict[str, str]) -> TwilioFailure | None:
    """Check To, From and Body as Twilio does, with Twilio's error codes."""
    to, sender, body = form.get("To"), form.get("From"), form.get("Body")
    if not to:
        return TwilioFailure(400, 21604, "A 'To' phone number is required.")
    if not _valid_number(to):
        return TwilioFailure(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not sender and not form.get("MessagingServiceSid"):
        return TwilioFailure(400, 21603, "A 'From' phone number is required.")
    if sender and not (_valid_number(sender) or sender.isalnum()):
        return TwilioFailure(400, 21212, f"Invalid From Number (caller ID): {sender}")
    if not body and not form.get("MediaUrl"):
        return TwilioFailure(400, 21602, "Message body is required.")
    if len(body or "") > MAX_BODY:
        return TwilioFailure(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    return None


def _valid_number(value: str) -> bool:
    """Whether a value is a valid E.164 number."""
    try:
        return value.startswith("+") and phonenumbers.is_valid_number(phonenumbers.parse(value))
    except phonenumbers.NumberParseException:
        return False


def _resource(message: dict[str, Any]) -> dict[str, Any]:
    """Render a message as Twilio's Message resource."""
    created = format_datetime(message["date_created"], usegmt=True)
    uri = f"/{API_VERSION}/Accounts/{message['account_sid']}/Messages/{message['sid']}.json"
    return {
        "account_sid": message["account_sid"],
        "api_version": API_VERSION,
        "body": message["body"],
        "date_created": created,
        "date_sent": None,
        "date_updated": created,
        "direction": "outbound-api",
        "error_code": message["error_code"],
        "error_message": None,
        "from": message["from"],
        "messaging_service_sid": message["messaging_service_sid"],
        "num_media": message.get("num_media", "0"),
        "num_segments": str(count_segments(message["body"])[1]),
        "price": None,
        "price_unit": "USD",
        "sid": message["sid"],
        "status": message["status"],
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "to": message["to"],
        "uri": uri,
    }
