"""Attachments on replies (both databases): an agent uploads a file and sends it; the provider gets didchat's public
URL for it in the parameter its API documents, and that URL serves the bytes with their type, as the agent's own
/api/media link does. A connector that cannot send MMS (SMPP, Vonage's SMS API) refuses with a plain reason and
stores nothing; uploads too large, of a type not taken, without a live session or naming someone else's file are
refused, and a public URL nobody was given is 404."""
from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid
from datetime import timedelta

import aiohttp
import jwt
import pytest
import sqlalchemy as sa

from chat.store import utcnow
from chat.store.tables import uploads
from tests.conftest import ALICE, CUSTOMER, SMPP_NUMBER, free_port, smpp_connector, until
from tests.fakes.bandwidth_api import FakeBandwidthApi
from tests.fakes.plivo_api import FakePlivoApi
from tests.fakes.telnyx_api import FakeTelnyxApi
from tests.fakes.vonage_api import FakeVonageApi

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.4\n" + b"0" * 500 + b"\n%%EOF\n"
# Where each API documents the media of a send (tests/fakes keep the request as the provider reads it).
DOCUMENTED = {
    "telnyx": (FakeTelnyxApi, lambda raw: raw["media_urls"]),
    "plivo": (FakePlivoApi, lambda raw: raw["media_urls"] if raw["type"] == "mms" else None),
    "bandwidth": (FakeBandwidthApi, lambda raw: raw["media"]),
    "vonage-messages": (lambda: FakeVonageApi("messages"), lambda raw: [raw["image"]["url"]]),
}


async def upload(server, token: str | None, data: bytes, content_type: str | None = "image/png",
                 filename: str | None = "photo.png") -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type:
        headers["Content-Type"] = content_type
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/uploads", data=data, headers=headers,
                             params={"filename": filename} if filename else None) as answer:
            return answer.status, await answer.json(content_type=None)


async def fetch(url: str, token: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as answer:
            return answer.status, dict(answer.headers), await answer.read()


def send(text: str, media: list[int], **where) -> dict:
    return {"text": text, "media": media, "client_id": str(uuid.uuid4()), **where}


async def uploads_stored(server) -> int:
    async with server.services.db.read() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(uploads))


async def test_a_picture_sent_through_twilio_is_fetched_from_didchat_and_shown_to_the_agent(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, "can you send me a photo?")
    [msg] = await alice.wait_messages(1)
    status, photo = await upload(server, alice.token, PNG)
    assert status == 201, photo
    assert photo == {"id": photo["id"], "content_type": "image/png", "size": len(PNG), "filename": "photo.png"}

    answer = await alice.call("send", send("here it is", [photo["id"]], conversation_id=msg["conversation_id"]))
    assert answer["ok"], answer
    sent_id = answer["message"]["id"]
    assert answer["message"]["media"] == [{"url": f"/api/media/{sent_id}/0", "content_type": "image/png",
                                           "filename": "photo.png"}]
    await until(lambda: len(server.twilio_api.sent) == 1, 10, "Twilio got the MMS")
    [sent] = server.twilio_api.sent
    assert sent.text == "here it is" and len(sent.media) == 1
    [url] = sent.media  # Twilio's MediaUrl: didchat's public URL, which Twilio fetches without a session
    assert url.startswith(f"{server.url}/media/out/") and len(url.rsplit("/", 1)[1]) == 43 + len(".png")  # a token
    status, headers, body = await fetch(url)
    assert (status, headers["Content-Type"], body) == (200, "image/png", PNG)
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Content-Disposition"].startswith("inline")
    assert "sandbox" in headers["Content-Security-Policy"]  # what it holds runs nothing, even opened on its own

    own = f"{server.url}/api/media/{sent_id}/0"
    status, headers, body = await fetch(own, alice.token)
    assert (status, headers["Content-Type"], body) == (200, "image/png", PNG)
    assert "sandbox" in headers["Content-Security-Policy"]
    assert (await fetch(own))[0] == 401
    bob = await server.connect("bob")
    assert (await fetch(own, bob.token))[0] == 404  # not his conversation: as if there were no such attachment


async def test_files_alone_go_without_text_and_download_rather_than_show(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, "the invoice please")
    [msg] = await alice.wait_messages(1)
    ids = [(await upload(server, alice.token, data, kind, name))[1]["id"]
           for data, kind, name in ((PNG, "image/png", "a.png"), (PDF, "application/pdf", "Rechnung März.pdf"))]
    answer = await alice.call("send", send("", ids, conversation_id=msg["conversation_id"]))
    assert answer["ok"], answer
    await until(lambda: len(server.twilio_api.sent) == 1, 10, "Twilio got the MMS")
    [sent] = server.twilio_api.sent
    assert sent.text == "" and [u.rsplit(".", 1)[1] for u in sent.media] == ["png", "pdf"]
    status, headers, body = await fetch(sent.media[1])
    assert (status, headers["Content-Type"], body) == (200, "application/pdf", PDF)
    assert headers["Content-Disposition"].startswith("attachment;") and "Rechnung%20M%C3%A4rz.pdf" in headers["Content-Disposition"]


@pytest.mark.parametrize("api", sorted(DOCUMENTED))
async def test_another_provider_gets_the_attachment_as_its_api_documents(make_server, api):
    fake_class, documented = DOCUMENTED[api]
    fake = await fake_class().start()
    try:
        server = await make_server(connectors=fake.connector_yaml("prov", [SMPP_NUMBER]))
        alice = await server.connect("alice")
        status, photo = await upload(server, alice.token, PNG)
        assert status == 201, photo
        answer = await alice.call("send", send("a photo", [photo["id"]], to=CUSTOMER, **{"from": SMPP_NUMBER}))
        assert answer["ok"], answer
        await until(lambda: len(fake.sent) == 1, 10, f"{api} got the MMS")
        [sent] = fake.sent
        [url] = documented(sent.raw)
        assert url.startswith(f"{server.url}/media/out/") and sent.text == "a photo"
        status, headers, body = await fetch(url)
        assert (status, headers["Content-Type"], body) == (200, "image/png", PNG)
    finally:
        await fake.stop()


@pytest.mark.parametrize("kind", ["smpp", "vonage-sms"])
async def test_a_connector_that_cannot_send_mms_refuses_with_a_plain_reason_and_stores_nothing(make_server, kind):
    fake = await FakeVonageApi("sms").start() if kind == "vonage-sms" else None
    try:
        connectors = fake.connector_yaml("prov", [SMPP_NUMBER]) if fake else smpp_connector(free_port())
        server = await make_server(connectors=connectors)
        alice = await server.connect("alice")
        status, photo = await upload(server, alice.token, PNG)
        assert status == 201, photo
        answer = await alice.call("send", send("look", [photo["id"]], to=CUSTOMER, **{"from": SMPP_NUMBER}))
        what = "prov (Vonage SMS API)" if fake else "smsc (SMPP)"
        assert answer == {"ok": False, "error": f"{what} cannot send pictures or files: send the text alone", "field": "media"}
        sync = await alice.call("sync")
        assert sync["conversations"] == [] and sync["messages"] == []  # not even the new conversation
        assert (await alice.call("send", send("look", [], to=CUSTOMER, **{"from": SMPP_NUMBER})))["ok"]  # the text alone goes
    finally:
        if fake:
            await fake.stop()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """An HTTP/1.1 answer's status and body, read from a raw connection."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        length = int(value) if name.lower() == "content-length" else length
    return status, await reader.readexactly(length)


async def test_an_upload_over_the_limit_is_refused_without_being_read(make_server):
    server = await make_server(extra="upload_max_bytes: 100000\n")
    alice = await server.connect("alice")
    status, answer = await upload(server, alice.token, PNG + b"0" * 100_000)
    assert status == 413 and "100000 bytes" in answer["detail"], answer
    head = (f"POST /api/uploads HTTP/1.1\r\nHost: didchat\r\nAuthorization: Bearer {alice.token}\r\n"
            "Content-Type: image/png\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.config.port)
    try:  # 50 MB announced, not a byte sent: answered at once
        writer.write((head + "Content-Length: 50000000\r\n\r\n").encode())
        status, _ = await asyncio.wait_for(read_answer(reader), 5)
        assert status == 413
    finally:
        writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.config.port)
    try:  # no length announced: answered once the limit is passed, while the rest is still to come
        writer.write((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
        for _ in range(3):
            writer.write(b"%x\r\n%s\r\n" % (50_000, b"x" * 50_000))
        status, _ = await asyncio.wait_for(read_answer(reader), 5)
        assert status == 413
    finally:
        writer.close()
    assert await uploads_stored(server) == 0


async def test_uploads_of_other_types_without_a_session_or_empty_are_refused(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    for kind in ("image/svg+xml", "text/html", "application/octet-stream", None):
        status, answer = await upload(server, alice.token, b"<svg onload=alert(1)>", kind)
        assert status == 415 and "image/png" in answer["detail"], (kind, answer)
    status, answer = await upload(server, alice.token, PNG, filename="a\x07b.png")
    assert status == 400 and answer["errors"][0]["field"] == "filename", answer
    status, answer = await upload(server, alice.token, b"")
    assert status == 400 and "empty" in answer["detail"], answer
    assert (await upload(server, None, PNG))[0] == 401
    agent = server.services.directory.by_name["alice"]
    session = jwt.decode(alice.token, options={"verify_signature": False})["sid"]
    expired, _ = dataclasses.replace(server.services.tokens, access_seconds=-60).issue(agent, session)
    status, answer = await upload(server, expired, PNG)
    assert status == 401 and "not valid" in answer["detail"], answer
    assert await uploads_stored(server) == 0


async def test_a_public_url_nobody_was_given_or_too_old_is_404(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    for name in (secrets.token_urlsafe(32) + ".png", secrets.token_urlsafe(32), "nonsense", "..%2f..%2fetc"):
        assert (await fetch(f"{server.url}/media/out/{name}"))[0] == 404, name
    await server.simulate_sms(CUSTOMER, ALICE, "hi")
    [msg] = await alice.wait_messages(1)
    photo = (await upload(server, alice.token, PNG))[1]
    assert (await alice.call("send", send("x", [photo["id"]], conversation_id=msg["conversation_id"])))["ok"]
    await until(lambda: len(server.twilio_api.sent) == 1, 10, "Twilio got the MMS")
    [url] = server.twilio_api.sent[0].media
    assert (await fetch(url))[0] == 200

    async def age(conn):
        await conn.execute(uploads.update().values(created_at=utcnow() - timedelta(days=8)))
    await server.services.commit.run(age)
    assert (await fetch(url))[0] == 404  # a week on, the provider has long fetched it
    assert (await fetch(f"{server.url}/api/media/{msg['id'] + 1}/0", alice.token))[0] == 200  # the agent still sees it


async def test_only_the_agents_own_uploads_may_be_attached(make_server):
    server = await make_server()
    alice, bob = await server.connect("alice"), await server.connect("bob")
    await server.simulate_sms(CUSTOMER, ALICE, "hi")
    [msg] = await alice.wait_messages(1)
    cid = msg["conversation_id"]
    bobs = (await upload(server, bob.token, PNG))[1]["id"]
    mine = (await upload(server, alice.token, PNG))[1]["id"]
    for media in ([bobs], [mine, bobs], [bobs + 1000]):
        answer = await alice.call("send", send("x", media, conversation_id=cid))
        assert answer["ok"] is False and answer["field"] == "media", answer
        assert "not one you uploaded" in answer["error"] and str(bobs) not in answer["error"]
    for media in ([mine, mine], [mine] * 11):
        answer = await alice.call("send", send("x", media, conversation_id=cid))
        assert answer["ok"] is False and answer["field"] == "media", answer
    sync = await alice.call("sync")
    assert [m["direction"] for m in sync["messages"]] == ["in"] and server.twilio_api.requests == []
