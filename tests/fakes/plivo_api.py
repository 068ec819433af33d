"""A local Plivo Messaging API (v1), for tests: tests/fakes/provider.py's FakeProvider for Plivo.

Rules:
- It speaks Plivo's documented wire format: POST /v1/Account/{auth_id}/Message/ with a JSON body and
  HTTP basic auth (auth_id, auth_token); 202 {"api_id", "message", "message_uuid": [...]}, one UUID per
  destination; errors {"api_id", "error"} (401 on bad credentials, 400 on a bad request).
- Every send that reaches it is recorded (`sent`) before any check.
- Webhooks are signed as Plivo signs them (X-Plivo-Signature-V3 + nonce), by the code here, which
  follows the Plivo SDK's plivo/utils/signature_v3.py and owes nothing to gateway/.
- A recipient who opted out (replied STOP) is not refused by Plivo's API: the message is taken (202) and
  then reported `failed` with ErrorCode 200. `refuse_next_as_opted_out` does just that: `outcome()` then
  builds the failed callback for it.
- Inbound media is served at /Account/{auth_id}/Media/{name} behind the account's basic auth.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import mimetypes
import secrets
import string
import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from tests.fakes.provider import Sent, Served, Webhook

OPTED_OUT = "200"  # Plivo's error code for a message blocked because the recipient replied STOP


def new_auth_id() -> str:
    """An auth id shaped like Plivo's: MA and 18 upper-case letters and digits."""
    return "MA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18))


def sign(auth_token: str, method: str, url: str, fields: dict[str, str], nonce: str) -> str:
    """X-Plivo-Signature-V3 of a request Plivo makes to `url` with `fields` (the form, for a POST)."""
    scheme, netloc, path, query, _ = urlsplit(url)
    base = urlunsplit((scheme, netloc, path, "", ""))
    query_fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        query_fields.setdefault(name, []).append(value)
    if method == "GET":
        fields = {}
    in_query = "&".join("&".join(f"{k}={v}" for v in sorted(query_fields[k])) for k in sorted(query_fields))
    if in_query or fields:
        base += "?" + in_query
    if in_query and fields:
        base += "."
    base += "".join(f"{k}{fields[k]}" for k in sorted(fields))
    digest = hmac.new(auth_token.encode(), f"{base}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FakePlivoApi(Served):
    """Plivo's Message resource and media for one account, on a local port."""

    type = "plivo"

    def __init__(self, auth_id: str | None = None, auth_token: str | None = None):
        self.auth_id = auth_id or new_auth_id()
        self.auth_token = auth_token or secrets.token_urlsafe(30)
        self.sent: list[Sent] = []
        self.blocked: set[str] = set()  # UUIDs of messages Plivo blocked (recipient opted out)
        self._failures: list[tuple[int, str, dict[str, str]]] = []
        self._opt_out_next = False
        self.base_url = ""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/Account/{account}/Message/", self._create)
        app.router.add_get("/Account/{account}/Media/{name}", self._media)

    def connector_yaml(self, name: str, numbers: list[str]) -> str:
        listed = ", ".join(f'"{number}"' for number in numbers)
        return (f"  - type: plivo\n    name: {name}\n    numbers: [{listed}]\n    auth_id: \"{self.auth_id}\"\n"
                f"    auth_token: \"{self.auth_token}\"\n    api_base: {self.base_url}\n")

    # --- failures ----------------------------------------------------------------------------

    def fail_next(self, status: int = 500, error: str = "Internal server error",
                  retry_after: str | None = None) -> None:
        """Answer the next authenticated send with an error (429 and 5xx are temporary)."""
        self._failures.append((status, error, {"Retry-After": retry_after} if retry_after else {}))

    def refuse_next_as_opted_out(self) -> None:
        """Take the next send (202) and block it as Plivo blocks a recipient who replied STOP: its status
        callback (`outcome`) says failed with ErrorCode 200."""
        self._opt_out_next = True

    # --- webhooks ----------------------------------------------------------------------------

    def inbound(self, url: str, sender: str, to: str, text: str, message_id: str,
                media: list[tuple[str, str]] | None = None, method: str = "POST") -> list[Webhook]:
        """The message URL request for one incoming SMS (or MMS when `media` is given)."""
        fields = {"From": sender.removeprefix("+"), "To": to.removeprefix("+"), "MessageUUID": message_id,
                  "Units": "1", "TotalRate": "0.00000", "TotalAmount": "0.00000", "MessageIntent": "",
                  "PowerpackUUID": ""}
        if media:
            fields.update(Type="mms", Body=text, MediaCount=str(len(media)))
            fields.update({f"Media{n}": media_url for n, (media_url, _) in enumerate(media, start=1)})
        else:
            fields.update(Type="sms", Text=text)
        return [self._webhook(url, fields, "message", method)]

    def delivered(self, url: str, sent: Sent) -> Webhook:
        """The status callback Plivo posts for `sent` in the end: delivered, or failed with 200 if it was blocked
        (the recipient opted out), as Plivo reports a send it took and blocked."""
        return self.outcome(url, sent)

    def outcome(self, url: str, sent: Sent) -> Webhook:
        """The last status callback Plivo posts for `sent`: failed with 200 if it was blocked, else delivered."""
        if sent.provider_id in self.blocked:
            return self.status(url, sent, "failed", OPTED_OUT)
        return self.status(url, sent, "delivered")

    def status(self, url: str, sent: Sent, status: str, error_code: str | None = None) -> Webhook:
        """A status callback for `sent`, as Plivo posts it to the message's `url`."""
        fields = {"MessageUUID": sent.provider_id, "ParentMessageUUID": sent.provider_id,
                  "From": sent.sender.removeprefix("+"), "To": sent.recipient.removeprefix("+"),
                  "Type": "mms" if sent.media else "sms", "Status": status, "Units": "1",
                  "TotalRate": "0.00500", "TotalAmount": "0.00500", "MCC": "310", "MNC": "410",
                  "ErrorCode": error_code or "", "PartInfo": "1 of 1", "Sequence": "1",
                  "MessageTime": "2024-01-01 12:00:00.000000", "PowerpackUUID": ""}
        return self._webhook(url, fields, "status", "POST")

    def forged(self, webhook: Webhook) -> Webhook:
        """The same webhook signed with another auth token."""
        nonce = webhook.headers["X-Plivo-Signature-V3-Nonce"]
        wrong = base64.b64encode(hmac.new(b"not the token", nonce.encode(), hashlib.sha256).digest()).decode()
        return replace(webhook, headers={**webhook.headers, "X-Plivo-Signature-V3": wrong})

    def _webhook(self, url: str, fields: dict[str, str], route: str, method: str) -> Webhook:
        nonce = str(secrets.randbelow(10**20)).zfill(20)
        if method == "GET":
            query = urlencode(fields)
            signature = sign(self.auth_token, "GET", f"{url}?{query}", {}, nonce)
            return Webhook(b"", self._headers(signature, nonce), route, "GET", query)
        signature = sign(self.auth_token, "POST", url, fields, nonce)
        headers = {**self._headers(signature, nonce), "Content-Type": "application/x-www-form-urlencoded"}
        return Webhook(urlencode(fields).encode(), headers, route)

    @staticmethod
    def _headers(signature: str, nonce: str) -> dict[str, str]:
        return {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce,
                "User-Agent": "PlivoHTTP"}

    def media_url(self, name: str) -> str:
        return f"{self.base_url}/Account/{self.auth_id}/Media/{name}"

    # --- the REST API ------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        message_uuid = str(uuid.uuid4())
        media = body.get("media_urls") or ()
        self.sent.append(Sent(
            sender="+" + str(body.get("src", "")).lstrip("+"), recipient="+" + str(body.get("dst", "")).lstrip("+"),
            text=str(body.get("text", "")), media=tuple(media) if isinstance(media, list) else (str(media),),
            status_url=body.get("url"), provider_id=message_uuid, raw=body or raw, at=time.monotonic(),
            headers=dict(request.headers)))
        if not self._authenticated(request):
            return _error(401, "Authentication failed")
        if self._failures:
            status, error, headers = self._failures.pop(0)
            return _error(status, error, headers)
        refusal = _validate(body)
        if refusal:
            return _error(400, refusal)
        if self._opt_out_next:
            self._opt_out_next = False
            self.blocked.add(message_uuid)
        return web.json_response({"api_id": str(uuid.uuid4()), "message": "message(s) queued",
                                  "message_uuid": [message_uuid]}, status=202)

    async def _media(self, request: web.Request) -> web.Response:
        if not self._authenticated(request):
            return _error(401, "Authentication failed")
        name = request.match_info["name"]
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(body=b"media " + name.encode(), content_type=content_type)

    def _authenticated(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (scheme.lower() == "basic" and hmac.compare_digest(user, self.auth_id)
                and hmac.compare_digest(password, self.auth_token)
                and request.match_info["account"] == self.auth_id)


def _error(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"api_id": str(uuid.uuid4()), "error": error}, status=status, headers=headers)


def _validate(body: dict[str, Any]) -> str | None:
    """Check the send's arguments as Plivo's documentation states them."""
    src, dst, kind = body.get("src"), body.get("dst"), body.get("type", "sms")
    if not src:
        return "src parameter is required"
    if not dst:
        return "dst parameter is required"
    if not isinstance(dst, str) or not dst.lstrip("+").isdigit() or len(dst.lstrip("+")) > 14:
        return f"invalid dst number: {dst}"
    if str(src).lstrip("+") == dst.lstrip("+"):
        return "destination number cannot be same as source number"
    if kind not in ("sms", "mms", "whatsapp"):
        return "type must be one of sms, mms, whatsapp"
    if kind == "mms" and not body.get("media_urls"):
        return "media_urls is required for mms"
    if kind != "mms" and not body.get("text"):
        return "text parameter is required"
    if body.get("url") and body.get("method", "POST") not in ("GET", "POST"):
        return "method must be GET or POST"
    return None
