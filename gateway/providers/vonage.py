"""Vonage: the Messages API (v1, SMS and MMS) or the older SMS API, chosen by the connector's `api`.

Messages API (https://developer.vonage.com/en/messages/concepts/signed-webhooks,
https://developer.vonage.com/en/api/messages, https://developer.vonage.com/en/messages/concepts/messages-status-callbacks):
- Inbound and status webhooks are JSON POSTs with `Authorization: Bearer <JWT>`, HS256 with the account's
  signature secret (SHA-256 whatever the dashboard's signature method says); claims `iat`, `payload_hash` (hex
  SHA-256 of the raw body), `api_key`. Tokens older than `max_signature_age` seconds are refused.
- Inbound: message_uuid, to, from (digits, no "+"), channel sms|mms, message_type text|image|video|audio|file|vcard,
  text, {image|video|...: {url, caption?}}, timestamp (ISO 8601). Other channels are not ours: no event.
- Status: message_uuid, status submitted|delivered|read|rejected|undeliverable (failed accepted too), error {type,
  title, detail, instance} (title is Vonage's numeric code in status callbacks).
- Sending: POST {api_base}/v1/messages, JSON {message_type, text | image{url, caption}, to, from, channel, client_ref,
  webhook_url}, HTTP Basic api_key:api_secret; 202 {"message_uuid"}. MMS types image, video, audio, vcard and file
  take one attachment each: one request per attachment, the text the first one's caption. Errors RFC 7807 {type, title, detail, instance}
  (https://developer.vonage.com/en/api-errors/messages: 1050 "Number barred" is the recipient's block list).
SMS API (https://developer.vonage.com/en/messaging/sms/guides/inbound-sms, .../delivery-receipts,
https://developer.vonage.com/en/getting-started/concepts/signing-messages, https://developer.vonage.com/api-errors/sms):
- Webhooks come as GET query parameters, POST form or POST JSON (the dashboard's choice). Signed ones carry `sig`:
  every other parameter sorted by name as "&name=value" ("&" and "=" in values read as "_"), then MD5 of that
  string followed by the secret ("md5hash", Vonage's default) or its HMAC (md5|sha1|sha256|sha512) keyed with the
  secret; hex, either case. `timestamp` (unix seconds) is signed and judged like the JWT's `iat`.
- Inbound: msisdn, to, messageId, text, type text|unicode|binary, keyword, message-timestamp, and for a long message
  concat=true, concat-ref, concat-total, concat-part (each part posted alone: returned as a Part).
- Receipts: messageId, msisdn, to, status delivered|expired|failed|rejected|accepted|buffered|unknown, err-code.
- Sending: POST {api_base}/sms/json form {api_key, api_secret, from, to, text, type=unicode?, callback, client-ref};
  200 {"message-count", "messages": [{"status", "message-id" | "error-text"}]}, one message per part of a long text.
  Status 7 "Number Barred" (blacklisted: STOP) is an opt-out; 1 Throttled, 5, 10 and 9 (top up and retry) temporary.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import mimetypes
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import jwt
from pydantic import Field, SecretStr

from gateway.fields import Fields, MalformedWebhook, SignatureError, decode_body, form_pairs, json_object
from gateway.messages import (
    DELIVERED,
    FAILED,
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
    Part,
    Provider,
    Reader,
    Route,
    SenderContext,
    Simulated,
    Supports,
    WebhookRequest,
    basic_auth,
    e164_digits,
    header,
)
from gateway.providers.http import Answer, HttpClient
from gateway.text import UCS2, encoding_for

API_BASES = {"messages": "https://api.nexmo.com", "sms": "https://rest.nexmo.com"}
SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]
CLOCK_SKEW = 60.0  # seconds a token may seem to come from the future

MESSAGE_STATUSES = {"submitted": SENT, "delivered": DELIVERED, "read": DELIVERED, "rejected": FAILED,
                    "undeliverable": UNDELIVERED, "failed": FAILED}
SMS_STATUSES = {"accepted": SENT, "buffered": SENT, "unknown": SENT, "delivered": DELIVERED,
                "expired": UNDELIVERED, "failed": FAILED, "rejected": FAILED}
MEDIA_TYPES = ("image", "video", "audio", "file", "vcard")
DEFAULT_CONTENT_TYPES = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mpeg",
                         "file": "application/octet-stream", "vcard": "text/vcard"}
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
SMS_OPT_OUT = frozenset({"7"})  # Number Barred: on the account's block list (the recipient sent STOP)
SMS_TEMPORARY = frozenset({"1", "5", "9", "10"})  # Throttled, Internal Error, Quota (top up), Too Many Binds
MESSAGES_OPT_OUT = frozenset({"1050"})  # Number barred
MAX_CLIENT_REF = 40


class VonageSettings(ApiSettings):
    type: Literal["vonage"]
    api: Literal["messages", "sms"] = "messages"
    api_key: str = Field(min_length=1, max_length=64)
    api_secret: SecretStr
    signature_secret: SecretStr = Field(description="the dashboard's signature secret: it signs the webhooks")
    signature_method: SignatureMethod = Field(
        default="md5hash", description="SMS API webhooks: the dashboard's signature method (Messages: always JWT)")
    max_signature_age: int = Field(default=300, ge=0, le=86_400, description="seconds; 0 accepts any age")
    api_base: HttpUrl | None = Field(default=None, description="default: https://api.nexmo.com (Messages), "
                                                             "https://rest.nexmo.com (SMS)")

    @property
    def base(self) -> str:
        return self.api_base or API_BASES[self.api]


# --- signatures -------------------------------------------------------------------------------------


def sms_signature(secret: str, params: Mapping[str, Any], method: SignatureMethod = "md5hash") -> str:
    """The SMS API's `sig` for `params` (without `sig`): lower-case hex."""
    text = "".join(f"&{key}={_signed_value(params[key])}" for key in sorted(params) if key != "sig")
    if method == "md5hash":
        return hashlib.md5((text + secret).encode("utf-8", "surrogatepass")).hexdigest()
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8", "surrogatepass"), method).hexdigest()


def _signed_value(value: Any) -> str:
    return value.replace("&", "_").replace("=", "_") if isinstance(value, str) else str(value)


def _check_age(issued: Any, what: str, request: WebhookRequest, max_age: int) -> None:
    if isinstance(issued, str) and issued.isascii() and issued.isdigit() and len(issued) <= 12:
        issued = int(issued)
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise SignatureError(f"{what} is not unix seconds")
    now = request.received_at if request.received_at is not None else time.time()
    if issued - now > CLOCK_SKEW or (max_age and now - issued > max_age):
        raise SignatureError(f"{what} is more than {max_age}s from now (stale or replayed)")


# --- webhooks ---------------------------------------------------------------------------------------


def _b64url(segment: str) -> bytes:
    """A JWT segment's bytes: base64url, unpadded (or padded), nothing else."""
    if not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@functools.lru_cache(maxsize=64)  # Vonage's JWT header is the same in every webhook
def _hs256(segment: str) -> bool:
    """Whether a JWT header segment says HS256 (ValueError: it is not a JWT header)."""
    header = json.loads(_b64url(segment).decode("utf-8"))
    return isinstance(header, dict) and header.get("alg") == "HS256"


def hs256_claims(token: str, secret: bytes) -> dict:
    """The claims of a JWT signed HS256 with `secret` (RFC 7515/7519), or SignatureError. Checked here, not with
    PyJWT's decode: that took 0.5 ms a webhook (a per-character scan of each segment and the key's PEM/SSH checks),
    more than the rest of the webhook, and the ingest of every provider must keep up with the generic format's
    (bench/webhook_ingest.py --providers). tests/gateway/test_provider_vonage.py checks it against PyJWT and
    Vonage's own vonage-jwt."""
    refused = SignatureError("bad JWT in Authorization (not signed with the signature secret)")
    parts = token.split(".")
    if len(parts) != 3:
        raise refused
    try:
        hs256, claims, signature = _hs256(parts[0]), json.loads(_b64url(parts[1]).decode("utf-8")), _b64url(parts[2])
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise refused from None
    if not hs256 or not isinstance(claims, dict):
        raise refused
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise refused
    return claims


class MessagesWebhook(Reader):
    """The Messages API's inbound and status webhooks for one connector, signed with a JWT."""

    reply = JSON_OK

    def __init__(self, connector: str, signature_secret: str, *, api_key: str | None = None, max_age: int = 300):
        self.connector = connector
        self.api_key = api_key
        self.max_age = max_age
        self._secret = signature_secret.encode("utf-8")

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        self._verify(request)
        text, altered = decode_body(request.body)
        fields = Fields(json_object(text), altered=altered)
        return self._message(fields, request.body) if route == "message" else (self._status(fields),)

    def _verify(self, request: WebhookRequest) -> None:
        scheme, _, token = (header(request.headers, "Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SignatureError("missing header Authorization: Bearer <JWT>")
        claims = hs256_claims(token.strip(), self._secret)
        expected = hashlib.sha256(request.body).hexdigest()
        if not isinstance(claims.get("payload_hash"), str) or not hmac.compare_digest(
                claims["payload_hash"].lower().encode("utf-8", "surrogateescape"), expected.encode()):
            raise SignatureError("JWT payload_hash is not the body's SHA-256 (tampered)")
        if "iat" not in claims:
            raise SignatureError("JWT has no iat")
        _check_age(claims["iat"], "JWT iat", request, self.max_age)
        if self.api_key and claims.get("api_key", self.api_key) != self.api_key:
            raise SignatureError(f"JWT api_key is not connector {self.connector!r}'s account")

    def _message(self, fields: Fields, body: bytes) -> tuple[Event, ...]:
        if fields.data.get("channel") not in ("sms", "mms"):
            return ()  # WhatsApp, Viber, RCS...: not this gateway's
        kind = fields.choice("message_type", {name: name for name in ("text", *MEDIA_TYPES)})
        media: tuple[Media, ...] = ()
        text = ""
        if kind != "text":
            item = fields.nested(kind)
            url = item.short_text("url")
            media = (Media(url, mimetypes.guess_type(urlsplit(url).path)[0] or DEFAULT_CONTENT_TYPES[kind]),)
            # MMS captions: the docs show `text` beside the media for MMS and `caption` inside it; both are read.
            text = item.text("caption", allow_empty=True, required=False)
        text = fields.text("text", allow_empty=bool(media), required=not media) or text
        return (InboundSms(
            connector=self.connector,
            provider_id=fields.identifier("message_uuid"),
            sender=_number(fields, "from", normalize_sender),
            recipient=_number(fields, "to", normalize_number),
            text=text,
            received_at=fields.timestamp("timestamp"),
            media=media,
            original=body if fields.altered else None,
        ),)

    def _status(self, fields: Fields) -> StatusReport:
        error = fields.nested("error", required=False)
        code = error.optional_text("title") or _code(error.optional_text("type"))
        detail = error.optional_text("detail")
        return StatusReport(
            connector=self.connector,
            provider_id=fields.identifier("message_uuid"),
            status=fields.choice("status", MESSAGE_STATUSES),
            error=": ".join(dict.fromkeys(part for part in (code, detail) if part)) or None,
        )


class SmsApiWebhook(Reader):
    """The SMS API's inbound-message and delivery-receipt webhooks for one connector, signed with `sig`."""

    reply = JSON_OK

    def __init__(self, connector: str, signature_secret: str, method: SignatureMethod = "md5hash", *,
                 api_key: str | None = None, max_age: int = 300):
        self.connector = connector
        self.method = method
        self.api_key = api_key
        self.max_age = max_age
        self._secret = signature_secret

    def events(self, request: WebhookRequest, route: Route) -> tuple[Event, ...]:
        params, altered = self._checked(request)
        fields = Fields(params, altered=altered)
        return self._message(fields, request.body) if route == "message" else (self._receipt(fields),)

    def _checked(self, request: WebhookRequest) -> tuple[dict[str, Any], bool]:
        params, altered = sms_params(request)
        signature = params.pop("sig", None)
        if not isinstance(signature, str) or not signature:
            raise SignatureError("missing parameter sig (ask Vonage to sign this account's webhooks)")
        expected = sms_signature(self._secret, params, self.method).encode("ascii")
        if not hmac.compare_digest(signature.lower().encode("utf-8", "surrogateescape"), expected):
            raise SignatureError(f"bad sig ({self.method} with the signature secret)")
        if "timestamp" not in params:
            raise SignatureError("signed parameters have no timestamp")
        _check_age(params["timestamp"], "timestamp", request, self.max_age)
        if self.api_key and params.get("api-key", self.api_key) != self.api_key:
            raise SignatureError(f"api-key is not connector {self.connector!r}'s account")
        return params, altered

    def _message(self, fields: Fields, body: bytes) -> tuple[Event, ...]:
        if fields.choice("type", {"text": "text", "unicode": "unicode", "binary": "binary"}) == "binary":
            return ()  # WAP push, ringtones...: nothing a person wrote
        concat = str(fields.data.get("concat", "")).lower() == "true"
        sms = InboundSms(
            connector=self.connector,
            provider_id=fields.identifier("messageId"),
            sender=_number(fields, "msisdn", normalize_sender),
            recipient=_number(fields, "to", normalize_number),
            text=fields.text("text", allow_empty=concat),
            received_at=fields.timestamp("message-timestamp"),
            original=body if fields.altered else None,
        )
        if not concat:
            return (sms,)
        total = fields.integer("concat-total", 1, 255, default=-1)
        number = fields.integer("concat-part", 1, 255, default=-1)
        if total < 1:
            raise MalformedWebhook("missing field 'concat-total'", "concat-total")
        if not 1 <= number <= total:
            raise MalformedWebhook(f"field 'concat-part' must be an integer from 1 to {total}", "concat-part")
        return (Part(sms, reference=fields.identifier("concat-ref"), number=number, total=total),)

    def _receipt(self, fields: Fields) -> StatusReport:
        code = fields.optional_text("err-code")
        return StatusReport(
            connector=self.connector,
            provider_id=fields.identifier("messageId"),
            status=fields.choice("status", SMS_STATUSES),
            error=None if code in (None, "0") else f"err-code {code}",
        )


def sms_params(request: WebhookRequest) -> tuple[dict[str, Any], bool]:
    """The SMS API webhook's parameters: the query of a GET (or of a POST without a body), else the JSON
    object or form in the body; and whether their text had to be decoded with replacements."""
    if request.method.upper() == "GET" or not request.body.strip():
        return _form(urlsplit(request.url).query.encode("utf-8", "surrogateescape"))
    if request.body.lstrip()[:1] == b"{":
        text, altered = decode_body(request.body)
        try:
            return dict(json_object(text)), altered
        except MalformedWebhook:
            raise SignatureError("body is neither a form nor a JSON object: it carries no sig") from None
    return _form(request.body)


def _form(raw: bytes) -> tuple[dict[str, Any], bool]:
    try:
        return dict(form_pairs(raw.decode("utf-8"))), False
    except UnicodeDecodeError:
        return dict(form_pairs(raw.decode("utf-8", "replace"), errors="replace")), True


def _number(fields: Fields, name: str, normalize: Any) -> str:
    """A number Vonage writes without its "+" (447700900001), or a short code / sender id."""
    return fields.number(name, lambda value: normalize(e164_digits(value.strip())))


def _code(error_type: str | None) -> str | None:
    """Vonage's code from an RFC 7807 `type` (".../api-errors/messages#1050" -> "1050")."""
    if not error_type:
        return None
    return error_type.rsplit("#", 1)[1] if "#" in error_type else error_type.rstrip("/").rsplit("/", 1)[-1]


# --- sending ----------------------------------------------------------------------------------------


class VonageSender:
    """Sends SMS (and MMS on the Messages API) with one Vonage account."""

    def __init__(self, api: Literal["messages", "sms"], api_key: str, api_secret: str, api_base: str | None = None,
                 timeout: float = 10.0):
        self.api = api
        self.url = (api_base or API_BASES[api]).rstrip("/") + ("/v1/messages" if api == "messages" else "/sms/json")
        self._credentials = {"api_key": api_key, "api_secret": api_secret}
        auth = {"Authorization": basic_auth(api_key, api_secret)} if api == "messages" else {}
        self._http = HttpClient(timeout, auth)

    async def send(self, sms: OutboundSms) -> SendResult:
        if self.api == "sms":
            return await self._send_sms(sms)
        ids = []
        for body in messages_bodies(sms):
            answer = await self._http.post(self.url, json=body)
            if not answer.ok:
                raise messages_error(answer)
            uuid_ = answer.field("message_uuid")
            if not isinstance(uuid_, str) or not uuid_:
                raise SendError(f"Vonage answered {answer.status} without a message_uuid", temporary=False)
            ids.append(uuid_)
        return SendResult(provider_ids=tuple(ids))

    async def _send_sms(self, sms: OutboundSms) -> SendResult:
        if sms.media:
            raise SendError("Vonage's SMS API sends no MMS (use api: messages)", temporary=False)
        answer = await self._http.post(self.url, data={**self._credentials, **sms_form(sms)})
        if not answer.ok:
            raise answer.error(f"Vonage answered HTTP {answer.status}")
        messages = answer.field("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise SendError(f"Vonage answered {answer.status} without messages", temporary=False)
        for message in messages:
            status = str(message.get("status", ""))
            if status != "0":
                text = str(message.get("error-text") or "Vonage refused the message")
                raise answer.error(text, code=status, opt_out=status in SMS_OPT_OUT,
                                   temporary=status in SMS_TEMPORARY)
        ids = tuple(str(m.get("message-id") or "") for m in messages)
        if not all(ids):
            raise SendError("Vonage accepted a message without a message-id", temporary=False)
        return SendResult(provider_ids=ids)

    async def close(self) -> None:
        await self._http.close()


def _digits(number: str) -> str:
    """How Vonage writes numbers: E.164 without "+" (alphanumeric sender ids unchanged)."""
    return number[1:] if number.startswith("+") and number[1:].isdigit() else number


def messages_bodies(sms: OutboundSms) -> list[dict[str, Any]]:
    """The Messages API request(s) for `sms`: one text SMS, or one MMS per attachment (the text its caption)."""
    common: dict[str, Any] = {"to": _digits(sms.recipient), "from": _digits(sms.sender)}
    if len(sms.reference) <= MAX_CLIENT_REF:
        common["client_ref"] = sms.reference
    if sms.status_callback:
        common["webhook_url"] = sms.status_callback
    if not sms.media:
        return [{"message_type": "text", "text": sms.text, "channel": "sms", **common}]
    bodies = []
    for n, url in enumerate(sms.media):
        kind = _mms_kind(url)
        item: dict[str, Any] = {"url": url}
        if n == 0 and sms.text:
            item["caption"] = sms.text
        bodies.append({"message_type": kind, kind: item, "channel": "mms", **common})
    return bodies


def _mms_kind(url: str) -> str:
    """An attachment's MMS message type (image, video, audio, vcard or file) by its URL's extension (didchat's have one)."""
    kind = mimetypes.guess_type(urlsplit(url).path)[0] or "image/"
    top = kind.split("/")[0]
    return "vcard" if kind in ("text/vcard", "text/x-vcard") else top if top in ("image", "video", "audio") else "file"


def sms_form(sms: OutboundSms) -> dict[str, str]:
    """The SMS API form fields for `sms` (credentials aside)."""
    form = {"from": _digits(sms.sender), "to": _digits(sms.recipient), "text": sms.text}
    if encoding_for(sms.text) == UCS2:
        form["type"] = "unicode"
    if sms.status_callback:
        form["callback"] = sms.status_callback
    if len(sms.reference) <= MAX_CLIENT_REF:
        form["client-ref"] = sms.reference
    return form


def messages_error(answer: Answer) -> SendError:
    """An RFC 7807 answer of the Messages API as a SendError keeping Vonage's code and words."""
    code = _code(answer.field("type") if isinstance(answer.field("type"), str) else None)
    words = [str(answer.field(name)) for name in ("title", "detail") if answer.field(name)]
    message = ": ".join(dict.fromkeys(words)) or f"Vonage answered HTTP {answer.status}"
    return answer.error(message, code=code, opt_out=code in MESSAGES_OPT_OUT)


# --- the table's row --------------------------------------------------------------------------------


def _webhook(conn: VonageSettings) -> MessagesWebhook | SmsApiWebhook:
    secret = conn.signature_secret.get_secret_value()
    if conn.api == "messages":
        return MessagesWebhook(conn.name, secret, api_key=conn.api_key, max_age=conn.max_signature_age)
    return SmsApiWebhook(conn.name, secret, conn.signature_method, api_key=conn.api_key,
                         max_age=conn.max_signature_age)


def _sender(conn: VonageSettings, context: SenderContext) -> VonageSender:
    return VonageSender(conn.api, conn.api_key, conn.api_secret.get_secret_value(), conn.base, context.timeout)


def _simulate(conn: VonageSettings, url: str, sender: str, to: str, text: str, message_id: str) -> Simulated:
    path = f"/webhooks/vonage/{conn.name}"
    secret = conn.signature_secret.get_secret_value()
    now = int(time.time())
    if conn.api == "messages":
        body = json.dumps({"channel": "sms", "message_type": "text", "message_uuid": message_id or str(uuid.uuid4()),
                           "from": _digits(sender), "to": _digits(to), "text": text}).encode()
        token = jwt.encode({"iat": now, "jti": str(uuid.uuid4()), "iss": "Vonage", "api_key": conn.api_key,
                            "payload_hash": hashlib.sha256(body).hexdigest()}, secret, algorithm="HS256")
        return Simulated(path, body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    params = {"msisdn": _digits(sender), "to": _digits(to), "messageId": message_id or uuid.uuid4().hex[:16].upper(),
              "text": text, "type": "unicode" if encoding_for(text) == UCS2 else "text", "api-key": conn.api_key,
              "timestamp": str(now), "nonce": str(uuid.uuid4())}
    params["sig"] = sms_signature(secret, params, conn.signature_method)
    return Simulated(path, urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded"})


PROVIDER = Provider(
    type="vonage",
    title="Vonage",
    settings=VonageSettings,
    webhook=_webhook,
    sender=_sender,
    supports=Supports(mms_in=True, mms_out=True,
                      signed="Messages API: JWT (HS256, payload_hash); SMS API: sig (MD5 hash or HMAC of the fields)"),
    media_headers=lambda conn: {"Authorization": basic_auth(conn.api_key, conn.api_secret.get_secret_value())},
    no_mms_out=lambda conn: "Vonage SMS API" if conn.api == "sms" else None,
    simulate=_simulate,
)
