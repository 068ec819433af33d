"""Bandwidth: callbacks (arrays of events, HTTP Basic callback credentials), the sender against the fake API,
media behind the API credentials."""
import json
from datetime import UTC, datetime

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.fields import MalformedWebhook, SignatureError, UnsupportedMediaType
from gateway.messages import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, InboundSms, Media, OutboundSms, SendError, StatusReport
from gateway.providers.bandwidth import PROVIDER, STATUSES, BandwidthSender, BandwidthSettings, BandwidthWebhook
from gateway.providers.base import WebhookRequest, basic_auth
from tests.fakes.bandwidth_api import FakeBandwidthApi
from tests.fakes.provider import Sent
from tests.gateway import reading

URL = "https://chat.example.com/webhooks/bandwidth/main"
ME, CUSTOMER = "+14155550100", "+14155550123"
FAKE = FakeBandwidthApi()  # for building callbacks only (no server): its credentials are the hook's


@pytest.fixture
def hook():
    return BandwidthWebhook("main", FAKE.callback_username, FAKE.callback_password)


@pytest.fixture
async def api():
    fake = await FakeBandwidthApi().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sender(api):
    sender = BandwidthSender(api.account_id, api.username, api.password, api.application_id, api.base_url)
    yield sender
    await sender.close()


def events(hook, webhook, route=None):
    return hook.events(WebhookRequest(URL, webhook.body, webhook.headers), route or webhook.route)


def raw(events_, **headers):
    """A signed callback of arbitrary events (any JSON value, any body)."""
    body = events_ if isinstance(events_, bytes) else json.dumps(events_).encode()
    return body, {"Content-Type": "application/json; charset=utf-8",
                  "Authorization": basic_auth(FAKE.callback_username, FAKE.callback_password), **headers}


def a_sent(provider_id="1593110555875xo7watq5px6rbe5d", tag="r1"):
    return Sent(sender=ME, recipient=CUSTOMER, text="Hi", provider_id=provider_id, raw={"tag": tag})


# --- inbound -----------------------------------------------------------------------------------------


def test_inbound_sms_is_read(hook):
    [webhook] = FAKE.inbound(URL, CUSTOMER, ME, "Hello agent", "14762070468292kw2fuqty55yp2b2")
    [sms] = events(hook, webhook)
    assert isinstance(sms, InboundSms)
    assert (sms.connector, sms.provider_id, sms.sender, sms.recipient, sms.text, sms.media, sms.original) == (
        "main", "14762070468292kw2fuqty55yp2b2", CUSTOMER, ME, "Hello agent", (), None)
    assert sms.received_at is not None and sms.received_at.tzinfo is not None


def test_documented_example_is_read(hook):
    # The inbound example of https://dev.bandwidth.com/docs/messaging/webhooks, as posted.
    body = b"""[{"type": "message-received", "time": "2016-09-14T18:20:16Z", "description": "Incoming message received",
      "to": "+12345678902", "message": {"id": "14762070468292kw2fuqty55yp2b2", "time": "2016-09-14T18:20:16Z",
      "to": ["+12345678902"], "from": "+12345678901", "text": "Hey, check this out!",
      "applicationId": "93de2206-9669-4e07-948d-329f4b722ee2",
      "media": ["https://messaging.bandwidth.com/api/v2/users/{accountId}/media/14762070468292kw2fuqty55yp2b2/0/bw.png"],
      "owner": "+12345678902", "direction": "in", "segmentCount": 1}}]"""
    sms = reading.message(hook, URL, *raw(body))
    assert (sms.sender, sms.recipient, sms.text) == ("+12345678901", "+12345678902", "Hey, check this out!")
    assert sms.received_at == datetime(2016, 9, 14, 18, 20, 16, tzinfo=UTC)
    assert sms.media == (Media("https://messaging.bandwidth.com/api/v2/users/{accountId}/media/"
                               "14762070468292kw2fuqty55yp2b2/0/bw.png", "image/png"),)


def test_mms_without_text(hook):
    media = [("https://messaging.bandwidth.com/api/v2/users/1/media/m/0/a.jpg", "image/jpeg"),
             ("https://messaging.bandwidth.com/api/v2/users/1/media/m/1/clip", "")]
    [webhook] = FAKE.inbound(URL, CUSTOMER, ME, "", "m1", media)
    [sms] = events(hook, webhook)
    assert sms.text == ""
    assert sms.media == (Media(media[0][0], "image/jpeg"), Media(media[1][0], "application/octet-stream"))


def test_owner_falls_back_to_the_top_level_to(hook):
    event = FAKE.inbound_event(CUSTOMER, ME, "Hi", "m2")
    del event["message"]["owner"]
    assert reading.message(hook, URL, *raw([event])).recipient == ME


def test_one_callback_carries_several_events_whatever_the_route(hook):
    batch = [FAKE.inbound_event(CUSTOMER, ME, "one", "m1"), FAKE.status_event(a_sent(), "message-delivered", "ok"),
             {"type": "suggestion-response", "message": {}}, FAKE.inbound_event(CUSTOMER, ME, "two", "m2")]
    for route in ("message", "status"):
        got = events(hook, FAKE.callback(batch), route)
        assert [type(e) for e in got] == [InboundSms, StatusReport, InboundSms]
        assert [e.text for e in got if isinstance(e, InboundSms)] == ["one", "two"]
    assert events(hook, FAKE.callback([])) == ()


def test_redelivery_gives_the_same_provider_id(hook):
    [webhook] = FAKE.inbound(URL, CUSTOMER, ME, "Hi", "m3")
    assert events(hook, webhook)[0].provider_id == events(hook, webhook)[0].provider_id == "m3"


def test_simulated_inbound_is_accepted():
    conn = BandwidthSettings(type="bandwidth", name="main", account_id="1234567", username="u", password="p",
                             application_id="app", callback_username=FAKE.callback_username,
                             callback_password=FAKE.callback_password)
    sim = PROVIDER.simulate(conn, "https://chat.example.com", CUSTOMER, ME, "Hi", "s1")
    assert sim.path == "/webhooks/bandwidth/main"
    [sms] = PROVIDER.webhook(conn).events(WebhookRequest(URL, sim.body, sim.headers), "message")
    assert (sms.provider_id, sms.text) == ("s1", "Hi")


# --- authentication ----------------------------------------------------------------------------------


def test_forged_credentials_are_refused(hook):
    [webhook] = FAKE.inbound(URL, CUSTOMER, ME, "Hi", "m1")
    with pytest.raises(SignatureError) as caught:
        events(hook, FAKE.forged(webhook))
    assert caught.value.status == 403
    assert FAKE.callback_password not in str(caught.value)


@pytest.mark.parametrize("authorization", [
    None, "", "Basic", "Bearer abc", "Basic !!!notbase64", "Basic " + "é" * 8, "Basic \udcff\udcfe",
    basic_auth("someone", FAKE.callback_password), basic_auth(FAKE.callback_username, ""),
    basic_auth(FAKE.callback_username, FAKE.callback_password + "x"),
    "Basic " + __import__("base64").b64encode(FAKE.callback_username.encode()).decode(),  # no colon
], ids=["none", "empty", "no-credentials", "bearer", "not-base64", "not-ascii", "surrogates", "wrong-user",
        "no-password", "wrong-password", "no-colon"])  # the same ids in every xdist worker (the values are random)
def test_missing_or_wrong_authorization_is_refused(hook, authorization):
    body, headers = raw([FAKE.inbound_event(CUSTOMER, ME, "Hi", "m1")])
    headers = {k: v for k, v in headers.items() if k != "Authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    with pytest.raises(SignatureError):
        hook.events(WebhookRequest(URL, body, headers), "message")


def test_scheme_and_header_name_ignore_case(hook):
    body, headers = raw([FAKE.inbound_event(CUSTOMER, ME, "Hi", "m1")])
    value = headers.pop("Authorization").replace("Basic", "basic")
    assert hook.events(WebhookRequest(URL, body, {**headers, "authorization": value}), "message")


@pytest.mark.parametrize("body", [b"", b"\xff\xfe garbage", b"[", b'{"a": 1}'])
def test_credentials_are_checked_before_the_body(hook, body):
    with pytest.raises(SignatureError):
        hook.events(WebhookRequest(URL, body, {"Content-Type": "text/plain"}), "message")


def test_only_json_is_taken(hook):
    body, headers = raw([FAKE.inbound_event(CUSTOMER, ME, "Hi", "m1")], **{"Content-Type": "text/plain"})
    with pytest.raises(UnsupportedMediaType):
        hook.events(WebhookRequest(URL, body, headers), "message")


# --- statuses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "code", "ours", "error"), [
    ("message-sending", None, SENT, None),
    ("message-sent", None, SENT, None),
    ("message-delivered", None, DELIVERED, None),
    ("message-read", None, DELIVERED, None),
    ("message-failed", 4432, FAILED, "4432: forbidden to country"),  # Bandwidth refused it
    ("message-failed", 4775, UNDELIVERED, "4775: forbidden to country"),  # the carrier: opted out
    ("message-failed", 4720, UNDELIVERED, "4720: forbidden to country"),
    ("message-failed", 5100, FAILED, "5100: forbidden to country"),
    ("message-failed", 5600, UNDELIVERED, "5600: forbidden to country"),
    ("message-failed", 9902, UNDELIVERED, "9902: forbidden to country"),
    ("message-failed", None, FAILED, "forbidden to country"),
])
def test_status_mapping(hook, kind, code, ours, error):
    description = "forbidden to country" if kind == "message-failed" else "ok"
    report = reading.status(hook, URL, *raw([FAKE.status_event(a_sent(), kind, description, code)]))
    assert (report.connector, report.provider_id, report.status, report.error) == (
        "main", "1593110555875xo7watq5px6rbe5d", ours, error)


def test_error_code_given_as_a_string(hook):
    event = FAKE.status_event(a_sent(), "message-failed", "destination-rejected-due-to-user-opt-out", 4775)
    event["errorCode"] = "4775"
    assert reading.status(hook, URL, *raw([event])).error == "4775: destination-rejected-due-to-user-opt-out"


# --- malformed bodies --------------------------------------------------------------------------------


def _inbound(**change):
    event = FAKE.inbound_event(CUSTOMER, ME, "Hi", "m1")
    for path, value in change.items():
        where, _, name = path.rpartition("__")
        target = event["message"] if where == "message" else event
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return [event]


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "message-received"}, "body"),
    ("not an array", "body"),
    ([1], "[0]"),
    ([{"message": {}}], "[0].type"),
    ([{"type": "message-received"}], "[0].message"),
    (_inbound(message__id=None), "[0].message.id"),
    (_inbound(message__id=""), "[0].message.id"),
    (_inbound(message__id="x" * 129), "[0].message.id"),
    (_inbound(message__from=None), "[0].message.from"),
    (_inbound(message__from="+1"), "[0].message.from"),
    (_inbound(message__owner="12345"), "[0].message.owner"),
    (_inbound(message__text=None), "[0].message.text"),
    (_inbound(message__text=""), "[0].message.text"),
    (_inbound(message__text="x" * 10_001), "[0].message.text"),
    (_inbound(message__text=5), "[0].message.text"),
    (_inbound(message__time="yesterday"), "[0].message.time"),
    (_inbound(message__media="https://m.example/1.png"), "[0].message.media"),
    (_inbound(message__media=[1]), "[0].message.media"),
    (_inbound(message__media=["u"] * 11), "[0].message.media"),
    ([{"type": "message-failed", "errorCode": "x", "message": {"id": "1"}}], "[0].errorCode"),
    ([{"type": "message-failed", "errorCode": [1], "message": {"id": "1"}}], "[0].errorCode"),
    ([{"type": "message-delivered", "message": {"id": 12.5}}], "[0].message.id"),
    ([{"type": "message-delivered"}], "[0].message"),
    ([{"type": ["message-delivered"]}], "[0].type"),
    ([FAKE.status_event(a_sent(), "message-delivered", "ok")] * 101, "body"),
    (b"[" * 100_000, "body"),
    (b'[{"type": "message-failed", "errorCode": 1' + b"0" * 5000 + b', "message": {"id": "1"}}]', "body"),
], ids=lambda v: repr(v)[:30])
def test_malformed_bodies_name_the_field(hook, body, field):
    with pytest.raises(MalformedWebhook) as caught:
        hook.events(WebhookRequest(URL, *raw(body)), "message")
    assert caught.value.field == field
    assert caught.value.status == 400


def test_unstorable_text_is_repaired_and_the_body_kept(hook):
    body, headers = raw([FAKE.inbound_event(CUSTOMER, ME, "a\u0000b", "m1")])
    sms = reading.message(hook, URL, body, headers)
    assert sms.text != "a\u0000b" and sms.original == body
    bad_utf8 = body.replace(b"a\\u0000b", b"caf\xe9")
    assert reading.message(hook, URL, bad_utf8, headers).original == bad_utf8


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=8)
NAMES = st.sampled_from(["type", "to", "time", "description", "errorCode", "message"])
MESSAGE_NAMES = st.sampled_from(["id", "owner", "from", "to", "text", "media", "time", "tag"])
TYPES = st.sampled_from(["message-received", "message-delivered", "message-failed", "message-sending", "other"])


def _only_malformed(hook, body: bytes) -> None:
    try:
        hook.events(WebhookRequest(URL, *raw(body)), "message")
    except MalformedWebhook as err:
        assert err.field and (err.field == "body" or err.field.startswith("["))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_malformed(hook, body):
    _only_malformed(hook, body)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(JSON)
def test_arbitrary_json_raises_only_malformed(hook, value):
    _only_malformed(hook, json.dumps(value).encode())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TYPES, st.dictionaries(NAMES, JSON, max_size=2), st.dictionaries(MESSAGE_NAMES, JSON, max_size=3))
def test_arbitrary_field_values_raise_only_malformed(hook, kind, top, message):
    event = FAKE.inbound_event(CUSTOMER, ME, "Hi", "m1") if kind == "message-received" else \
        FAKE.status_event(a_sent(), kind, "x", 4775)
    event.update(top)
    if isinstance(event.get("message"), dict):
        event["message"] = {**event["message"], **message}
    _only_malformed(hook, json.dumps([event]).encode())


# --- the SDK agrees with the fake's format -------------------------------------------------------------


def test_fake_callbacks_parse_with_bandwidths_sdk():
    models = pytest.importorskip("bandwidth.models")
    [inbound] = FAKE.inbound(URL, CUSTOMER, ME, "Hi", "m1", [("https://m.example/0/a.png", "image/png")])
    [event] = json.loads(inbound.body)
    parsed = models.InboundCallback.from_dict(event)
    assert (parsed.type.value, parsed.message.id, parsed.message.var_from, parsed.message.media) == (
        "message-received", "m1", CUSTOMER, ["https://m.example/0/a.png"])
    for webhook in (FAKE.delivered(URL, a_sent()), FAKE.failed(URL, a_sent(), 4775, "opted out")):
        [event] = json.loads(webhook.body)
        parsed = models.StatusCallback.from_dict(event)
        assert parsed.message.id == a_sent().provider_id and parsed.message.tag == "r1"
    assert parsed.type.value == "message-failed" and parsed.error_code == 4775
    # every status type the SDK knows is one we map
    assert {t.value for t in models.StatusCallbackTypeEnum} == set(STATUSES)


# --- sending -----------------------------------------------------------------------------------------


SMS = OutboundSms(connector="main", sender=ME, recipient=CUSTOMER, text="Hello", reference="r1")


async def test_send_posts_the_documented_request(sender, api):
    result = await sender.send(SMS)
    assert result.status == QUEUED
    [sent] = api.sent
    assert result.provider_ids == (sent.provider_id,) and len(sent.provider_id) == 29
    assert sent.raw == {"applicationId": api.application_id, "to": [CUSTOMER], "from": ME, "text": "Hello", "tag": "r1"}
    assert (sent.sender, sent.recipient, sent.text) == (ME, CUSTOMER, "Hello")
    assert sent.headers["Content-Type"].startswith("application/json")


async def test_send_mms(sender, api):
    sms = OutboundSms("main", ME, CUSTOMER, "", "r2", media=("https://chat.example.com/m/1.png",))
    await sender.send(sms)
    assert api.sent[0].raw["media"] == ["https://chat.example.com/m/1.png"]


async def test_opt_out_is_accepted_then_fails_with_4775(sender, api, hook):
    api.refuse_next_as_opted_out()
    result = await sender.send(SMS)
    callback = api.delivered(URL, api.sent[0])
    callback = FAKE.callback(json.loads(callback.body), route="status")  # the hook's credentials
    [report] = events(hook, callback)
    assert report.provider_id == result.provider_ids[0]
    assert (report.status, report.error) == (UNDELIVERED, "4775: destination-rejected-due-to-user-opt-out")


async def test_refusal_with_an_opt_out_code_is_an_opt_out(sender, api):
    api.fail_next(400, "request-validation", "recipient opted out", errorCode=4775)
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.opt_out, caught.value.temporary, caught.value.code) == (True, False, "4775")


async def test_throttling_is_temporary_with_retry_after(sender, api):
    api.fail_next(429, retry_after="7")
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.temporary, caught.value.retry_after, caught.value.code) == (
        True, 7.0, "max-message-queue-size-exceeded")
    assert "queue for your account is full" in caught.value.message
    assert (await sender.send(SMS)).provider_ids


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_temporary(sender, api, status):
    api.fail_next(status)
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert caught.value.temporary and not caught.value.opt_out


async def test_validation_error_is_permanent_with_type_and_words(sender):
    with pytest.raises(SendError) as caught:
        await sender.send(OutboundSms("main", ME, "14155550123", "Hello", "r3"))
    err = caught.value
    assert (err.temporary, err.opt_out, err.code) == (False, False, "request-validation")
    assert "Your request could not be accepted." in err.message and "to: 'to' must contain" in err.message


async def test_wrong_credentials_are_permanent(api):
    sender = BandwidthSender(api.account_id, api.username, "wrong", api.application_id, api.base_url)
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert (caught.value.temporary, caught.value.code, caught.value.message) == (False, "unauthorized",
                                                                                 "Authentication Failed")
    assert "wrong" not in str(caught.value)


async def test_unreachable_api_is_temporary(closed_port):
    sender = BandwidthSender("1", "u", "p", "a", f"http://127.0.0.1:{closed_port}")
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert caught.value.temporary


# --- settings and media ------------------------------------------------------------------------------


def settings_for(api) -> BandwidthSettings:
    return BandwidthSettings(type="bandwidth", name="main", numbers=(ME,), account_id=api.account_id,
                             username=api.username, password=api.password, application_id=api.application_id,
                             callback_username=api.callback_username, callback_password=api.callback_password,
                             api_base=api.base_url)


async def test_media_is_fetched_with_media_headers(api):
    conn = settings_for(api)
    assert api.password not in repr(conn) and api.callback_password not in repr(conn)
    url = api.media_url("14762070468292kw2fuqty55yp2b2/0/bw.png")
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=PROVIDER.media_headers(conn)) as response:
            assert (response.status, response.content_type) == (200, "image/png")
            assert (await response.read()).startswith(b"\x89PNG")
        async with session.get(url) as response:
            assert response.status == 401


async def test_the_provider_row_builds_a_working_sender(api):
    from gateway.providers.base import SenderContext

    async def report(_):
        return None

    sender = PROVIDER.sender(settings_for(api), SenderContext(report))
    try:
        assert (await sender.send(SMS)).provider_ids == (api.sent[0].provider_id,)
    finally:
        await sender.close()
    assert PROVIDER.status_url("https://chat.example.com", "main") is None
    assert "type: bandwidth" in api.connector_yaml("main", [ME])
