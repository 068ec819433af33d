"""The generic JSON webhook: X-Didchat-Signature, then fields."""
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from gateway.fields import MalformedWebhook, SignatureError, WebhookError
from gateway.messages import STATUSES
from gateway.providers.generic import GenericWebhook, didchat_signature
from tests.gateway import reading

URL = "http://127.0.0.1/webhooks/generic/generic"

SECRET = "s3cret"
MESSAGE = {"id": "m-1", "from": "+14155550123", "to": "+14155550100", "text": "Hi"}


@pytest.fixture
def hook():
    return GenericWebhook("generic", SECRET)


JSON = {"Content-Type": "application/json"}


def signed(payload, secret=SECRET, content_type="application/json"):
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return body, {"X-Didchat-Signature": didchat_signature(secret, body), "Content-Type": content_type}


def test_signature_is_hmac_sha256_of_the_body(hook):
    body = b'{"a": 1}'
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hook.sign(body) == didchat_signature(SECRET, body) == expected


def test_parses_a_message(hook):
    sms = reading.message(hook, URL, *signed(MESSAGE))
    assert (sms.connector, sms.provider_id, sms.sender, sms.recipient, sms.text, sms.received_at) == (
        "generic", "m-1", "+14155550123", "+14155550100", "Hi", None
    )


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-03-01T12:30:00Z", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T13:30:00+01:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        (1772368200, datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        (1772368200.5, datetime(2026, 3, 1, 12, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps(hook, timestamp, expected):
    assert reading.message(hook, URL, *signed({**MESSAGE, "timestamp": timestamp})).received_at == expected


@pytest.mark.parametrize("name", ["x-didchat-signature", "X-DIDCHAT-SIGNATURE"])
def test_header_case_is_ignored(hook, name):
    body, headers = signed(MESSAGE)
    assert reading.message(hook, URL, body, {name: headers["X-Didchat-Signature"]} | JSON).text == "Hi"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Didchat-Signature": ""},
        {"X-Didchat-Signature": "sha256=00"},
        {"X-Didchat-Signature": didchat_signature("wrong", json.dumps(MESSAGE).encode())},
        {"X-Didchat-Signature": "sha256=é"},
    ],
)
def test_bad_signatures_are_refused(hook, headers):
    with pytest.raises(SignatureError) as caught:
        reading.message(hook, URL, json.dumps(MESSAGE).encode(), headers)
    assert caught.value.status == 403


def test_tampered_body_is_refused(hook):
    body, headers = signed(MESSAGE)
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body.replace(b"Hi", b"Ho"), headers)


@pytest.mark.parametrize("body", [b"", b"not json", b"[1]", b"\xff"])
def test_signature_before_parsing(hook, body):
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body, {"X-Didchat-Signature": "sha256=" + "0" * 64})
    with pytest.raises(SignatureError):
        reading.status(hook, URL, body, {})


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        (b"not json", "body", "body is not valid JSON"),
        (b"[1, 2]", "body", "body is not a JSON object"),
        ({**MESSAGE, "id": None}, "id", "missing field 'id'"),
        ({**MESSAGE, "id": ""}, "id", "field 'id' must be a non-empty string"),
        ({k: v for k, v in MESSAGE.items() if k != "from"}, "from", "missing field 'from'"),
        ({**MESSAGE, "from": "+1"}, "from", "field 'from': '+1' is not a valid phone number"),
        ({**MESSAGE, "to": "ACME"}, "to", "field 'to': 'ACME' is not a valid phone number"),
        ({**MESSAGE, "to": 14155550100}, "to", "field 'to' must be a string"),
        ({**MESSAGE, "text": ""}, "text", "field 'text' is empty"),
        ({**MESSAGE, "text": "x" * 10_001}, "text", "field 'text' is longer than 10000 characters"),
        ({**MESSAGE, "timestamp": "yesterday"}, "timestamp", "field 'timestamp': 'yesterday' must be ISO 8601"),
        ({**MESSAGE, "timestamp": True}, "timestamp", "field 'timestamp'"),
        ({**MESSAGE, "timestamp": 1e300}, "timestamp", "field 'timestamp'"),
    ],
)
def test_field_errors_name_the_field(hook, payload, field, message):
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(hook, URL, *signed(payload))
    assert caught.value.field == field
    assert caught.value.status == 400
    assert str(caught.value).startswith(message)


def test_numeric_id_and_lenient_sender(hook):
    sms = reading.message(hook, URL, *signed({**MESSAGE, "id": 42, "from": "INFO"}))
    assert (sms.provider_id, sms.sender) == ("42", "INFO")


@pytest.mark.parametrize("status", STATUSES)
def test_status_reports(hook, status):
    report = reading.status(hook, URL, *signed({"id": "p-9", "status": status}))
    assert (report.connector, report.provider_id, report.status, report.error) == ("generic", "p-9", status, None)


def test_status_with_error(hook):
    report = reading.status(hook, URL, *signed({"id": "p-9", "status": "failed", "error": "handset off"}))
    assert report.error == "handset off"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id": "p-9", "status": "DELIVRD"}, "status"),
        ({"id": "p-9"}, "status"),
        ({"status": "sent"}, "id"),
        ({"id": "p-9", "status": "failed", "error": ["x"]}, "error"),
    ],
)
def test_status_errors_name_the_field(hook, payload, field):
    with pytest.raises(MalformedWebhook) as caught:
        reading.status(hook, URL, *signed(payload))
    assert caught.value.field == field


# --- every decodable message is stored (issue 8, point 3) ----------------------------------------


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (json.dumps({**MESSAGE, "text": "a\x00b"}).encode(), "a\ufffdb"),
        (b'{"id": "m-1", "from": "+14155550123", "to": "+14155550100", "text": "x\\ud800y"}', "x\ufffdy"),
        (b'{"id": "m-1", "from": "+14155550123", "to": "+14155550100", "text": "caf\xe9"}', "caf\ufffd"),
    ],
    ids=["nul", "lone-surrogate", "latin-1-byte"],
)
def test_unstorable_text_is_repaired_and_the_body_kept(hook, body, text):
    sms = reading.message(hook, URL, *signed(body))
    assert sms.text == text
    assert sms.original == body


def test_clean_text_keeps_no_original(hook):
    assert reading.message(hook, URL, *signed({**MESSAGE, "text": "Grüße 😀"})).original is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**MESSAGE, "id": "m\x001"}, "id"),
        ({**MESSAGE, "id": "\ud800"}, "id"),
        ({**MESSAGE, "id": "x" * 129}, "id"),
        ({**MESSAGE, "from": "+14155550123\x00"}, "from"),
        ({**MESSAGE, "to": "+14155550100\ud800"}, "to"),
        ({**MESSAGE, "from": "1" * 65}, "from"),
    ],
)
def test_ids_and_numbers_that_cannot_be_exact_are_refused(hook, payload, field):
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(hook, URL, *signed(payload))
    assert caught.value.field == field


def test_status_error_text_is_repaired(hook):
    report = reading.status(hook, URL, *signed({"id": "p-9", "status": "failed", "error": "bad\x00\ud800"}))
    assert report.error == "bad\ufffd\ufffd"


# --- bodies that used to raise (issue 8, point 4) -------------------------------------------------


def test_an_id_of_5000_digits_names_the_field(hook):
    body = b'{"id": ' + b"9" * 5000 + b', "from": "+14155550123", "to": "+14155550100", "text": "Hi"}'
    with pytest.raises(MalformedWebhook, match="5000 digits") as caught:
        reading.message(hook, URL, *signed(body))
    assert caught.value.field == "id"


def test_a_huge_integer_in_a_field_we_do_not_read_is_harmless(hook):
    body = json.dumps({**MESSAGE}).encode()[:-1] + b', "extra": ' + b"1" * 5000 + b"}"
    assert reading.message(hook, URL, *signed(body)).text == "Hi"


def test_a_huge_timestamp_names_the_field(hook):
    body = json.dumps(MESSAGE).encode()[:-1] + b', "timestamp": ' + b"1" * 5000 + b"}"
    with pytest.raises(MalformedWebhook) as caught:
        reading.message(hook, URL, *signed(body))
    assert caught.value.field == "timestamp"


@pytest.mark.parametrize("where", ["top", "text"])
def test_deep_nesting_is_400_naming_the_body(hook, where):
    deep = b"[" * 100_000 + b"]" * 100_000
    body = deep if where == "top" else b'{"id": "m-1", "text": ' + deep + b"}"
    with pytest.raises(MalformedWebhook, match="nested too deeply") as caught:
        reading.message(hook, URL, *signed(body))
    assert caught.value.field == "body"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonp"])
def test_only_json_is_taken(hook, content_type):
    body, headers = signed(MESSAGE)
    headers = {k: v for k, v in headers.items() if k != "Content-Type"}
    if content_type:
        headers["Content-Type"] = content_type
    with pytest.raises(WebhookError) as caught:
        reading.message(hook, URL, body, headers)
    assert caught.value.status == 415 and caught.value.field == "Content-Type"
    assert (content_type or "none") in caught.value.message


def test_json_with_a_charset_is_taken(hook):
    assert reading.message(hook, URL, *signed(MESSAGE, content_type="Application/JSON; charset=utf-8")).text == "Hi"


def test_signature_comes_before_the_content_type(hook):
    with pytest.raises(SignatureError):
        reading.message(hook, URL, json.dumps(MESSAGE).encode(), {"Content-Type": "text/plain"})


def test_a_signature_header_that_is_not_utf8_is_refused(hook):
    body, _ = signed(MESSAGE)
    with pytest.raises(SignatureError):
        reading.message(hook, URL, body, {"X-Didchat-Signature": "sha256=\udcff"} | JSON)
