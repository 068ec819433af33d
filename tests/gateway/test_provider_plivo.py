"""Plivo: Signature V3 first, then fields, each error naming its field; the sender against the fake Plivo API."""
from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.fields import MalformedWebhook, SignatureError
from gateway.messages import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, Media, OutboundSms, SendError
from gateway.providers import SenderContext, WebhookRequest
from gateway.providers.plivo import (
    PROVIDER,
    PlivoSender,
    PlivoSettings,
    PlivoWebhook,
    _params,
    plivo_signature,
    signed_url,
)
from tests.fakes.plivo_api import FakePlivoApi, sign
from tests.gateway import reading

TOKEN = "MzRlYjU2ZTk4NjQ2ZmQ4ZmUyNzRkOWE0ZDYxMjk0"
URL = "https://chat.example.com/webhooks/plivo/main"
STATUS_URL = URL + "/status"
UUID = "1e4a2b6c-0d2f-11ee-9a7b-0242ac110003"

# The fields of an inbound SMS as Plivo posts them to the message URL.
INBOUND = {"From": "14155550123", "To": "14155550100", "Type": "sms", "Text": "Hello agent",
           "MessageUUID": UUID, "Units": "1", "TotalRate": "0.00000", "TotalAmount": "0.00000",
           "MessageIntent": "", "PowerpackUUID": ""}


def signed(fields, url=URL, token=TOKEN, nonce="05429567804466091622"):
    """(body, headers) of a form POST signed as Plivo signs it (by the fake's signer)."""
    return urlencode(fields).encode(), {"X-Plivo-Signature-V3": sign(token, "POST", url, fields, nonce),
                                        "X-Plivo-Signature-V3-Nonce": nonce}


@pytest.fixture
def hook():
    return PlivoWebhook("main", TOKEN)


@pytest.fixture
async def plivo_api() -> AsyncIterator[FakePlivoApi]:
    api = await FakePlivoApi().start()
    yield api
    await api.stop()


@pytest.fixture
async def sender(plivo_api):
    sender = PlivoSender(plivo_api.auth_id, plivo_api.auth_token, api_base=plivo_api.base_url)
    yield sender
    await sender.close()


# --- inbound ----------------------------------------------------------------------------------------


def test_reads_an_inbound_sms(hook):
    sms = reading.message(hook, URL, *signed(INBOUND))
    assert (sms.connector, sms.provider_id, sms.sender, sms.recipient, sms.text, sms.media, sms.original) == (
        "main", UUID, "+14155550123", "+14155550100", "Hello agent", (), None)


def test_reads_the_fakes_webhook(hook):
    api = FakePlivoApi(auth_token=TOKEN)
    [webhook] = api.inbound(URL, "+14155550123", "+14155550100", "Hi", UUID)
    assert reading.message(hook, URL, webhook.body, webhook.headers).text == "Hi"


def test_reads_a_get_webhook(hook):
    api = FakePlivoApi(auth_token=TOKEN)
    [webhook] = api.inbound(URL, "+14155550123", "+14155550100", "Hi there", UUID, method="GET")
    events = hook.events(WebhookRequest(f"{URL}?{webhook.query}", b"", webhook.headers, method="GET"), "message")
    assert [(e.sender, e.text) for e in events] == [("+14155550123", "Hi there")]


def test_reads_an_mms(hook):
    fields = {**{k: v for k, v in INBOUND.items() if k != "Text"}, "Type": "mms", "Body": "look",
              "MediaCount": "2", "Media1": "https://media.plivo.com/Account/MA1/Media/a", "Media2": "https://m/b"}
    sms = reading.message(hook, URL, *signed(fields))
    assert sms.text == "look"
    assert sms.media == (Media("https://media.plivo.com/Account/MA1/Media/a", ""), Media("https://m/b", ""))


@pytest.mark.parametrize("media", [
    {"MediaCount": "2", "Media0": "https://m/a", "Media1": "https://m/b"},  # numbered from 0 (support article)
    {"Media1": "https://m/a", "Media2": "https://m/b"},  # without MediaCount
])
def test_reads_media_either_way_plivo_numbers_them(hook, media):
    fields = {**{k: v for k, v in INBOUND.items() if k != "Text"}, "Type": "mms", "Body": "", **media}
    sms = reading.message(hook, URL, *signed(fields))
    assert (sms.text, [m.url for m in sms.media]) == ("", ["https://m/a", "https://m/b"])


def test_mms_text_in_text_field_is_read(hook):
    fields = {**INBOUND, "Type": "mms", "MediaCount": "1", "Media1": "https://m/a"}
    assert reading.message(hook, URL, *signed(fields)).text == "Hello agent"


def test_whatsapp_is_no_event(hook):
    body, headers = signed({**INBOUND, "Type": "whatsapp"})
    assert hook.events(WebhookRequest(URL, body, headers), "message") == ()


def test_short_code_and_alphanumeric_senders_are_kept(hook):
    assert reading.message(hook, URL, *signed({**INBOUND, "From": "12345"})).sender == "12345"
    assert reading.message(hook, URL, *signed({**INBOUND, "From": "ACME"})).sender == "ACME"


def test_reply_is_empty_plivo_xml(hook):
    assert (hook.reply.status, hook.reply.content_type) == (200, "application/xml")
    assert hook.reply.body.endswith(b"<Response></Response>")


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"From": None}, "From", "missing field 'From'"),
    ({"To": None}, "To", "missing field 'To'"),
    ({"To": "12345"}, "To", "field 'To'"),
    ({"MessageUUID": None}, "MessageUUID", "missing field 'MessageUUID'"),
    ({"MessageUUID": "x" * 200}, "MessageUUID", "field 'MessageUUID' is longer"),
    ({"Text": None}, "Text", "missing field 'Text'"),
    ({"Text": ""}, "Text", "field 'Text' is empty"),
    ({"Type": "fax"}, "Type", "field 'Type': 'fax' is not one of"),
    ({"MediaCount": "two"}, "MediaCount", "field 'MediaCount' must be an integer"),
    ({"MediaCount": "11"}, "MediaCount", "field 'MediaCount' must be an integer from 0 to 10"),
    ({"MediaCount": "1"}, "Media1", "missing field 'Media1'"),
])
def test_field_errors_name_the_field(hook, change, field, message):
    fields = {k: v for k, v in {**INBOUND, **change}.items() if v is not None}
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(hook, URL, *signed(fields))
    assert (caught.value.field, caught.value.status) == (field, 400)
    assert str(caught.value).startswith(message)


def test_unstorable_text_is_repaired_and_the_body_kept(hook):
    body = urlencode({k: v for k, v in INBOUND.items() if k != "Text"}).encode() + b"&Text=caf%E9"
    nonce = "1"
    signature = plivo_signature(TOKEN, "POST", URL, {**{k: [v] for k, v in INBOUND.items()}, "Text": ["caf\ufffd"]},
                                nonce)
    sms = reading.message(hook, URL, body, {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce})
    assert (sms.text, sms.original) == ("caf\ufffd", body)


# --- signatures -------------------------------------------------------------------------------------


def test_forged_signature_is_refused(hook):
    api = FakePlivoApi(auth_token=TOKEN)
    [webhook] = api.inbound(URL, "+14155550123", "+14155550100", "Hi", UUID)
    forged = api.forged(webhook)
    with pytest.raises(SignatureError) as caught:
        reading.message(hook, URL, forged.body, forged.headers)
    assert caught.value.status == 403


@pytest.mark.parametrize("missing", ["X-Plivo-Signature-V3", "X-Plivo-Signature-V3-Nonce"])
def test_missing_headers_are_refused(hook, missing):
    body, headers = signed(INBOUND)
    del headers[missing]
    with pytest.raises(SignatureError, match=f"missing header {missing}"):
        reading.message(hook, URL, body, headers)


def test_wrong_token_other_url_tampered_body_and_other_nonce_are_refused(hook):
    body, headers = signed(INBOUND)
    for url, data, extra in [
        (URL, signed(INBOUND, token="x" + TOKEN[1:])[0], signed(INBOUND, token="x" + TOKEN[1:])[1]),
        (URL + "x", body, headers),
        (URL, body.replace(b"Hello", b"Hullo"), headers),
        (URL, body, {**headers, "X-Plivo-Signature-V3-Nonce": "1" + headers["X-Plivo-Signature-V3-Nonce"]}),
    ]:
        with pytest.raises(SignatureError):
            reading.message(hook, url, data, extra)


def test_any_of_several_signatures_is_enough(hook):
    body, headers = signed(INBOUND)
    headers["X-Plivo-Signature-V3"] = "bm9wZQ==," + headers["X-Plivo-Signature-V3"]
    assert reading.message(hook, URL, body, headers).text == "Hello agent"


def test_main_account_signature_header_is_accepted(hook):
    body, headers = signed(INBOUND)
    headers = {"X-Plivo-Signature-Ma-V3": headers.pop("X-Plivo-Signature-V3"), **headers}
    assert reading.message(hook, URL, body, headers).text == "Hello agent"
    body, wrong = signed(INBOUND, token="x" + TOKEN[1:])
    with pytest.raises(SignatureError):  # a main-account signature made with another token
        reading.message(hook, URL, body, {**headers, "X-Plivo-Signature-Ma-V3": wrong["X-Plivo-Signature-V3"]})


def test_signature_v2_alone_is_refused(hook):
    body, _ = signed(INBOUND)
    with pytest.raises(SignatureError, match="missing header X-Plivo-Signature-V3"):
        reading.message(hook, URL, body, {"X-Plivo-Signature-V2": "c2ln", "X-Plivo-Signature-V2-Nonce": "1"})


def test_header_names_ignore_case(hook):
    body, headers = signed(INBOUND)
    assert reading.message(hook, URL, body, {k.lower(): v for k, v in headers.items()})


def test_query_is_signed(hook):
    url = URL + "?b=2&a=1"
    body, headers = signed(INBOUND, url=url)
    assert reading.message(hook, url, body, headers)
    with pytest.raises(SignatureError):
        reading.message(hook, URL + "?b=3&a=1", body, headers)


@pytest.mark.parametrize("body", [b"", b"\xff\xfe garbage", b"not=a&form", b"%%%"])
def test_signature_checked_before_parsing(hook, body):
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body, {"X-Plivo-Signature-V3": "bm9wZQ==", "X-Plivo-Signature-V3-Nonce": "1"})


def test_odd_header_bytes_are_a_signature_error(hook):
    body, headers = signed(INBOUND)
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body, {**headers, "X-Plivo-Signature-V3-Nonce": "\udcff\ud800"})
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body, {**headers, "X-Plivo-Signature-V3": "\ud800"})


# --- statuses ---------------------------------------------------------------------------------------


def status_fields(status, **extra):
    return {"MessageUUID": UUID, "ParentMessageUUID": UUID, "From": "14155550100", "To": "14155550123",
            "Type": "sms", "Status": status, "Units": "1", "TotalRate": "0.0050", "TotalAmount": "0.0050",
            "MCC": "310", "MNC": "410", "ErrorCode": "", **extra}


@pytest.mark.parametrize(("plivo", "ours"), [
    ("queued", QUEUED), ("sent", SENT), ("delivered", DELIVERED), ("read", DELIVERED),
    ("undelivered", UNDELIVERED), ("failed", FAILED), ("rejected", FAILED),
])
def test_status_mapping(hook, plivo, ours):
    report = reading.status(hook, STATUS_URL, *signed(status_fields(plivo), url=STATUS_URL))
    assert (report.connector, report.provider_id, report.status, report.error) == ("main", UUID, ours, None)


def test_status_error_code_and_opt_out(hook):
    report = reading.status(hook, STATUS_URL, *signed(status_fields("undelivered", ErrorCode="20"), url=STATUS_URL))
    assert (report.error, report.opt_out) == ("20", False)
    report = reading.status(hook, STATUS_URL, *signed(status_fields("failed", ErrorCode="200"), url=STATUS_URL))
    assert report.error.startswith("200: ") and report.opt_out


def test_parts_of_a_split_message_report_under_the_first_parts_uuid(hook):
    fields = status_fields("delivered", MessageUUID="2e4a2b6c-0d2f-11ee-9a7b-0242ac110003", PartInfo="2 of 2")
    assert reading.status(hook, STATUS_URL, *signed(fields, url=STATUS_URL)).provider_id == UUID
    fields = {k: v for k, v in status_fields("sent").items() if k != "ParentMessageUUID"}
    assert reading.status(hook, STATUS_URL, *signed(fields, url=STATUS_URL)).provider_id == UUID


def test_unknown_status_names_the_field(hook):
    with pytest.raises(MalformedWebhook, match="field 'Status': 'received' is not one of") as caught:
        reading.status(hook, STATUS_URL, *signed(status_fields("received"), url=STATUS_URL))
    assert caught.value.field == "Status"


# --- whatever the body, only MalformedWebhook -------------------------------------------------------


def _signed_raw(body: bytes, url=URL):
    """Sign a raw body over its fields as the webhook reads them."""
    params = _params(body.decode("utf-8", "surrogateescape"))[0]
    return {"X-Plivo-Signature-V3": plivo_signature(TOKEN, "POST", url, params, "7"),
            "X-Plivo-Signature-V3-Nonce": "7"}


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300), route=st.sampled_from(["message", "status"]))
def test_arbitrary_bytes_raise_only_malformed_webhook(body, route):
    hook = PlivoWebhook("main", TOKEN)
    try:
        hook.events(WebhookRequest(URL, body, _signed_raw(body)), route)
    except MalformedWebhook as err:
        assert err.field


KEYS = st.sampled_from(["From", "To", "Type", "Text", "Body", "MessageUUID", "ParentMessageUUID", "Status",
                        "ErrorCode", "MediaCount", "Media0", "Media1", "Media2"])


@settings(max_examples=100, deadline=None)
@given(values=st.dictionaries(KEYS, st.text(max_size=30) | st.sampled_from(["sms", "mms", "2", "delivered"])),
       route=st.sampled_from(["message", "status"]))
def test_arbitrary_field_values_raise_only_malformed_webhook(values, route):
    hook = PlivoWebhook("main", TOKEN)
    body = urlencode(values).encode()
    try:
        hook.events(WebhookRequest(URL, body, _signed_raw(body)), route)
    except MalformedWebhook as err:
        assert err.field


# --- the Plivo SDK agrees ---------------------------------------------------------------------------


FIELD_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=15)


@settings(max_examples=100, deadline=None)
@given(fields=st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10),
                              FIELD_TEXT, max_size=6),
       query=st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=4),
                             st.text(alphabet="abc 123+&=%", max_size=5), max_size=3),
       nonce=st.text(alphabet="0123456789", min_size=1, max_size=20), method=st.sampled_from(["POST", "GET"]))
def test_the_plivo_sdk_validates_our_signatures_and_we_its(fields, query, nonce, method):
    signature_v3 = pytest.importorskip("plivo.utils.signature_v3")
    url = URL + ("?" + urlencode(query) if query else "")
    params = {} if method == "GET" else {k: [v] for k, v in fields.items()}
    ours = plivo_signature(TOKEN, method, url, params, nonce)
    sdk_params = None if method == "GET" else dict(fields)
    assert signature_v3.validate_v3_signature(method, url, nonce, TOKEN, ours, sdk_params)
    sdk_url = (signature_v3.construct_get_url(url, {}) if method == "GET"
               else signature_v3.construct_post_url(url, dict(fields))).decode("utf-8")
    assert signed_url(method, url, params) == sdk_url
    theirs = signature_v3.get_signature_v3(TOKEN.encode(), sdk_url, nonce.encode()).decode()
    assert theirs == ours == sign(TOKEN, method, url, dict(fields), nonce)
    body = b"" if method == "GET" else urlencode(fields).encode()
    hook = PlivoWebhook("main", TOKEN)
    headers = {"X-Plivo-Signature-V3": theirs, "X-Plivo-Signature-V3-Nonce": nonce}
    try:
        hook.events(WebhookRequest(url, body, headers, method=method), "status")
    except MalformedWebhook:
        pass  # signed, then refused for its fields: the signature was accepted


# --- sending ----------------------------------------------------------------------------------------


SMS = OutboundSms("main", "+14155550100", "+14155550123", "Hello", "r1",
                  status_callback="https://chat.example.com/webhooks/plivo/main/status")


async def test_sends_the_documented_request(sender, plivo_api):
    result = await sender.send(SMS)
    [sent] = plivo_api.sent
    assert result.provider_ids == (sent.provider_id,) and result.status == QUEUED
    assert sent.raw == {"src": "14155550100", "dst": "14155550123", "text": "Hello", "type": "sms",
                        "url": SMS.status_callback, "method": "POST"}
    assert (sent.sender, sent.recipient, sent.status_url) == ("+14155550100", "+14155550123", SMS.status_callback)
    assert sent.headers["Content-Type"].startswith("application/json")


async def test_sends_mms_with_media_urls(sender, plivo_api):
    await sender.send(OutboundSms("main", "+14155550100", "+14155550123", "", "r2", media=("https://m/a.png",)))
    assert plivo_api.sent[0].raw == {"src": "14155550100", "dst": "14155550123", "type": "mms",
                                     "media_urls": ["https://m/a.png"]}


async def test_every_message_uuid_is_kept(serve):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"api_id": "a", "message": "message(s) queued", "message_uuid": ["u1", "u2"]},
                                 status=202)
    url = await serve(handler)
    sender = PlivoSender("MA1", "t", api_base=url.removesuffix("/hook"))
    sender.url = url
    try:
        assert (await sender.send(SMS)).provider_ids == ("u1", "u2")
    finally:
        await sender.close()


async def test_an_opted_out_recipient_is_taken_then_reported_failed_200(sender, plivo_api):
    plivo_api.refuse_next_as_opted_out()
    result = await sender.send(SMS)  # Plivo's API does not refuse it: it blocks it after taking it
    [sent] = plivo_api.sent
    webhook = plivo_api.outcome(STATUS_URL, sent)
    report = reading.status(PlivoWebhook("main", plivo_api.auth_token), STATUS_URL, webhook.body, webhook.headers)
    assert (report.provider_id, report.status, report.opt_out) == (result.provider_ids[0], FAILED, True)


async def test_429_is_temporary_with_retry_after(sender, plivo_api):
    plivo_api.fail_next(429, "too many requests", retry_after="7")
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.temporary, caught.value.retry_after, caught.value.opt_out) == (True, 7.0, False)
    assert (await sender.send(SMS)).provider_ids


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_temporary(sender, plivo_api, status):
    plivo_api.fail_next(status, "server error")
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert caught.value.temporary


async def test_4xx_is_permanent_with_plivos_words(sender, plivo_api):
    with pytest.raises(SendError) as caught:
        await sender.send(OutboundSms("main", "+14155550100", "+14155550100", "Hi", "r3"))
    assert (caught.value.temporary, caught.value.opt_out) == (False, False)
    assert "destination number cannot be same as source number" in caught.value.message
    assert "HTTP 400" in caught.value.message


async def test_field_errors_are_said(serve):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"api_id": "a", "error": {"dst": "invalid"}}, status=400)
    url = await serve(handler)
    sender = PlivoSender("MA1", "t")
    sender.url = url
    try:
        with pytest.raises(SendError, match="dst: invalid"):
            await sender.send(SMS)
    finally:
        await sender.close()


async def test_wrong_credentials_are_permanent_and_say_nothing_secret(plivo_api):
    sender = PlivoSender(plivo_api.auth_id, "wrong-token-value", api_base=plivo_api.base_url)
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert not caught.value.temporary and "401" in caught.value.message
    assert "wrong-token-value" not in str(caught.value) and plivo_api.auth_token not in str(caught.value)


async def test_answer_without_uuid_is_permanent(serve):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"api_id": "a", "message": "message(s) queued", "message_uuid": []}, status=202)
    url = await serve(handler)
    sender = PlivoSender("MA1", "t")
    sender.url = url
    try:
        with pytest.raises(SendError, match="without a message_uuid") as caught:
            await sender.send(SMS)
        assert not caught.value.temporary
    finally:
        await sender.close()


# --- media, settings, simulate ----------------------------------------------------------------------


def settings_for(api: FakePlivoApi) -> PlivoSettings:
    return PlivoSettings(type="plivo", name="main", numbers=("+14155550100",), auth_id=api.auth_id,
                         auth_token=api.auth_token, api_base=api.base_url)


async def test_media_is_fetched_with_media_headers(plivo_api):
    url = plivo_api.media_url("cat.png")
    assert PROVIDER.media_headers is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 401
        async with session.get(url, headers=dict(PROVIDER.media_headers(settings_for(plivo_api)))) as response:
            assert (response.status, response.content_type, await response.read()) == (
                200, "image/png", b"media cat.png")


def test_settings_keep_the_token_secret(plivo_api):
    conn = settings_for(plivo_api)
    assert plivo_api.auth_token not in repr(conn) and plivo_api.auth_token not in str(conn.model_dump())
    with pytest.raises(ValueError):
        PlivoSettings(type="plivo", name="main", auth_id="MA/../x", auth_token="t")
    assert PlivoSettings(type="plivo", name="m", auth_id="MA1", auth_token="t").api_base == "https://api.plivo.com"


async def test_provider_row_builds_working_parts(plivo_api):
    conn = settings_for(plivo_api)
    assert PROVIDER.type == "plivo" and PROVIDER.supports.mms_in and PROVIDER.supports.mms_out
    assert PROVIDER.status_url("https://chat.example.com/", "main") == STATUS_URL
    async def report(_status) -> None:
        pass
    sent_with = PROVIDER.sender(conn, SenderContext(report=report, timeout=5.0))
    try:
        assert (await sent_with.send(SMS)).provider_ids
    finally:
        await sent_with.close()
    assert PROVIDER.simulate is not None and PROVIDER.webhook is not None
    simulated = PROVIDER.simulate(conn, "https://chat.example.com/", "+14155550123", "+14155550100", "Hi", "")
    hook = PROVIDER.webhook(conn)
    sms = reading.message(hook, "https://chat.example.com" + simulated.path, simulated.body, simulated.headers)
    assert (sms.sender, sms.recipient, sms.text) == ("+14155550123", "+14155550100", "Hi")

