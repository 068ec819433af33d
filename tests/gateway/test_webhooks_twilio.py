"""Twilio webhooks: signature first, then fields, each error naming its field."""
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from twilio.request_validator import RequestValidator

from gateway.fields import MalformedWebhook, SignatureError
from gateway.messages import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, Media
from gateway.providers import WebhookRequest
from gateway.providers.twilio import TwilioWebhook, twilio_params, twilio_signature
from tests.gateway import reading

TOKEN = "12345678901234567890123456789012"
URL = "https://chat.example.com/webhooks/twilio/main?x=1"
ACCOUNT = "AC" + "a" * 32

# The fields of a real inbound SMS webhook, as Twilio posts them.
INBOUND = {
    "ToCountry": "US",
    "ToState": "CA",
    "SmsMessageSid": "SM" + "1" * 32,
    "NumMedia": "0",
    "ToCity": "",
    "FromZip": "",
    "SmsSid": "SM" + "1" * 32,
    "FromState": "CA",
    "SmsStatus": "received",
    "FromCity": "",
    "Body": "Hello agent",
    "FromCountry": "US",
    "To": "+14155550100",
    "ToZip": "",
    "NumSegments": "1",
    "MessageSid": "SM" + "1" * 32,
    "AccountSid": ACCOUNT,
    "From": "+14155550123",
    "ApiVersion": "2010-04-01",
}


def signed(fields, url=URL, token=TOKEN):
    """Return (body, headers) as Twilio would send them."""
    body = urlencode(fields).encode()
    return body, {"X-Twilio-Signature": twilio_signature(token, url, fields)}


@pytest.fixture
def hook():
    return TwilioWebhook("main", TOKEN)


def test_parses_an_inbound_sms(hook):
    sms = reading.message(hook, URL, *signed(INBOUND))
    assert (sms.connector, sms.provider_id, sms.sender, sms.recipient, sms.text, sms.media) == (
        "main", "SM" + "1" * 32, "+14155550123", "+14155550100", "Hello agent", ()
    )


def test_our_signature_is_twilios():
    expected = RequestValidator(TOKEN).compute_signature(URL, INBOUND)
    assert twilio_signature(TOKEN, URL, INBOUND) == expected


@pytest.mark.parametrize("name", ["x-twilio-signature", "X-TWILIO-SIGNATURE"])
def test_header_lookup_ignores_case(hook, name):
    body, headers = signed(INBOUND)
    assert reading.message(hook, URL, body, {name: headers["X-Twilio-Signature"]}).text == "Hello agent"
    assert reading.message(hook, URL, body, CIMultiDict({name: headers["X-Twilio-Signature"]}))


def test_tampered_body_is_refused(hook):
    body, headers = signed(INBOUND)
    with pytest.raises(SignatureError) as caught:
        reading.message(hook, URL, body.replace(b"Hello", b"Hullo"), headers)
    assert caught.value.status == 403


def test_wrong_token_is_refused(hook):
    with pytest.raises(SignatureError):
        reading.message(hook, URL, *signed(INBOUND, token="other" + TOKEN[5:]))


def test_other_url_is_refused(hook):
    body, headers = signed(INBOUND)
    with pytest.raises(SignatureError):
        reading.message(hook, "https://chat.example.com/webhooks/twilio/other", body, headers)


def test_port_variants_are_accepted(hook):
    # Twilio signs with or without the default port depending on the product; its library tries both.
    body, headers = signed(INBOUND, url="https://chat.example.com:443/webhooks/twilio/main?x=1")
    assert reading.message(hook, URL, body, headers)


def test_missing_signature_is_refused(hook):
    body, _ = signed(INBOUND)
    with pytest.raises(SignatureError, match="missing header X-Twilio-Signature"):
        reading.message(hook, URL, body, {})


@pytest.mark.parametrize("body", [b"", b"\xff\xfe garbage", b"not=a&form", b"%%%"])
def test_signature_checked_before_parsing(hook, body):
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body, {"X-Twilio-Signature": "bm9wZQ=="})


def test_blank_fields_are_signed(hook):
    fields = {**INBOUND, "ToCity": ""}
    body, headers = signed(fields)
    assert b"ToCity=&" in body
    assert reading.message(hook, URL, body, headers)
    without_blank = {k: v for k, v in fields.items() if v}
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body, {"X-Twilio-Signature": twilio_signature(TOKEN, URL, without_blank)})


def test_account_mismatch_is_refused():
    hook = TwilioWebhook("main", TOKEN, account_sid="AC" + "b" * 32)
    with pytest.raises(SignatureError, match="AccountSid"):
        reading.message(hook, URL, *signed(INBOUND))


def test_falls_back_to_sms_sid(hook):
    fields = {k: v for k, v in INBOUND.items() if k != "MessageSid"}
    assert reading.message(hook, URL, *signed(fields)).provider_id == INBOUND["SmsSid"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"From": None}, "From", "missing field 'From'"),
        ({"To": None}, "To", "missing field 'To'"),
        ({"MessageSid": None, "SmsSid": None}, "MessageSid", "missing field 'MessageSid'"),
        ({"Body": None}, "Body", "missing field 'Body'"),
        ({"Body": ""}, "Body", "field 'Body' is empty"),
        ({"Body": "x" * 10_001}, "Body", "field 'Body' is longer than 10000 characters"),
        ({"From": "+1"}, "From", "field 'From': '+1' is not a valid phone number"),
        ({"To": "12345"}, "To", "field 'To': '12345' is not a valid phone number"),
        ({"To": "+112345"}, "To", "field 'To': '+112345' is not a valid phone number"),
        ({"NumMedia": "two"}, "NumMedia", "field 'NumMedia' must be an integer"),
        ({"NumMedia": "11"}, "NumMedia", "field 'NumMedia' must be an integer from 0 to 10"),
        ({"NumMedia": "1"}, "MediaUrl0", "missing field 'MediaUrl0'"),
    ],
)
def test_field_errors_name_the_field(hook, change, field, message):
    fields = {k: v for k, v in {**INBOUND, **change}.items() if v is not None}
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(hook, URL, *signed(fields))
    assert caught.value.field == field
    assert caught.value.status == 400
    assert str(caught.value).startswith(message)


def test_text_of_10000_characters_is_accepted(hook):
    assert len(reading.message(hook, URL, *signed({**INBOUND, "Body": "x" * 10_000})).text) == 10_000


def test_short_code_and_alphanumeric_senders_are_kept(hook):
    assert reading.message(hook, URL, *signed({**INBOUND, "From": "12345"})).sender == "12345"
    assert reading.message(hook, URL, *signed({**INBOUND, "From": "ACME"})).sender == "ACME"


def test_media_fields(hook):
    fields = {
        **INBOUND,
        "Body": "",
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/media/ME1",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/media/ME2",
        "MediaContentType1": "video/mp4",
    }
    sms = reading.message(hook, URL, *signed(fields))
    assert sms.text == ""
    assert sms.media == (
        Media("https://api.twilio.com/media/ME1", "image/jpeg"),
        Media("https://api.twilio.com/media/ME2", "video/mp4"),
    )


def test_media_without_body_field(hook):
    fields = {k: v for k, v in INBOUND.items() if k != "Body"}
    fields.update(NumMedia="1", MediaUrl0="https://m.example/1", MediaContentType0="image/png")
    assert reading.message(hook, URL, *signed(fields)).text == ""


def test_reply_is_empty_twiml():
    reply = TwilioWebhook.reply
    assert reply.status == 200
    assert reply.content_type == "text/xml"
    assert reply.body == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def status_fields(status, **extra):
    sid = "SM" + "2" * 32
    return {"AccountSid": ACCOUNT, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
            "SmsStatus": status, "From": "+14155550100", "To": "+14155550123",
            "ApiVersion": "2010-04-01", **extra}


@pytest.mark.parametrize(
    ("twilio", "ours"),
    [
        ("accepted", QUEUED), ("queued", QUEUED), ("scheduled", QUEUED),
        ("sending", SENT), ("sent", SENT),
        ("delivered", DELIVERED), ("read", DELIVERED),
        ("undelivered", UNDELIVERED),
        ("failed", FAILED), ("canceled", FAILED),
    ],
)
def test_status_mapping(hook, twilio, ours):
    report = reading.status(hook, URL, *signed(status_fields(twilio)))
    assert (report.connector, report.provider_id, report.status, report.error) == ("main", "SM" + "2" * 32, ours, None)


def test_status_error_code_and_message(hook):
    fields = status_fields("undelivered", ErrorCode="30003", ErrorMessage="Unreachable destination handset")
    assert reading.status(hook, URL, *signed(fields)).error == "30003: Unreachable destination handset"
    assert reading.status(hook, URL, *signed(status_fields("failed", ErrorCode="30008"))).error == "30008"


def test_unknown_status_names_the_field(hook):
    with pytest.raises(MalformedWebhook, match="field 'MessageStatus': 'received' is not one of") as caught:
        reading.status(hook, URL, *signed(status_fields("received")))
    assert caught.value.field == "MessageStatus"


def test_status_signature_is_checked(hook):
    body, headers = signed(status_fields("delivered"))
    with pytest.raises(SignatureError):
        reading.status(hook, URL, body.replace(b"delivered", b"failed"), headers)


# --- every decodable message is stored (issue 8, point 3) ----------------------------------------


def raw_signed(body: bytes, url=URL, token=TOKEN):
    """Sign a raw form body as Twilio would, over the fields as they read (invalid UTF-8 as U+FFFD)."""
    return body, {"X-Twilio-Signature": twilio_signature(token, url, twilio_params(body))}


@pytest.mark.parametrize(
    ("encoded", "text"),
    [("a%00b", "a\ufffdb"), ("caf%E9", "caf\ufffd"), ("x%ED%A0%80y", "x\ufffd\ufffd\ufffdy")],
    ids=["nul", "latin-1-byte", "encoded-surrogate"],
)
def test_unstorable_body_is_repaired_and_the_form_kept(hook, encoded, text):
    body = urlencode({k: v for k, v in INBOUND.items() if k != "Body"}).encode() + b"&Body=" + encoded.encode()
    sms = reading.message(hook, URL, *raw_signed(body))
    assert sms.text == text
    assert sms.original == body


def test_raw_bytes_that_are_not_utf8_are_repaired_and_kept(hook):
    body = urlencode({k: v for k, v in INBOUND.items() if k != "Body"}).encode() + b"&Body=caf\xe9"
    sms = reading.message(hook, URL, *raw_signed(body))
    assert (sms.text, sms.original) == ("caf\ufffd", body)


def test_clean_form_keeps_no_original(hook):
    assert reading.message(hook, URL, *signed(INBOUND)).original is None


def test_media_fields_are_repaired(hook):
    fields = {**INBOUND, "NumMedia": "1", "MediaUrl0": "https://m.example/\x00", "MediaContentType0": "image/png\x00"}
    sms = reading.message(hook, URL, *signed(fields))
    assert sms.media == (Media("https://m.example/\ufffd", "image/png\ufffd"),)
    assert sms.original is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"From": "+14155550123\x00"}, "From"),
        ({"To": "\x00+14155550100"}, "To"),
        ({"MessageSid": "SM\x00", "SmsSid": "SM\x00"}, "MessageSid"),
        ({"MessageSid": "SM" + "1" * 200}, "MessageSid"),
        ({"NumMedia": "9" * 4400}, "NumMedia"),
        ({"NumMedia": "٣"}, "NumMedia"),
        ({"NumMedia": "-1"}, "NumMedia"),
    ],
)
def test_fields_that_cannot_be_exact_are_refused(hook, change, field):
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(hook, URL, *signed({**INBOUND, **change}))
    assert caught.value.field == field


def test_status_error_message_is_repaired(hook):
    fields = status_fields("failed", ErrorCode="30008", ErrorMessage="odd\x00")
    assert reading.status(hook, URL, *signed(fields)).error == "30008: odd\ufffd"


@settings(max_examples=200, deadline=None)
@given(
    fields=st.lists(st.tuples(st.sampled_from(["Body", "To", "MediaUrl0", "a b", "é"]) | st.text(min_size=1, max_size=12),
                              st.text(max_size=20)), max_size=8),  # names may repeat, as forms allow
    signed_with_port=st.booleans(),
    called_with_port=st.booleans(),
    scheme=st.sampled_from(["https", "http"]),
    forged=st.booleans(),
)
def test_the_signature_check_answers_as_the_twilio_sdk_does(fields, signed_with_port, called_with_port, scheme, forged):
    # Twilio signs the URL with or without its port; the SDK accepts either. Ours computes the second only
    # when the first fails: the answer must be the SDK's for every request.
    port = ":443" if scheme == "https" else ":80"
    signed_url = f"{scheme}://chat.example.com{port if signed_with_port else ''}/webhooks/twilio/main?x=1"
    called_url = f"{scheme}://chat.example.com{port if called_with_port else ''}/webhooks/twilio/main?x=1"
    body = urlencode(fields).encode()
    signature = RequestValidator(TOKEN).compute_signature(signed_url, twilio_params(body))
    if forged:
        signature = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    expected = RequestValidator(TOKEN).validate(called_url, twilio_params(body), signature)
    hook = TwilioWebhook("main", TOKEN)
    try:
        hook._checked(WebhookRequest(called_url, body, {"X-Twilio-Signature": signature}))
        answered = True
    except SignatureError:
        answered = False
    assert answered == expected
