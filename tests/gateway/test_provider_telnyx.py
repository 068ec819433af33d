"""Telnyx: Ed25519-signed webhooks (every event at one URL), the v2 Messages sender, presigned media."""
import asyncio
import base64
import importlib.util
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from pydantic import ValidationError

from gateway.fields import MalformedWebhook, SignatureError
from gateway.messages import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, Media, OutboundSms, SendError
from gateway.providers import WebhookRequest
from gateway.providers.http import HttpClient
from gateway.providers.telnyx import PROVIDER, TelnyxSender, TelnyxSettings, TelnyxWebhook
from tests.fakes.telnyx_api import FakeTelnyxApi, public_key_of, sign
from tests.gateway import reading

URL = "https://chat.example.com/webhooks/telnyx/main"
STATUS_URL = URL + "/status"
SMS = OutboundSms(connector="main", sender="+14155550100", recipient="+14155550123", text="Hello", reference="r1")
MESSAGE_ID = "7ee4241c-f127-47e5-9c34-3aac291f8058"


@pytest.fixture(scope="module")
def fake() -> FakeTelnyxApi:
    """A fake whose webhooks need no server (its REST API is started by `api`)."""
    return FakeTelnyxApi()


@pytest.fixture(scope="module")
def hook(fake) -> TelnyxWebhook:
    return TelnyxWebhook("main", fake.public_key)


@pytest.fixture
async def api():
    api = await FakeTelnyxApi().start()
    yield api
    await api.stop()


@pytest.fixture
async def sender(api):
    sender = TelnyxSender(api.api_key, api.base_url)
    yield sender
    await sender.close()


def inbound(fake, text="Hello agent", media=None, sender="+14155550123", to="+14155550100"):
    [webhook] = fake.inbound(URL, sender, to, text, MESSAGE_ID, media)
    return webhook


def events(hook, webhook, route="message", received_at=None):
    return hook.events(WebhookRequest(URL, webhook.body, webhook.headers, received_at=received_at), route)


def with_payload(fake, event_type="message.received", **changes):
    """A signed event whose payload is the fake's inbound payload with `changes` (None removes a field)."""
    body = json.loads(inbound(fake).body)
    body["data"]["event_type"] = event_type
    payload = body["data"]["payload"]
    for name, value in changes.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return fake.signed(json.dumps(body).encode())


# --- inbound messages -------------------------------------------------------------------------------


def test_reads_a_signed_inbound_sms(fake, hook):
    webhook = inbound(fake)
    sms = reading.message(hook, URL, webhook.body, webhook.headers)
    assert (sms.connector, sms.provider_id, sms.sender, sms.recipient, sms.text, sms.media, sms.original) == (
        "main", MESSAGE_ID, "+14155550123", "+14155550100", "Hello agent", (), None)
    assert sms.received_at is not None and abs(sms.received_at - datetime.now(UTC)).total_seconds() < 60


def test_reads_media_without_text(fake, hook):
    media = [("https://media.telnyx.com/a/1.jpg?X-Amz-Signature=x", "image/jpeg"), ("https://m.example/2", "video/mp4")]
    [sms] = events(hook, inbound(fake, text="", media=media))
    assert sms.text == ""
    assert sms.media == (Media(*media[0]), Media(*media[1]))
    [sms] = events(hook, with_payload(fake, text=None, media=[{"url": "https://m.example/3", "content_type": None}]))
    assert (sms.text, sms.media) == ("", (Media("https://m.example/3", "application/octet-stream"),))


def test_documented_example_is_read(fake, hook):
    # The payload of https://developers.telnyx.com/api-reference/callbacks/inbound-message, trimmed.
    body = json.dumps({"data": {
        "record_type": "event", "id": "bf6307bd-884d-4c1f-b6ea-c62b8c495d3c", "event_type": "message.received",
        "occurred_at": "2019-01-23T18:10:02.574Z",
        "payload": {"record_type": "message", "direction": "inbound", "id": MESSAGE_ID, "type": "SMS",
                    "from": {"phone_number": "+18665550001", "carrier": "T-MOBILE USA, INC.", "line_type": "Wireless"},
                    "to": [{"phone_number": "+18445550001", "status": "delivered", "carrier": "TELNYX LLC",
                            "line_type": "VoIP"}],
                    "cc": [], "text": "Hello, World!", "subject": "From Telnyx!", "media": [], "encoding": "GSM-7",
                    "parts": 1, "tags": ["Greetings"], "cost": {"amount": "0.0051", "currency": "USD"}}},
        "meta": {"attempt": 1, "delivered_to": "https://www.example.com/hooks"}}).encode()
    [sms] = events(hook, fake.signed(body))
    assert (sms.sender, sms.recipient, sms.text) == ("+18665550001", "+18445550001", "Hello, World!")
    assert sms.received_at == datetime(2019, 1, 23, 18, 10, 2, 574000, tzinfo=UTC)


def test_to_as_one_number_and_short_code_sender(fake, hook):
    [sms] = events(hook, with_payload(fake, to="+14155550100", **{"from": {"phone_number": "12345"}}))
    assert (sms.sender, sms.recipient) == ("12345", "+14155550100")


def test_route_does_not_matter(fake, hook):
    assert events(hook, inbound(fake), route="status")[0].text == "Hello agent"


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_headers_are_read_whatever_their_case(fake, hook, case):
    webhook = inbound(fake)
    headers = {case(k): v for k, v in webhook.headers.items()}
    assert hook.events(WebhookRequest(URL, webhook.body, headers), "message")
    assert hook.events(WebhookRequest(URL, webhook.body, CIMultiDict(headers)), "message")


def test_unstorable_text_is_repaired_and_the_body_kept(fake, hook):
    webhook = with_payload(fake, text="a\x00b")
    [sms] = events(hook, webhook)
    assert (sms.text, sms.original) == ("a\ufffdb", webhook.body)


def test_other_event_types_carry_nothing(fake, hook):
    for event_type in ("message.delivered_to_webhook", "number_order.complete", "message.deleted"):
        assert events(hook, with_payload(fake, event_type=event_type)) == ()


def test_reply_is_json_200():
    assert (TelnyxWebhook.reply.status, TelnyxWebhook.reply.content_type) == (200, "application/json")


# --- signatures -------------------------------------------------------------------------------------


def test_forged_signature_is_refused(fake, hook):
    with pytest.raises(SignatureError) as caught:
        events(hook, fake.forged(inbound(fake)))
    assert caught.value.status == 403


def test_tampered_body_and_timestamp_are_refused(fake, hook):
    webhook = inbound(fake)
    with pytest.raises(SignatureError):
        hook.events(WebhookRequest(URL, webhook.body.replace(b"Hello", b"Hullo"), webhook.headers), "message")
    headers = {**webhook.headers, "telnyx-timestamp": str(int(webhook.headers["telnyx-timestamp"]) + 1)}
    with pytest.raises(SignatureError):
        hook.events(WebhookRequest(URL, webhook.body, headers), "message")


@pytest.mark.parametrize("missing", ["telnyx-signature-ed25519", "telnyx-timestamp"])
def test_missing_headers_are_refused(fake, hook, missing):
    webhook = inbound(fake)
    headers = {k: v for k, v in webhook.headers.items() if k != missing}
    with pytest.raises(SignatureError, match=f"missing header {missing}"):
        hook.events(WebhookRequest(URL, webhook.body, headers), "message")


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_stale_and_future_timestamps_are_refused(fake, hook, offset):
    now = time.time()
    webhook = fake.signed(inbound(fake).body, timestamp=int(now) + offset)
    with pytest.raises(SignatureError, match="stale"):
        events(hook, webhook, received_at=now)


def test_timestamps_are_judged_against_arrival(fake, hook):
    sent = int(time.time()) - 3600
    webhook = fake.signed(inbound(fake).body, timestamp=sent)
    assert events(hook, webhook, received_at=sent + 299)
    with pytest.raises(SignatureError):
        events(hook, webhook)  # judged against now


@pytest.mark.parametrize(("signature", "timestamp"), [
    ("not base64!", None), (base64.b64encode(b"x" * 63).decode(), None), ("é", None), ("\udcff", None),
    (None, "12.5"), (None, "-1"), (None, "1e9"), (None, "9" * 40), (None, "١٢٣"), (None, "\udcff"),
])
def test_malformed_signature_headers_are_refused(fake, hook, signature, timestamp):
    webhook = inbound(fake)
    headers = dict(webhook.headers)
    if signature is not None:
        headers["telnyx-signature-ed25519"] = signature
    if timestamp is not None:
        headers["telnyx-timestamp"] = timestamp
    with pytest.raises(SignatureError):
        hook.events(WebhookRequest(URL, webhook.body, headers), "message")


@pytest.mark.parametrize("body", [b"", b"\xff\xfe garbage", b"{}", b"[]", b'{"data": {}}'])
def test_signature_is_checked_before_parsing(hook, body):
    headers = {"telnyx-timestamp": str(int(time.time())),
               "telnyx-signature-ed25519": base64.b64encode(b"\0" * 64).decode()}
    with pytest.raises(SignatureError):
        hook.events(WebhookRequest(URL, body, headers), "message")


def test_signature_is_over_the_raw_bytes(fake, hook):
    # Telnyx signs the body exactly as sent: the same JSON re-serialised does not verify.
    webhook = inbound(fake)
    respaced = json.dumps(json.loads(webhook.body), indent=1).encode()
    with pytest.raises(SignatureError):
        hook.events(WebhookRequest(URL, respaced, webhook.headers), "message")


async def test_read_checks_in_the_helper_process_and_answers_as_events_does(fake):
    """What the node calls: the signature checked in the Ed25519 helper, the same events and the same refusals."""
    hook = TelnyxWebhook("main", fake.public_key)
    try:
        webhook = inbound(fake)
        request = WebhookRequest(URL, webhook.body, webhook.headers)
        assert await hook.read(request, "message") == hook.events(request, "message")  # the first starts it
        deadline = time.monotonic() + 10
        while hook._checker.pid is None:
            assert time.monotonic() < deadline, "the Ed25519 helper did not start"
            await asyncio.sleep(0.01)
        assert await hook.read(request, "status") == hook.events(request, "message")
        stale = fake.signed(webhook.body, timestamp=int(time.time()) - 301)
        refused = [fake.forged(webhook), stale,
                   type(webhook)(webhook.body.replace(b"Hello", b"Hullo"), webhook.headers)]
        for bad in refused:
            with pytest.raises(SignatureError) as caught:
                await hook.read(WebhookRequest(URL, bad.body, bad.headers), "message")
            assert caught.value.status == 403
    finally:
        await hook.close()


def test_settings_take_only_an_ed25519_public_key(fake):
    base = {"type": "telnyx", "name": "main", "api_key": "KEY123"}
    conn = TelnyxSettings(**base, public_key=fake.public_key)
    assert conn.api_base == "https://api.telnyx.com" and "KEY123" not in repr(conn)
    for bad in ("x" * 44, base64.b64encode(b"k" * 31).decode() + "=" * 4, base64.b64encode(b"k" * 33).decode()):
        with pytest.raises(ValidationError):
            TelnyxSettings(**base, public_key=bad)


# --- the SDK agrees -----------------------------------------------------------------------------------


def sdk_verification():
    """The SDK's telnyx/lib/webhook_verification.py (Ed25519 with PyNaCl, as client.webhooks.unwrap does it),
    loaded alone: importing the `telnyx` package takes seconds, that module needs only the standard library."""
    pytest.importorskip("nacl")
    spec = importlib.util.find_spec("telnyx")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the telnyx SDK is not installed")
    path = Path(spec.submodule_search_locations[0]) / "lib" / "webhook_verification.py"
    if "telnyx_webhook_verification" not in sys.modules:
        module_spec = importlib.util.spec_from_file_location("telnyx_webhook_verification", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        sys.modules["telnyx_webhook_verification"] = module
    return sys.modules["telnyx_webhook_verification"]


def sdk_verifies(webhook) -> bool:
    verification = sdk_verification()
    try:
        verification.verify_webhook_signature(webhook.body, webhook.headers, FAKE_FOR_SDK.public_key)
    except verification.WebhookVerificationError:
        return False
    return True


FAKE_FOR_SDK = FakeTelnyxApi()
SDK_HOOK = TelnyxWebhook("main", FAKE_FOR_SDK.public_key)


def we_verify(webhook) -> bool:
    try:
        SDK_HOOK._verify(WebhookRequest(URL, webhook.body, webhook.headers))
    except SignatureError:
        return False
    return True


def test_the_sdk_accepts_the_fakes_webhooks_and_refuses_forgeries():
    webhook = inbound(FAKE_FOR_SDK)
    assert sdk_verifies(webhook) and we_verify(webhook)
    assert not sdk_verifies(FAKE_FOR_SDK.forged(webhook)) and not we_verify(FAKE_FOR_SDK.forged(webhook))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.text(max_size=200).map(str.encode), forged=st.booleans(), skew=st.sampled_from([0, 100, 299, 400]),
       mangle=st.sampled_from(["", "flip", "truncate"]))
def test_our_signature_check_answers_as_the_sdks(body, forged, skew, mangle):
    sdk_verification()
    key = Ed25519PrivateKey.generate() if forged else None
    webhook = FAKE_FOR_SDK.signed(body, timestamp=int(time.time()) - skew, key=key)
    signature = webhook.headers["telnyx-signature-ed25519"]
    if mangle == "flip":
        signature = ("B" if signature[0] == "A" else "A") + signature[1:]
    elif mangle == "truncate":
        signature = signature[:40]
    headers = {**webhook.headers, "telnyx-signature-ed25519": signature}
    webhook = type(webhook)(body=webhook.body, headers=headers)
    assert we_verify(webhook) == sdk_verifies(webhook)


# --- statuses -----------------------------------------------------------------------------------------


def sent_record(fake, status="queued"):
    from tests.fakes.provider import Sent

    body = {"from": "+14155550100", "to": "+14155550123", "text": "Hi", "webhook_url": STATUS_URL}
    return Sent("+14155550100", "+14155550123", "Hi", status_url=STATUS_URL, provider_id=MESSAGE_ID, raw=body)


@pytest.mark.parametrize(("telnyx", "ours"), [
    ("queued", QUEUED), ("sending", QUEUED), ("sent", SENT), ("delivered", DELIVERED), ("read", DELIVERED),
    ("delivery_unconfirmed", SENT), ("delivery_failed", UNDELIVERED), ("expired", UNDELIVERED),
    ("sending_failed", FAILED),
])
@pytest.mark.parametrize("event_type", ["message.sent", "message.finalized"])
@pytest.mark.parametrize("route", ["status", "message"])
def test_every_documented_status_is_mapped(fake, hook, telnyx, ours, event_type, route):
    webhook = fake.status(STATUS_URL, sent_record(fake), telnyx, event_type=event_type)
    [report] = events(hook, webhook, route=route)
    assert (report.connector, report.provider_id, report.status, report.error) == ("main", MESSAGE_ID, ours, None)


def test_status_errors_are_kept(fake, hook):
    errors = [{"code": "40008", "title": "Undeliverable", "detail": "The carrier did not accept the message."},
              {"code": "40001", "title": "Not routable"}]
    [report] = events(hook, fake.status(STATUS_URL, sent_record(fake), "delivery_failed", errors))
    assert report.status == UNDELIVERED
    assert report.error == "40008: Undeliverable: The carrier did not accept the message.; 40001: Not routable"


def test_delivered_webhook_from_the_fake(fake, hook):
    webhook = fake.delivered(STATUS_URL, sent_record(fake))
    assert webhook.route == "status"
    [report] = events(hook, webhook, route="status")
    assert (report.provider_id, report.status) == (MESSAGE_ID, DELIVERED)


def test_unknown_status_names_the_field(fake, hook):
    with pytest.raises(MalformedWebhook, match="'data.payload.to\\[0\\].status': 'received' is not one of") as caught:
        events(hook, fake.status(STATUS_URL, sent_record(fake), "received"))
    assert caught.value.field == "data.payload.to[0].status"


# --- malformed bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("event_type", "changes", "field"), [
    ("message.received", {"id": None}, "data.payload.id"),
    ("message.received", {"from": None}, "data.payload.from"),
    ("message.received", {"from": {"phone_number": "+1"}}, "data.payload.from.phone_number"),
    ("message.received", {"to": []}, "data.payload.to"),
    ("message.received", {"to": None}, "data.payload.to"),
    ("message.received", {"to": [{"phone_number": 5}]}, "data.payload.to[0].phone_number"),
    ("message.received", {"text": None}, "data.payload.text"),
    ("message.received", {"text": "x" * 10_001}, "data.payload.text"),
    ("message.received", {"media": [{"content_type": "image/png"}]}, "data.payload.media[0].url"),
    ("message.received", {"media": "x"}, "data.payload.media"),
    ("message.received", {"received_at": "yesterday"}, "data.payload.received_at"),
    ("message.finalized", {"to": None}, "data.payload.to"),
    ("message.finalized", {"to": []}, "data.payload.to"),
    ("message.finalized", {"to": [{"phone_number": "+14155550123"}]}, "data.payload.to[0].status"),
    ("message.finalized", {"errors": [{"code": ["x"]}], "to": [{"status": "sent"}]}, "data.payload.errors[0].code"),
    ("message.sent", {"id": "x" * 200, "to": [{"status": "sent"}]}, "data.payload.id"),
])
def test_field_errors_name_the_field(fake, hook, event_type, changes, field):
    with pytest.raises(MalformedWebhook) as caught:
        events(hook, with_payload(fake, event_type, **changes))
    assert caught.value.field == field
    assert caught.value.status == 400


@pytest.mark.parametrize(("body", "field"), [
    (b"not json", "body"), (b"[1]", "body"), (b"{}", "data"), (b'{"data": []}', "data"),
    (b'{"data": {}}', "data.event_type"), (b'{"data": {"event_type": 7}}', "data.event_type"),
    (b'{"data": {"event_type": "message.received"}}', "data.payload"),
    (b'{"data": {"event_type": "message.sent", "payload": "x"}}', "data.payload"),
])
def test_envelope_errors_name_the_field(fake, hook, body, field):
    with pytest.raises(MalformedWebhook) as caught:
        events(hook, fake.signed(body))
    assert caught.value.field == field


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_under_a_valid_signature_raise_only_malformed(fake, hook, body):
    try:
        events(hook, fake.signed(body))
    except MalformedWebhook as err:
        assert err.field
    # reaching here without an exception is also fine (an event type we ignore)


FIELDS = ["id", "from", "to", "text", "media", "received_at", "errors"]
BASE_BODY = json.dumps({"data": {"event_type": "message.received", "id": "e1", "payload": {
    "id": MESSAGE_ID, "from": {"phone_number": "+14155550123"}, "to": [{"phone_number": "+14155550100", "status": "sent"}],
    "text": "Hi", "media": [], "errors": []}}})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(event_type=st.sampled_from(["message.received", "message.sent", "message.finalized"]),
       values=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4),
       nested=st.dictionaries(st.sampled_from(["phone_number", "status", "url", "content_type", "code"]), JSON,
                              max_size=3),
       where=st.sampled_from(["from", "to", "media", "errors"]))
def test_arbitrary_json_values_under_a_valid_signature_raise_only_malformed(fake, hook, event_type, values, nested,
                                                                          where):
    body = json.loads(BASE_BODY)
    body["data"]["event_type"] = event_type
    payload = body["data"]["payload"]
    payload[where] = nested if where == "from" else [nested]
    payload.update(values)
    try:
        events(hook, fake.signed(json.dumps(body).encode()))
    except MalformedWebhook as err:
        assert err.field and err.field.startswith(("data", "body"))


# --- sending ------------------------------------------------------------------------------------------


async def test_sends_the_documented_request(sender, api):
    result = await sender.send(SMS)
    assert result.status == QUEUED
    [sent] = api.sent
    assert result.provider_ids == (sent.provider_id,) and sent.provider_id in api.messages
    assert sent.raw == {"from": "+14155550100", "to": "+14155550123", "text": "Hello"}
    assert (sent.sender, sent.recipient, sent.text) == ("+14155550100", "+14155550123", "Hello")
    assert sent.headers["Authorization"] == f"Bearer {api.api_key}"
    assert sent.headers["Content-Type"].startswith("application/json")


async def test_sends_media_webhook_url_and_profile(api):
    sender = TelnyxSender(api.api_key, api.base_url + "/", messaging_profile_id="16fd2706-8baf-433b-82eb-8c7fada847da")
    try:
        sms = OutboundSms("main", "+14155550100", "+14155550123", "", "r2", status_callback=STATUS_URL,
                          media=("https://chat.example.com/m/1.png",))
        await sender.send(sms)
    finally:
        await sender.close()
    [sent] = api.sent
    assert sent.raw == {"from": "+14155550100", "to": "+14155550123", "media_urls": ["https://chat.example.com/m/1.png"],
                        "webhook_url": STATUS_URL, "messaging_profile_id": "16fd2706-8baf-433b-82eb-8c7fada847da"}
    assert (sent.media, sent.status_url) == (("https://chat.example.com/m/1.png",), STATUS_URL)


async def test_status_updates_for_a_sent_message_are_read(sender, api):
    sms = OutboundSms("main", "+14155550100", "+14155550123", "Hi", "r3", status_callback=STATUS_URL)
    (provider_id,) = (await sender.send(sms)).provider_ids
    hook = TelnyxWebhook("main", api.public_key)
    [report] = events(hook, api.delivered(STATUS_URL, api.sent[0]), route="status")
    assert (report.provider_id, report.status) == (provider_id, DELIVERED)


async def test_opt_out_refusal(sender, api):
    api.refuse_next_as_opted_out()
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    err = caught.value
    assert (err.opt_out, err.temporary, err.code) == (True, False, "40300")
    assert "Blocked due to STOP message" in err.message and "+14155550123" in err.message
    assert (await sender.send(SMS)).provider_ids


async def test_throttling_is_temporary_with_retry_after(sender, api):
    api.fail_next(429, retry_after="7")
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.temporary, caught.value.retry_after, caught.value.code) == (True, 7.0, "10011")
    assert not caught.value.opt_out


async def test_throttling_reads_x_ratelimit_reset(sender, api):
    api.fail_next(429, headers={"x-ratelimit-reset": "12"})
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.temporary, caught.value.retry_after) == (True, 12.0)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_temporary(sender, api, status):
    api.fail_next(status)
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert caught.value.temporary and caught.value.code == "10007"


async def test_invalid_parameters_are_permanent_with_code_and_words(sender, api):
    with pytest.raises(SendError) as caught:
        await sender.send(OutboundSms("main", "+14155550100", "4155550123", "Hello", "r4"))
    err = caught.value
    assert (err.temporary, err.code, err.opt_out) == (False, "10016", False)
    assert err.message == "Phone number must be in +E.164 format: The 'to' parameter must be in +E.164 format."
    assert str(err).startswith("10016: ")


async def test_carrier_refusal_keeps_telnyx_words(sender, api):
    api.fail_next(422, code="40013", title="Invalid source number", detail="The source number is not active.")
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.temporary, caught.value.code) == (False, "40013")
    assert caught.value.message == "Invalid source number: The source number is not active."


async def test_wrong_api_key_is_permanent_and_not_shown(api):
    sender = TelnyxSender("KEYWRONG0123", api.base_url)
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert (caught.value.temporary, caught.value.code) == (False, "10009")
    assert "KEYWRONG0123" not in str(caught.value) and api.api_key not in str(caught.value)


async def test_answer_without_an_id_is_permanent(serve):
    from aiohttp import web

    async def handler(request):
        return web.json_response({"data": {"to": [{"status": "queued"}]}})

    url = await serve(handler)
    sender = TelnyxSender("KEY", url.removesuffix("/hook"))
    sender.url = url
    try:
        with pytest.raises(SendError, match="without a message id") as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert not caught.value.temporary


async def test_unreachable_api_is_temporary(closed_port):
    sender = TelnyxSender("KEY", f"http://127.0.0.1:{closed_port}")
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert caught.value.temporary


async def test_sender_from_the_provider_row(api):
    conn = TelnyxSettings(type="telnyx", name="main", api_key=api.api_key, public_key=api.public_key,
                          api_base=api.base_url)
    from gateway.providers.base import SenderContext

    async def report(_):
        return None

    sender = PROVIDER.sender(conn, SenderContext(report=report))
    try:
        assert (await sender.send(SMS)).provider_ids
    finally:
        await sender.close()
    assert PROVIDER.webhook is not None and PROVIDER.webhook(conn).events(
        WebhookRequest(URL, *_pair(inbound(api))), "message")[0].text == "Hello agent"


def _pair(webhook):
    return webhook.body, webhook.headers


# --- media --------------------------------------------------------------------------------------------


async def test_media_is_fetched_without_credentials(api):
    assert PROVIDER.media_headers is None  # Telnyx's media links are presigned
    url = api.media_url("photo.png")
    [sms] = events(TelnyxWebhook("main", api.public_key), inbound(api, text="", media=[(url, "image/png")]))
    http = HttpClient(5.0)
    try:
        answer = await http.request("GET", sms.media[0].url)
        assert answer.status == 200 and answer.body.startswith(b"\x89PNG")
        refused = await http.request("GET", url.split("?")[0])
        assert refused.status == 403
    finally:
        await http.close()


def test_provider_row():
    assert (PROVIDER.type, PROVIDER.url_path, PROVIDER.supports.mms_in, PROVIDER.supports.mms_out) == (
        "telnyx", "telnyx", True, True)
    assert PROVIDER.status_url("https://chat.example.com/", "main") == STATUS_URL


def test_fake_signs_as_documented(fake):
    # The signed message is "{timestamp}|{body}": checked here against a key pair of our own.
    private = Ed25519PrivateKey.generate()
    signature = base64.b64decode(sign(private, "1700000000", b'{"a":1}'))
    private.public_key().verify(signature, b'1700000000|{"a":1}')
    assert len(base64.b64decode(public_key_of(private))) == 32
