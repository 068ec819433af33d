"""A local Vonage API: the Messages API (POST /v1/messages) or the SMS API (POST /sms/json), for tests.

Rules:
- It speaks Vonage's documented wire format: Messages API JSON with HTTP Basic api_key:api_secret, 202
  {"message_uuid"}, RFC 7807 errors {type, title, detail, instance}; SMS API form (or JSON) with api_key and
  api_secret in the body, 200 {"message-count", "messages": [{"status": "0", "message-id", ...}]} with one
  message per part of a long text, and a non-zero per-message status (with "error-text") for refusals.
- Webhooks are signed as Vonage documents, by code here (not gateway.providers): Messages API with a HS256
  JWT over the signature secret carrying payload_hash; SMS API with `sig` (MD5 hash or HMAC, the account's
  signature method) over every other parameter, `timestamp` and `nonce` included.
- It listens on 127.0.0.1 (port 0) and sleeps nowhere.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from aiohttp import web

from gateway.text import GSM7, split_segments
from tests.fakes.provider import Sent, Served, Webhook

ERRORS = "https://developer.vonage.com/api-errors/messages"


def sms_api_signature(secret: str, params: dict[str, Any], method: str) -> str:
    """Vonage's signed-request recipe (concepts/guides/signing-messages), written out independently."""
    signed = ""
    for key in sorted(k for k in params if k != "sig"):
        value = str(params[key])
        signed += "&" + key + "=" + value.replace("&", "_").replace("=", "_")
    if method == "md5hash":
        return hashlib.md5((signed + secret).encode()).hexdigest()
    return hmac.new(secret.encode(), signed.encode(), getattr(hashlib, method)).hexdigest().upper()


def messages_jwt(secret: str, body: bytes, api_key: str, iat: float | None = None) -> str:
    """The JWT Vonage puts in a Messages API webhook's Authorization header."""
    claims = {"iat": int(time.time() if iat is None else iat), "jti": str(uuid.uuid4()), "iss": "Vonage",
              "payload_hash": hashlib.sha256(body).hexdigest(), "api_key": api_key,
              "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"}
    return jwt.encode(claims, secret, algorithm="HS256")


def _plus(number: str) -> str:
    return "+" + number if number.isdigit() and len(number) > 8 else number


def _digits(number: str) -> str:
    return number[1:] if number.startswith("+") else number


class FakeVonageApi(Served):
    """One Vonage account, on a local port, speaking the Messages API or the SMS API."""

    type = "vonage"

    def __init__(self, api: str = "messages", *, signature_method: str = "md5hash", sms_method: str = "POST"):
        self.api = api
        self.signature_method = signature_method
        self.sms_method = sms_method  # how SMS API webhooks come: "POST" (form), "POST-JSON" or "GET"
        self.api_key = secrets.token_hex(4)
        self.api_secret = secrets.token_hex(8)
        self.signature_secret = secrets.token_hex(32)
        self.sent: list[Sent] = []
        self.base_url = ""
        self._failures: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self._refusals: list[tuple[str, str]] = []  # SMS API per-message (status, error-text)
        self._media: dict[str, bytes] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/sms/json", self._sms)
        app.router.add_get("/media/{name}", self._serve_media)

    def connector_yaml(self, name: str, numbers: list[str]) -> str:
        q = json.dumps  # every value quoted: a key of hex digits only would read as a number
        lines = ["  - type: vonage", f"    name: {name}", f"    api: {self.api}", f"    api_key: {q(self.api_key)}",
                 f"    api_secret: {q(self.api_secret)}", f"    signature_secret: {q(self.signature_secret)}",
                 f"    signature_method: {self.signature_method}", f"    api_base: {q(self.base_url)}",
                 f"    numbers: {q(numbers)}"]
        return "\n".join(lines) + "\n"

    # --- failures -----------------------------------------------------------------------------------

    def fail_next(self, status: int = 500, retry_after: str | None = None, code: str = "1030",
                  title: str = "Internal error", detail: str = "There was an error processing your request") -> None:
        """Answer the next send with an HTTP error (RFC 7807 on the Messages API)."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        body = {"type": f"{ERRORS}#{code}", "title": title, "detail": detail, "instance": uuid.uuid4().hex}
        self._failures.append((status, body, headers))

    def refuse_next(self, status: str, error_text: str) -> None:
        """SMS API: answer the next send 200 with this non-zero per-message status."""
        self._refusals.append((status, error_text))

    def refuse_next_as_opted_out(self) -> None:
        if self.api == "sms":
            self.refuse_next("7", "Number Barred")
        else:
            self._failures.append((422, {"type": f"{ERRORS}#1050", "title": "Number barred",
                                         "detail": "The number you are trying to submit to is blacklisted and "
                                                   "may not receive messages.", "instance": uuid.uuid4().hex}, {}))

    # --- REST -----------------------------------------------------------------------------------------

    def _basic(self, request: web.Request) -> tuple[str, str] | None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password

    async def _messages(self, request: web.Request) -> web.Response:
        if self._basic(request) != (self.api_key, self.api_secret):
            return web.json_response({"type": "https://developer.vonage.com/api-errors#unauthorized",
                                      "title": "Unauthorized", "detail": "You did not provide correct credentials.",
                                      "instance": uuid.uuid4().hex}, status=401)
        body = await request.json()
        kind = body.get("message_type")
        media = (body[kind]["url"],) if kind in ("image", "video", "audio", "file", "vcard") else ()
        text = body.get("text") or (body[kind].get("caption", "") if media else "")
        message_uuid = str(uuid.uuid4())
        self.sent.append(Sent(sender=_plus(body["from"]), recipient=_plus(body["to"]), text=text, media=media,
                              status_url=body.get("webhook_url"), provider_id=message_uuid, raw=body,
                              at=time.monotonic(), headers=dict(request.headers)))  # refused ones too
        if self._failures:
            status, payload, headers = self._failures.pop(0)
            return web.json_response(payload, status=status, headers=headers)
        return web.json_response({"message_uuid": message_uuid}, status=202)

    async def _sms(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            form = {k: str(v) for k, v in (await request.json()).items()}
        else:
            form = {k: str(v) for k, v in (await request.post()).items()}
        if self._failures:
            status, payload, headers = self._failures.pop(0)
            return web.json_response(payload, status=status, headers=headers)
        if (form.get("api_key"), form.get("api_secret")) != (self.api_key, self.api_secret):
            return _sms_answer([{"status": "4", "error-text": "Bad Credentials"}])
        if not form.get("to") or not form.get("from"):
            return _sms_answer([{"status": "2", "error-text": "Missing to param"}])
        parts = split_segments(form.get("text", ""))[1]  # Vonage splits a long text: one message-id a part
        ids = [secrets.token_hex(8).upper() for _ in parts]
        self.sent.append(Sent(sender=_plus(form["from"]), recipient=_plus(form["to"]), text=form.get("text", ""),
                              status_url=form.get("callback"), provider_id=ids[0], raw=form, at=time.monotonic(),
                              headers=dict(request.headers)))  # refused ones too
        if self._refusals:
            status, text = self._refusals.pop(0)
            return _sms_answer([{"status": status, "error-text": text}])
        return _sms_answer([{"to": form["to"], "message-id": mid, "status": "0", "remaining-balance": "10.0",
                             "message-price": "0.0333", "network": "23410"} for mid in ids])

    def media_url(self, name: str) -> str:
        self._media.setdefault(name, b"\x89PNG\r\n\x1a\n" + name.encode())
        return f"{self.base_url}/media/{name}"

    async def _serve_media(self, request: web.Request) -> web.Response:
        if self._basic(request) != (self.api_key, self.api_secret):
            return web.Response(status=401)
        data = self._media.get(request.match_info["name"])
        return web.Response(status=404) if data is None else web.Response(body=data, content_type="image/png")

    # --- webhooks -------------------------------------------------------------------------------------

    def inbound(self, url: str, sender: str, to: str, text: str, message_id: str,
                media: list[tuple[str, str]] | None = None) -> list[Webhook]:
        if self.api == "messages":
            body: dict[str, Any] = {"channel": "mms" if media else "sms", "message_uuid": message_id,
                                    "to": _digits(to), "from": _digits(sender),
                                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if media:
                body.update(message_type="image", image={"url": media[0][0]}, text=text)
            else:
                body.update(message_type="text", text=text, sms={"num_messages": "1"})
            return [self._signed_json(body)]
        encoding, parts = split_segments(text)
        base = {"msisdn": _digits(sender), "to": _digits(to), "type": "text" if encoding == GSM7 else "unicode",
                "keyword": (text.split() or [""])[0].upper(), "api-key": self.api_key,
                "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
        if len(parts) == 1:
            return [self._signed_params({**base, "messageId": message_id, "text": text})]
        ref = str(secrets.randbelow(255) + 1)
        return [self._signed_params({**base, "messageId": f"{message_id}-{n}", "text": part, "concat": "true",
                                     "concat-ref": ref, "concat-total": str(len(parts)), "concat-part": str(n)})
                for n, part in enumerate(parts, 1)]

    def delivered(self, url: str, sent: Sent) -> Webhook:
        if self.api == "messages":
            return self._signed_json({"message_uuid": sent.provider_id, "to": _digits(sent.recipient),
                                      "from": _digits(sent.sender), "status": "delivered", "channel": "sms",
                                      "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                      "usage": {"currency": "EUR", "price": "0.0333"}}, route="status")
        return self._signed_params({"msisdn": _digits(sent.recipient), "to": _digits(sent.sender),
                                    "network-code": "23410", "messageId": sent.provider_id, "price": "0.0333",
                                    "status": "delivered", "scts": time.strftime("%y%m%d%H%M", time.gmtime()),
                                    "err-code": "0", "api-key": self.api_key,
                                    "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())},
                                   route="status")

    def forged(self, webhook: Webhook) -> Webhook:
        if self.api == "messages":
            token = messages_jwt("x" * 64, webhook.body, self.api_key)
            return Webhook(webhook.body, {**webhook.headers, "Authorization": f"Bearer {token}"}, webhook.route)
        params = self.params_of(webhook)
        params["sig"] = sms_api_signature("y" * 64, params, self.signature_method)
        return self._encoded(params, webhook.route)

    def params_of(self, webhook: Webhook) -> dict[str, str]:
        """The parameters an SMS API webhook carries, wherever it carries them."""
        if webhook.method == "GET":
            return dict(parse_qsl(webhook.query, keep_blank_values=True))
        if webhook.headers.get("Content-Type") == "application/json":
            return json.loads(webhook.body)
        return dict(parse_qsl(webhook.body.decode(), keep_blank_values=True))

    def _signed_json(self, body: dict[str, Any], route: str = "message") -> Webhook:
        raw = json.dumps(body).encode()
        token = messages_jwt(self.signature_secret, raw, self.api_key)
        return Webhook(raw, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, route)

    def _signed_params(self, params: dict[str, str], route: str = "message") -> Webhook:
        params = {**params, "timestamp": str(int(time.time())), "nonce": str(uuid.uuid4())}
        params["sig"] = sms_api_signature(self.signature_secret, params, self.signature_method)
        return self._encoded(params, route)

    def _encoded(self, params: dict[str, str], route: str) -> Webhook:
        if self.sms_method == "GET":
            return Webhook(b"", {}, route, method="GET", query=urlencode(params))
        if self.sms_method == "POST-JSON":
            return Webhook(json.dumps(params).encode(), {"Content-Type": "application/json"}, route)
        return Webhook(urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded"}, route)


def _sms_answer(messages: list[dict[str, str]]) -> web.Response:
    return web.json_response({"message-count": str(len(messages)), "messages": messages})
