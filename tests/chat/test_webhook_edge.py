"""Webhooks at the edge (issue 8, points 3, 4 and 11), against a real server on both databases:
every decodable message is stored once with its original kept, no signed body raises, and a
connector speaks only for its own numbers."""
from __future__ import annotations

import asyncio
import base64
import json
import uuid
from urllib.parse import urlencode

import sqlalchemy as sa

from chat.domain.inbound import inbound_unit
from chat.store.tables import contacts, messages
from gateway import InboundSms
from gateway.providers.generic import didchat_signature
from gateway.providers.twilio import twilio_params, twilio_signature
from tests.conftest import ALICE, CUSTOMER, SMPP_NUMBER

GEN_SECRET = "gen-secret-0123456789abcdef"
GEN_NUMBER = SMPP_NUMBER  # the tests' config gives Alice this number when connectors are added
GENERIC = f"""\
  - type: generic
    name: gen
    secret: "{GEN_SECRET}"
    send_url: http://127.0.0.1:9/send
    numbers: ["{GEN_NUMBER}"]
"""


async def generic_server(make_server):
    """A server with Twilio connector `tw` (Alice's, Bob's and the main number) and generic `gen`."""
    return await make_server(connectors=GENERIC)


def generic_post(server, body: bytes, *, route: str = "", content_type: str = "application/json"):
    """(url, body, headers) of a raw body signed with `gen`'s secret."""
    headers = {"X-Didchat-Signature": didchat_signature(GEN_SECRET, body), "Content-Type": content_type}
    return f"{server.url}/webhooks/generic/gen{route}", body, headers


def generic_message(server, text: str = "hi", *, to: str = GEN_NUMBER, sender: str = CUSTOMER, id: str | None = None):
    body = json.dumps({"id": id or uuid.uuid4().hex, "from": sender, "to": to, "text": text}).encode()
    return generic_post(server, body)


def twilio_post(server, body: bytes, *, route: str = ""):
    """(url, body, headers) of a raw form body signed as Twilio signs it for connector `tw`."""
    url = f"{server.url}/webhooks/twilio/tw{route}"
    signature = twilio_signature(server.twilio_api.auth_token, url, twilio_params(body))
    return url, body, {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}


def twilio_form(server, raw_body: bytes = b"hi", *, to: str = ALICE, sid: str | None = None, **fields) -> bytes:
    """A Twilio inbound form whose Body is `raw_body` as given (already percent-encoded)."""
    head = {"MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": server.twilio_api.account_sid,
            "From": CUSTOMER, "To": to, "NumMedia": "0", **fields}
    return urlencode(head).encode() + b"&Body=" + raw_body


async def count(server, table=messages) -> int:
    async with server.services.db.read() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(table))


async def stored(server) -> list[tuple[str, str | None]]:
    async with server.services.db.read() as conn:
        rows = await conn.execute(sa.select(messages.c.text, messages.c.original).order_by(messages.c.id))
        return [tuple(row) for row in rows]


# --- point 3: every decodable message is stored ---------------------------------------------------


async def test_twilio_sms_with_nul_is_stored_once_repaired_and_kept(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    post = twilio_post(server, twilio_form(server, b"before%00after", sid="SM" + "0" * 32))
    answers = [await server.post(*post) for _ in range(3)]  # the provider's retries
    assert [status for status, _ in answers] == [200, 200, 200]
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == "before\ufffdafter"
    assert await stored(server) == [("before\ufffdafter", base64.b64encode(post[1]).decode())]


async def test_twilio_form_with_invalid_utf8_is_stored_and_kept(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    post = twilio_post(server, twilio_form(server, b"caf%E9 cr\xe8me"))
    assert [(await server.post(*post))[0] for _ in range(2)] == [200, 200]
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == "caf\ufffd cr\ufffdme"
    [(_, original)] = await stored(server)
    assert base64.b64decode(original) == post[1]


async def test_generic_sms_with_a_lone_surrogate_or_nul_is_stored_and_kept(make_server):
    server = await generic_server(make_server)
    alice = await server.connect("alice")
    surrogate = b'{"id": "g-1", "from": "' + CUSTOMER.encode() + b'", "to": "' + GEN_NUMBER.encode() + b'", "text": "a\\ud800b"}'
    nul = json.dumps({"id": "g-2", "from": CUSTOMER, "to": GEN_NUMBER, "text": "c\x00d"}).encode()
    for body in (surrogate, nul, surrogate):  # the last one a retry
        status, text = await server.post(*generic_post(server, body))
        assert status == 200, text
    await alice.wait_messages(2)
    assert [m["text"] for m in alice.messages] == ["a\ufffdb", "c\ufffdd"]
    assert await stored(server) == [("a\ufffdb", base64.b64encode(surrogate).decode()),
                                    ("c\ufffdd", base64.b64encode(nul).decode())]


async def test_clean_text_keeps_no_original(make_server):
    server = await make_server()
    status, _ = await server.simulate_sms(text="Grüße 😀")
    assert status == 200
    assert await stored(server) == [("Grüße 😀", None)]


async def test_a_batch_with_one_unstorable_message_stores_them_all(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    posts = [twilio_post(server, twilio_form(server, b"bad%00one" if i == 3 else f"fine {i}".encode()))
             for i in range(8)]
    answers = await asyncio.gather(*(server.post(*post) for post in posts))
    assert [status for status, _ in answers] == [200] * 8
    await alice.wait_messages(8)
    expected = ["bad\ufffdone"] + [f"fine {i}" for i in range(8) if i != 3]
    assert sorted(text for text, _ in await stored(server)) == sorted(expected)


async def test_the_store_path_repairs_what_any_connector_brings(make_server):
    # A connector that forgot the rule (no original, raw text): ingest still stores it, in one batch with others.
    server = await make_server()
    svc = server.services
    sms = [InboundSms("tw", f"raw-{i}", CUSTOMER, ALICE, "x\ud800\x00y" if i == 1 else f"ok {i}") for i in range(4)]
    results = await asyncio.gather(*(svc.commit.run(inbound_unit(s, svc.directory, svc.presence)) for s in sms))
    assert [r.duplicate for r in results] == [False] * 4
    texts = dict(await stored(server))
    assert "x\ufffd\ufffdy" in texts
    assert base64.b64decode(texts["x\ufffd\ufffdy"]) == "x\ud800\x00y".encode("utf-8", "surrogatepass")


async def test_an_agent_send_with_nul_or_a_lone_surrogate_is_refused_naming_the_text(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    await server.simulate_sms(text="hello")
    [msg] = await alice.wait_messages(1)
    for text in ("a\x00b", "a\ud800b"):
        send = {"conversation_id": msg["conversation_id"], "text": text, "client_id": uuid.uuid4().hex}
        answer = await alice.call("send", send)
        assert answer["ok"] is False and answer["field"] == "text", answer
        assert "U+0000 or a lone surrogate" in answer["error"]
    assert await count(server) == 1 and server.twilio_api.requests == []


# --- point 4: bodies that used to raise are 400 naming the field -----------------------------------


async def test_bodies_that_used_to_raise_are_400_naming_the_field(make_server):
    server = await generic_server(make_server)
    long_id = b'{"id": ' + b"7" * 5000 + f', "from": "{CUSTOMER}", "to": "{GEN_NUMBER}", "text": "x"}}'.encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [
        (generic_post(server, long_id), "id"),
        (generic_post(server, deep), "body"),
        (generic_post(server, b'{"id": ' + b"7" * 5000 + b', "status": "sent"}', route="/status"), "id"),
        (twilio_post(server, twilio_form(server, NumMedia="9" * 4400)), "NumMedia"),
        (twilio_post(server, twilio_form(server, NumMedia="1", MediaUrl0="https://m.example/1", MediaContentType0="x" * 5000)),
         "MediaContentType0"),
    ]
    for post, field in cases:
        status, text = await server.post(*post)
        assert (status, json.loads(text)["field"]) == (400, field), text
    assert await count(server) == 0 and await count(server, contacts) == 0


async def test_generic_webhook_takes_only_json(make_server):
    server = await generic_server(make_server)
    url, body, headers = generic_message(server)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        status, text = await server.post(url, body, headers | {"Content-Type": content_type})
        assert status == 415 and content_type in json.loads(text)["error"]
    status, _ = await server.post(url, body, headers | {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200 and await count(server) == 1


# --- point 11: a connector speaks only for its own numbers ----------------------------------------


async def test_a_connector_cannot_bring_sms_for_another_connectors_number(make_server):
    server = await generic_server(make_server)
    alice = await server.connect("alice")
    status, text = await server.post(*generic_message(server, "injected", to=ALICE))  # ALICE is tw's
    assert status == 404
    answer = json.loads(text)
    assert ALICE in answer["error"] and "'gen'" in answer["error"] and answer["field"] == "to"
    status, text = await server.post(*twilio_post(server, twilio_form(server, b"injected", to=GEN_NUMBER)))
    assert status == 404 and GEN_NUMBER in text and "'tw'" in text
    assert await count(server) == 0 and await count(server, contacts) == 0
    # Each connector's own numbers still work.
    assert (await server.post(*generic_message(server, "via gen")))[0] == 200
    assert (await server.post(*twilio_post(server, twilio_form(server, b"via tw"))))[0] == 200
    await alice.wait_messages(2)
    assert sorted(m["text"] for m in alice.messages) == ["via gen", "via tw"]
