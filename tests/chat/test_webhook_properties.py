"""Property tests over every webhook route against a real server, on both databases (issue 8):
arbitrary signed bodies (any JSON value, deep nesting, huge integers, NULs, lone surrogates,
bytes that are not UTF-8, random form fields, wrong content types) are every one answered, never
with a 5xx (no store failure happens here), and the log holds no traceback.

Hypothesis drives a plain HTTP client from a worker thread while the server runs on the test's
event loop, so every example is a real request to the real app.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import logging
from urllib.parse import urlencode, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.messages import STATUSES
from gateway.providers.twilio import STATUSES as TWILIO_STATUSES
from tests.chat.test_webhook_edge import GEN_NUMBER, generic_post, generic_server, twilio_post
from tests.conftest import ALICE, BOB, CUSTOMER, MAIN

SETTINGS = settings(max_examples=70, deadline=None, suppress_health_check=list(HealthCheck))
ANSWERS = {200, 400, 403, 404, 413, 415}

# Text as hostile senders type it: anything, with NULs, lone surrogates and replacement characters mixed in.
odd = st.sampled_from(["\x00", "\ud800", "\udfff", "\ufffd", "\u202e", "😀", "%00", "\\u0000"])
hostile_text = st.lists(st.text(max_size=8) | odd, max_size=6).map("".join)
numbers = st.sampled_from([ALICE, BOB, MAIN, GEN_NUMBER, CUSTOMER, "+12125550177", "12345", "ACME", "+1", ""]) | hostile_text
huge_int = st.integers(min_value=1, max_value=6000).map(lambda n: int("9" * min(n, 4000)))  # json.dumps can write 4,000 digits
json_scalar = st.none() | st.booleans() | st.integers() | st.floats() | hostile_text | huge_int
json_value = st.recursive(json_scalar, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(hostile_text, kids, max_size=4),
                          max_leaves=12)


def field(value):
    """A field's value: usually a plausible one, sometimes any JSON value."""
    return st.one_of(value, value, json_value)


generic_message = st.fixed_dictionaries(
    {"id": field(st.uuids().map(str) | hostile_text), "from": field(numbers), "to": field(numbers), "text": field(hostile_text)},
    optional={"timestamp": json_value, "extra": json_value},
)
# Messages the server takes: what comes after them is where repairs happen.
good_generic_message = st.fixed_dictionaries(
    {"id": st.uuids().map(str), "from": st.sampled_from([CUSTOMER, "ACME", "12345"]), "to": st.just(GEN_NUMBER),
     "text": hostile_text.map(lambda text: text + "."), "timestamp": st.just(1772368200)},
)
good_generic_status = st.fixed_dictionaries(
    {"id": st.uuids().map(str), "status": st.sampled_from(STATUSES)}, optional={"error": hostile_text | st.integers()},
)
generic_status = st.fixed_dictionaries(
    {"id": field(st.uuids().map(str) | hostile_text), "status": field(st.sampled_from(STATUSES) | hostile_text)},
    optional={"error": json_value},
)


def dumped(doc) -> st.SearchStrategy[bytes]:
    """A JSON document as bytes: escaped (\\ud800), or raw with surrogates passed through (not UTF-8)."""
    return st.sampled_from([True, False]).map(
        lambda ascii: json.dumps(doc, ensure_ascii=ascii).encode("utf-8", "surrogatepass"))


def raw_json(documents) -> st.SearchStrategy[bytes]:
    """Bodies of a JSON route: documents, any JSON, deep nesting, 5,000-digit integers, any bytes."""
    return st.one_of(
        documents.flatmap(dumped),
        documents.flatmap(dumped),
        documents.flatmap(dumped),
        json_value.flatmap(dumped),
        st.integers(min_value=1, max_value=120_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=1, max_value=120_000).map(lambda n: b'{"id": "x", "text": ' + b"[" * n + b"]" * n + b"}"),
        st.integers(min_value=4300, max_value=6000).map(lambda n: b'{"id": ' + b"7" * n + b', "status": "sent", "timestamp": 1}'),
        st.binary(max_size=200),
    )


json_type = st.sampled_from(["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"])
other_type = st.sampled_from(["text/plain", "", "application/x-www-form-urlencoded"]) \
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
content_types = st.sampled_from([json_type] * 4 + [other_type]).flatmap(lambda kind: kind)  # mostly JSON, to reach the fields

twilio_field_names = st.sampled_from(["MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "NumMedia",
                                      "MediaUrl0", "MediaContentType0", "MediaUrl1", "MessageStatus", "SmsStatus",
                                      "ErrorCode", "ErrorMessage"]) | hostile_text
twilio_values = hostile_text | numbers | st.integers(min_value=0, max_value=5000).map(lambda n: "9" * n) \
    | st.sampled_from(sorted(TWILIO_STATUSES)) | st.integers(0, 12).map(str)


def twilio_forms(account_sid: str, status: bool) -> st.SearchStrategy[bytes]:
    """Form bodies: a plausible message (or status) with random fields over it, or any bytes."""
    base = {"MessageSid": "SM" + "1" * 32, "AccountSid": account_sid, "From": CUSTOMER, "To": ALICE, "Body": "hi"}
    if status:
        base |= {"MessageStatus": "delivered"}
    fields = st.dictionaries(twilio_field_names, twilio_values, max_size=8).map(lambda extra: base | extra)
    encoded = fields.map(lambda d: urlencode(d, errors="surrogatepass").encode())
    return st.one_of(encoded, encoded, encoded.map(lambda b: b + b"&Body=caf%E9\xff"), st.binary(max_size=200))


class Client:
    """Blocking HTTP posts to the server, for Hypothesis' thread."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.answers: list[int] = []

    def post(self, url: str, body: bytes, headers: dict) -> int:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("POST", urlsplit(url).path, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
        finally:
            conn.close()
        self.answers.append(answer.status)
        return answer.status


def check_answer(status: int) -> None:
    assert status in ANSWERS, f"answered {status}"


async def run_property(server, property_test, capfd, caplog) -> None:
    """Run a Hypothesis test in a thread against `server`; then no traceback may be in any log."""
    caplog.set_level(logging.WARNING)
    await asyncio.to_thread(property_test)
    assert (await server.simulate_sms(text="still fine"))[0] == 200
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(record.getMessage() for record in caplog.records)
    assert "Traceback" not in logged and "store_failed" not in logged, logged[-3000:]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


async def test_generic_message_route(make_server, capfd, caplog):
    server = await generic_server(make_server)
    client = Client(server.url)

    @SETTINGS
    @given(body=raw_json(generic_message | good_generic_message | good_generic_message), content_type=content_types)
    def prop(body, content_type):
        check_answer(client.post(*generic_post(server, body, content_type=content_type)))

    await run_property(server, prop, capfd, caplog)
    assert 200 in client.answers and len(set(client.answers)) >= 2  # it reached the store, and refused some


async def test_generic_status_route(make_server, capfd, caplog):
    server = await generic_server(make_server)
    client = Client(server.url)

    @SETTINGS
    @given(body=raw_json(generic_status | good_generic_status | good_generic_status), content_type=content_types)
    def prop(body, content_type):
        check_answer(client.post(*generic_post(server, body, route="/status", content_type=content_type)))

    await run_property(server, prop, capfd, caplog)
    assert 200 in client.answers and len(set(client.answers)) >= 2  # it reached the store, and refused some


async def test_twilio_message_route(make_server, capfd, caplog):
    server = await generic_server(make_server)
    client = Client(server.url)

    @SETTINGS
    @given(body=twilio_forms(server.twilio_api.account_sid, status=False), signed=st.sampled_from([True, True, True, False]))
    def prop(body, signed):
        url, body, headers = twilio_post(server, body)
        check_answer(client.post(url, body, headers if signed else headers | {"X-Twilio-Signature": "bm9wZQ=="}))

    await run_property(server, prop, capfd, caplog)
    assert 200 in client.answers and len(set(client.answers)) >= 2  # it reached the store, and refused some


async def test_twilio_status_route(make_server, capfd, caplog):
    server = await generic_server(make_server)
    client = Client(server.url)

    @SETTINGS
    @given(body=twilio_forms(server.twilio_api.account_sid, status=True), content_type=content_types)
    def prop(body, content_type):
        url, body, headers = twilio_post(server, body, route="/status")
        check_answer(client.post(url, body, headers | {"Content-Type": content_type or "x/y"}))

    await run_property(server, prop, capfd, caplog)
    assert 200 in client.answers and len(set(client.answers)) >= 2  # it reached the store, and refused some
