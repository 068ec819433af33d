"""Vonage: Messages API (JWT-signed JSON) and SMS API (sig-signed parameters) webhooks, and the sender against the fake."""
import hashlib
import json
import random
import time
import warnings
from urllib.parse import parse_qsl, urlencode

import aiohttp
import jwt
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.fields import MalformedWebhook, SignatureError
from gateway.messages import DELIVERED, FAILED, SENT, UNDELIVERED, Media, OutboundSms, SendError
from gateway.providers.base import Part, SenderContext, WebhookRequest
from gateway.providers.vonage import (
    PROVIDER,
    MessagesWebhook,
    SmsApiWebhook,
    VonageSender,
    VonageSettings,
    sms_signature,
)
from tests.fakes.vonage_api import FakeVonageApi, messages_jwt, sms_api_signature
from tests.gateway import reading

URL = "https://chat.example.com/webhooks/vonage/main"
SECRET = "s" * 40
KEY = "abcd1234"
METHODS = ["md5hash", "md5", "sha1", "sha256", "sha512"]

INBOUND = {"channel": "sms", "message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab", "to": "14155550100",
           "from": "14155550123", "timestamp": "2025-02-03T12:14:25Z", "text": "Hello agent",
           "sms": {"num_messages": "1", "keyword": "HELLO"}, "message_type": "text"}
SMS_INBOUND = {"msisdn": "14155550123", "to": "14155550100", "messageId": "0A0000000123ABCD1", "text": "Hello agent",
               "type": "text", "keyword": "HELLO", "api-key": KEY, "message-timestamp": "2020-01-01 12:00:00"}


def jwt_signed(body, secret=SECRET, iat=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"Authorization": f"Bearer {messages_jwt(secret, raw, KEY, iat)}", "Content-Type": "application/json"}


def sig_signed(params, method="md5hash", secret=SECRET, timestamp=None):
    params = {**params, "timestamp": str(int(time.time() if timestamp is None else timestamp)), "nonce": "n-1"}
    params["sig"] = sms_api_signature(secret, params, method)
    return urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def hook():
    return MessagesWebhook("main", SECRET, api_key=KEY)


@pytest.fixture
def sms_hook():
    return SmsApiWebhook("main", SECRET, api_key=KEY)


# --- Messages API webhooks ---------------------------------------------------------------------------


def test_messages_inbound_is_read(hook):
    sms = reading.message(hook, URL, *jwt_signed(INBOUND))
    assert (sms.connector, sms.provider_id, sms.sender, sms.recipient, sms.text, sms.media) == (
        "main", INBOUND["message_uuid"], "+14155550123", "+14155550100", "Hello agent", ())
    assert sms.received_at.isoformat() == "2025-02-03T12:14:25+00:00"


def test_messages_mms_with_image(hook):
    body = {**INBOUND, "channel": "mms", "message_type": "image", "image": {"url": "https://api.nexmo.com/m/a.png"}}
    del body["text"]
    sms = reading.message(hook, URL, *jwt_signed(body))
    assert (sms.text, sms.media) == ("", (Media("https://api.nexmo.com/m/a.png", "image/png"),))
    body["image"]["caption"] = "look"
    assert reading.message(hook, URL, *jwt_signed(body)).text == "look"


def test_other_channels_carry_no_event(hook):
    assert hook.events(WebhookRequest(URL, *jwt_signed({**INBOUND, "channel": "whatsapp"})), "message") == ()


def test_sdk_verifies_our_fakes_jwt():
    vonage_jwt = pytest.importorskip("vonage_jwt")
    _, headers = jwt_signed(INBOUND)
    token = headers["Authorization"].removeprefix("Bearer ")
    assert vonage_jwt.verify_signature(token, SECRET)
    assert not vonage_jwt.verify_signature(token, "t" * 40)


@pytest.mark.parametrize("change", ["wrong secret", "tampered", "no header", "not bearer", "garbage", "stale",
                                    "future", "other account", "no hash"])
def test_messages_signature_refusals(hook, change):
    body, headers = jwt_signed(INBOUND)
    if change == "wrong secret":
        body, headers = jwt_signed(INBOUND, secret="t" * 40)
    elif change == "tampered":
        body = body.replace(b"Hello", b"Hullo")
    elif change == "no header":
        headers = {}
    elif change == "not bearer":
        headers = {"Authorization": headers["Authorization"].replace("Bearer", "Basic")}
    elif change == "garbage":
        headers = {"Authorization": "Bearer \udcff.not.a.jwt"}
    elif change == "stale":
        body, headers = jwt_signed(INBOUND, iat=time.time() - 301)
    elif change == "future":
        body, headers = jwt_signed(INBOUND, iat=time.time() + 120)
    elif change == "other account":
        token = jwt.encode({"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest(),
                            "api_key": "other123"}, SECRET, algorithm="HS256")
        headers = {"Authorization": f"Bearer {token}"}
    elif change == "no hash":
        headers = {"Authorization": "Bearer " + jwt.encode({"iat": int(time.time())}, SECRET, algorithm="HS256")}
    with pytest.raises(SignatureError) as caught:
        reading.message(hook, URL, body, headers)
    assert caught.value.status == 403


def test_token_age_is_judged_against_arrival(hook):
    body, headers = jwt_signed(INBOUND, iat=1_700_000_000)
    events = hook.events(WebhookRequest(URL, body, headers, received_at=1_700_000_200), "message")
    assert events[0].text == "Hello agent"
    with pytest.raises(SignatureError, match="stale"):
        hook.events(WebhookRequest(URL, body, headers, received_at=1_700_000_301), "message")
    lenient = MessagesWebhook("main", SECRET, max_age=0)
    assert lenient.events(WebhookRequest(URL, body, headers, received_at=1_800_000_000), "message")


@pytest.mark.parametrize(("vonage", "ours"), [("submitted", SENT), ("delivered", DELIVERED), ("read", DELIVERED),
                                              ("rejected", FAILED), ("undeliverable", UNDELIVERED),
                                              ("failed", FAILED)])
def test_messages_status_mapping(hook, vonage, ours):
    body = {"message_uuid": "u-1", "to": "14155550123", "from": "14155550100", "status": vonage,
            "timestamp": "2025-02-03T12:14:25Z", "channel": "sms", "usage": {"currency": "EUR", "price": "0.0333"}}
    report = reading.status(hook, URL, *jwt_signed(body))
    assert (report.provider_id, report.status, report.error) == ("u-1", ours, None)


def test_messages_status_error(hook):
    body = {"message_uuid": "u-1", "status": "rejected", "channel": "sms",
            "error": {"type": "https://developer.nexmo.com/api-errors/messages#1460", "title": 1460,
                      "detail": "Message failed because the destination was not reachable", "instance": "i-1"}}
    assert reading.status(hook, URL, *jwt_signed(body)).error == \
        "1460: Message failed because the destination was not reachable"
    body["error"] = {"type": "https://developer.nexmo.com/api-errors/messages#1050"}
    assert reading.status(hook, URL, *jwt_signed(body)).error == "1050"


@pytest.mark.parametrize(("change", "field"), [
    ({"message_uuid": None}, "message_uuid"), ({"from": None}, "from"), ({"to": "12"}, "to"),
    ({"text": ""}, "text"), ({"message_type": "reaction"}, "message_type"), ({"timestamp": "noon"}, "timestamp"),
    ({"message_type": "image"}, "image"), ({"message_type": "image", "image": {}}, "image.url"),
])
def test_messages_field_errors_name_the_field(hook, change, field):
    body = {k: v for k, v in {**INBOUND, **change}.items() if v is not None}
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(hook, URL, *jwt_signed(body))
    assert caught.value.field == field


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=100), route=st.sampled_from(["message", "status"]))
def test_messages_arbitrary_bytes_are_malformed(hook, raw, route):
    try:
        hook.events(WebhookRequest(URL, *jwt_signed(raw)), route)
    except MalformedWebhook as err:
        assert err.field
    except Exception as err:  # noqa: BLE001
        pytest.fail(f"{type(err).__name__}: {err}")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(sorted({*INBOUND, "status", "error", "image", "message_type"})),
                               JSON, max_size=5), route=st.sampled_from(["message", "status"]))
def test_messages_arbitrary_values_are_malformed_or_read(hook, changes, route):
    try:
        hook.events(WebhookRequest(URL, *jwt_signed({**INBOUND, "status": "delivered", **changes})), route)
    except MalformedWebhook as err:
        assert err.field
    except Exception as err:  # noqa: BLE001
        pytest.fail(f"{type(err).__name__}: {err}")


# --- SMS API webhooks --------------------------------------------------------------------------------


def test_sms_inbound_form_is_read(sms_hook):
    sms = reading.message(sms_hook, URL, *sig_signed(SMS_INBOUND))
    assert (sms.provider_id, sms.sender, sms.recipient, sms.text) == (
        "0A0000000123ABCD1", "+14155550123", "+14155550100", "Hello agent")
    assert sms.received_at.isoformat() == "2020-01-01T12:00:00+00:00"


def test_sms_inbound_by_get_and_by_json(sms_hook):
    body, _ = sig_signed({**SMS_INBOUND, "text": "a&b=c ü"})
    get = sms_hook.events(WebhookRequest(URL + "?" + body.decode(), b"", {}, "GET"), "message")
    assert get[0].text == "a&b=c ü"
    params = dict(parse_qsl(body.decode()))
    posted = sms_hook.events(WebhookRequest(URL, json.dumps(params).encode(), {"Content-Type": "application/json"}),
                             "message")
    assert posted == get


@pytest.mark.parametrize("method", METHODS)
def test_every_signature_method(method):
    hook = SmsApiWebhook("main", SECRET, method)
    assert reading.message(hook, URL, *sig_signed(SMS_INBOUND, method)).text == "Hello agent"
    other = SmsApiWebhook("main", SECRET, "sha256" if method != "sha256" else "md5")
    with pytest.raises(SignatureError):
        reading.message(other, URL, *sig_signed(SMS_INBOUND, method))


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_our_sms_signature_is_the_sdks(method):
    auth_module = pytest.importorskip("vonage_http_client.auth")
    auth = auth_module.Auth(api_key=KEY, signature_secret=SECRET, signature_method=method)
    params = {**SMS_INBOUND, "text": "x=1&y=2", "timestamp": "1700000000", "nonce": "n"}
    assert sms_signature(SECRET, params, method) == auth.sign_params(dict(params))
    assert auth.check_signature({**params, "sig": sms_api_signature(SECRET, params, method)})


def test_md5hash_is_the_documented_recipe():
    params = {"a": "1", "b": "x&y=z", "timestamp": "1"}
    assert sms_signature(SECRET, params) == hashlib.md5(f"&a=1&b=x_y_z&timestamp=1{SECRET}".encode()).hexdigest()


@pytest.mark.parametrize("change", ["forged", "tampered", "missing", "stale", "no timestamp", "other account"])
def test_sms_signature_refusals(sms_hook, change):
    body, headers = sig_signed(SMS_INBOUND)
    if change == "forged":
        body, headers = sig_signed(SMS_INBOUND, secret="t" * 40)
    elif change == "tampered":
        body = body.replace(b"Hello", b"Hullo")
    elif change == "missing":
        body = urlencode({**SMS_INBOUND, "timestamp": str(int(time.time()))}).encode()
    elif change == "stale":
        body, headers = sig_signed(SMS_INBOUND, timestamp=time.time() - 400)
    elif change == "no timestamp":
        params = {**SMS_INBOUND, "sig": sms_api_signature(SECRET, SMS_INBOUND, "md5hash")}
        body = urlencode(params).encode()
    elif change == "other account":
        body, headers = sig_signed({**SMS_INBOUND, "api-key": "other123"})
    with pytest.raises(SignatureError):
        reading.message(sms_hook, URL, body, headers)


@pytest.mark.parametrize("body", [b"", b"\xff\xfe garbage", b"not=a&form", b"{not json", b"[1]"])
def test_sms_signature_checked_before_parsing(sms_hook, body):
    with pytest.raises(SignatureError):
        reading.message(sms_hook, URL, body, {})


@pytest.mark.parametrize(("vonage", "ours"), [("delivered", DELIVERED), ("expired", UNDELIVERED), ("failed", FAILED),
                                              ("rejected", FAILED), ("accepted", SENT), ("buffered", SENT),
                                              ("unknown", SENT)])
def test_delivery_receipt_mapping(sms_hook, vonage, ours):
    receipt = {"msisdn": "14155550123", "to": "AcmeInc", "network-code": "23410", "messageId": "0A0000001234567B",
               "price": "0.0333", "status": vonage, "scts": "2001011400", "err-code": "0", "api-key": KEY,
               "message-timestamp": "2020-01-01 12:00:00"}
    report = reading.status(sms_hook, URL, *sig_signed(receipt))
    assert (report.provider_id, report.status, report.error) == ("0A0000001234567B", ours, None)
    assert reading.status(sms_hook, URL, *sig_signed({**receipt, "err-code": "6"})).error == "err-code 6"


def test_binary_sms_carries_no_event(sms_hook):
    params = {**SMS_INBOUND, "type": "binary", "data": "00", "udh": "050003"}
    del params["text"]
    assert sms_hook.events(WebhookRequest(URL, *sig_signed(params)), "message") == ()


def test_long_inbound_comes_in_parts_in_any_order():
    fake = FakeVonageApi("sms")
    hook = SmsApiWebhook("main", fake.signature_secret, api_key=fake.api_key)
    text = "".join(f"word{n} " for n in range(80))
    hooks = fake.inbound(URL, "+14155550123", "+14155550100", text, "MID")
    assert len(hooks) == 4  # 560 GSM characters: 153 a part
    random.Random(4).shuffle(hooks)
    parts = [reading.message(hook, URL, h.body, h.headers) for h in hooks]
    assert all(isinstance(p, Part) and p.total == 4 for p in parts)
    assert sorted(p.number for p in parts) == [1, 2, 3, 4]
    assert len({p.reference for p in parts}) == 1
    assert "".join(p.sms.text for p in sorted(parts, key=lambda p: p.number)) == text


@pytest.mark.parametrize(("change", "field"), [
    ({"concat": "true", "concat-ref": "1", "concat-total": "2", "concat-part": "3"}, "concat-part"),
    ({"concat": "true", "concat-ref": "1", "concat-part": "1"}, "concat-total"),
    ({"concat": "true", "concat-total": "2", "concat-part": "1"}, "concat-ref"),
    ({"msisdn": "+1"}, "msisdn"), ({"to": "ACME"}, "to"), ({"type": "wap"}, "type"), ({"text": ""}, "text"),
    ({"message-timestamp": "soon"}, "message-timestamp"), ({"messageId": ""}, "messageId"),
])
def test_sms_field_errors_name_the_field(sms_hook, change, field):
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(sms_hook, URL, *sig_signed({**SMS_INBOUND, **change}))
    assert caught.value.field == field


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from([*SMS_INBOUND, "concat", "concat-ref", "concat-total", "concat-part",
                                                "status", "err-code"]), st.text(max_size=12), max_size=6),
       route=st.sampled_from(["message", "status"]), as_json=st.booleans())
def test_sms_arbitrary_values_are_malformed_or_read(sms_hook, changes, route, as_json):
    params = {**SMS_INBOUND, "timestamp": str(int(time.time())), **changes}
    params["sig"] = sms_api_signature(SECRET, params, "md5hash")
    body = json.dumps(params).encode() if as_json else urlencode(params).encode()
    try:
        sms_hook.events(WebhookRequest(URL, body, {}), route)
    except MalformedWebhook as err:
        assert err.field
    except SignatureError:
        assert "timestamp" in changes or "api-key" in changes or "\x00" in json.dumps(params)
    except Exception as err:  # noqa: BLE001
        pytest.fail(f"{type(err).__name__}: {err}")


# --- sending, against the fake -----------------------------------------------------------------------


SMS = OutboundSms(connector="main", sender="+14155550100", recipient="+14155550123", text="Hello", reference="r1",
                  status_callback="https://chat.example.com/webhooks/vonage/main/status")


@pytest.fixture(params=["messages", "sms"])
async def fake(request):
    api = await FakeVonageApi(request.param).start()
    yield api
    await api.stop()


@pytest.fixture
async def sender(fake):
    conn = VonageSettings.model_validate(yaml.safe_load(fake.connector_yaml("main", ["+14155550100"]))[0])
    sender = PROVIDER.sender(conn, SenderContext(report=None, timeout=5))
    yield sender
    await sender.close()


async def test_send_reads_the_provider_id(fake, sender):
    result = await sender.send(SMS)
    [sent] = fake.sent
    assert result.provider_ids == (sent.provider_id,)
    assert (sent.sender, sent.recipient, sent.text, sent.status_url) == (
        "+14155550100", "+14155550123", "Hello", SMS.status_callback)
    if fake.api == "messages":
        assert sent.raw == {"message_type": "text", "text": "Hello", "channel": "sms", "to": "14155550123",
                            "from": "14155550100", "client_ref": "r1", "webhook_url": SMS.status_callback}
        assert sent.headers["Authorization"].startswith("Basic ")
    else:
        assert sent.raw == {"api_key": fake.api_key, "api_secret": fake.api_secret, "from": "14155550100",
                            "to": "14155550123", "text": "Hello", "callback": SMS.status_callback, "client-ref": "r1"}


async def test_delivered_callback_reads_back(fake, sender):
    await sender.send(SMS)
    conn = VonageSettings.model_validate(yaml.safe_load(fake.connector_yaml("main", []))[0])
    webhook = fake.delivered(SMS.status_callback, fake.sent[0])
    url = SMS.status_callback + (f"?{webhook.query}" if webhook.query else "")
    report = reading.status(PROVIDER.webhook(conn), url, webhook.body, webhook.headers)
    assert (report.provider_id, report.status) == (fake.sent[0].provider_id, DELIVERED)
    forged = fake.forged(webhook)
    with pytest.raises(SignatureError):
        reading.status(PROVIDER.webhook(conn), url, forged.body, forged.headers)


async def test_opt_out_refusal(fake, sender):
    fake.refuse_next_as_opted_out()
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.opt_out, caught.value.temporary) == (True, False)
    assert caught.value.code == ("7" if fake.api == "sms" else "1050")
    assert (await sender.send(SMS)).provider_ids


async def test_429_with_retry_after_is_temporary(fake, sender):
    fake.fail_next(429, retry_after="7", code="1000", title="Throttled")
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.temporary, caught.value.retry_after, caught.value.opt_out) == (True, 7.0, False)


async def test_5xx_is_temporary(fake, sender):
    fake.fail_next(503)
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert caught.value.temporary


async def test_messages_4xx_is_permanent_with_code_and_words():
    fake = await FakeVonageApi("messages").start()
    sender = VonageSender("messages", fake.api_key, fake.api_secret, fake.base_url)
    try:
        fake.fail_next(422, code="1020", title="Invalid params", detail="The value of one or more parameters is invalid.")
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
        assert (caught.value.temporary, caught.value.code) == (False, "1020")
        assert caught.value.message == "Invalid params: The value of one or more parameters is invalid."
        bad = VonageSender("messages", fake.api_key, "wrong", fake.base_url)
        with pytest.raises(SendError, match="Unauthorized") as caught:
            await bad.send(SMS)
        await bad.close()
        assert (caught.value.temporary, caught.value.code) == (False, "unauthorized")
        result = await sender.send(OutboundSms("main", SMS.sender, SMS.recipient, "see", "r2",
                                               media=("https://m.example/a.jpg", "https://m.example/b.mp4")))
        assert len(result.provider_ids) == 2
        first, second = (s.raw for s in fake.sent[-2:])  # the refused sends above are recorded too
        assert (first["channel"], first["message_type"], first["image"]) == (
            "mms", "image", {"url": "https://m.example/a.jpg", "caption": "see"})
        assert (second["message_type"], second["video"]) == ("video", {"url": "https://m.example/b.mp4"})
    finally:
        await sender.close()
        await fake.stop()


async def test_sms_api_refusals_and_parts():
    fake = await FakeVonageApi("sms").start()
    sender = VonageSender("sms", fake.api_key, fake.api_secret, fake.base_url)
    try:
        long = await sender.send(OutboundSms("main", SMS.sender, SMS.recipient, "Ж" * 100, "r3"))
        assert len(long.provider_ids) == 2 and fake.sent[0].raw["type"] == "unicode"
        fake.refuse_next("1", "Throughput Rate Exceeded - please wait [ 30 ] and retry")
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
        assert (caught.value.temporary, caught.value.code) == (True, "1")
        fake.refuse_next("6", "Unroutable message - rejected")
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
        assert (caught.value.temporary, caught.value.code, caught.value.message) == (
            False, "6", "Unroutable message - rejected")
        bad = VonageSender("sms", fake.api_key, "wrong", fake.base_url)
        with pytest.raises(SendError) as caught:
            await bad.send(SMS)
        await bad.close()
        assert (caught.value.temporary, caught.value.code) == (False, "4")
        with pytest.raises(SendError, match="no MMS") as caught:
            await sender.send(OutboundSms("main", SMS.sender, SMS.recipient, "x", "r4", media=("https://m/a.png",)))
        assert not caught.value.temporary
    finally:
        await sender.close()
        await fake.stop()


async def test_media_is_fetched_with_media_headers():
    fake = await FakeVonageApi("messages").start()
    try:
        conn = VonageSettings.model_validate(yaml.safe_load(fake.connector_yaml("main", []))[0])
        url = fake.media_url("photo.png")
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert response.status == 401
            async with session.get(url, headers=dict(PROVIDER.media_headers(conn))) as response:
                assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")
        hook = PROVIDER.webhook(conn)
        [webhook] = fake.inbound(URL, "+14155550123", "+14155550100", "pic", "u-9", media=[(url, "image/png")])
        sms = reading.message(hook, URL, webhook.body, webhook.headers)
        assert (sms.text, sms.media) == ("pic", (Media(url, "image/png"),))
    finally:
        await fake.stop()


def test_short_secrets_verify_without_warnings():
    hook = MessagesWebhook("main", "short")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = messages_jwt("short", b"{}", KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hook.events(WebhookRequest(URL, b"{}", {"Authorization": f"Bearer {token}"}), "message") == ()


def test_simulated_webhooks_verify():
    for api in ("messages", "sms"):
        conn = VonageSettings(type="vonage", name="main", api=api, api_key=KEY, api_secret="x" * 16,
                              signature_secret=SECRET)
        simulated = PROVIDER.simulate(conn, "https://chat.example.com", "+14155550123", "+14155550100", "hi", "m1")
        sms = reading.message(PROVIDER.webhook(conn), "https://chat.example.com" + simulated.path, simulated.body,
                              simulated.headers)
        assert (sms.text, sms.sender, sms.provider_id) == ("hi", "+14155550123", "m1")


def test_hs256_claims_agrees_with_pyjwt():
    import jwt

    from gateway.fields import SignatureError as Refused
    from gateway.providers.vonage import hs256_claims
    secret = "a-signature-secret-of-vonage's"
    claims = {"iat": 1700000000, "payload_hash": "ab" * 32, "api_key": "k"}
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "x"})
    assert hs256_claims(token, secret.encode()) == claims
    for bad in (jwt.encode(claims, "another", algorithm="HS256"), jwt.encode(claims, None, algorithm="none"),
                jwt.encode(claims, secret, algorithm="HS512"), token + "x", token.replace(".", "!", 1), "a.b",
                token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), ""):
        with pytest.raises(Refused):
            hs256_claims(bad, secret.encode())
        with pytest.raises(jwt.InvalidTokenError):
            jwt.decode(bad, secret, algorithms=["HS256"])
