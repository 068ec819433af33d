"""Every SMS API end to end, against fakes that speak each provider's documented wire format (tests/fakes/*_api.py):
a signed inbound webhook reaches the owning agent, a forged one stores nothing, the reply goes out from the agent's
number as the provider documents it, its delivery shows, inbound MMS media is fetched through didchat, an opt-out
the provider reports is recorded, and the same provider message id three times is one message."""
from __future__ import annotations

import random
import uuid

import aiohttp
import pytest

from gateway import PROVIDERS
from tests.conftest import CUSTOMER, SMPP_NUMBER, until
from tests.fakes.bandwidth_api import FakeBandwidthApi
from tests.fakes.plivo_api import FakePlivoApi
from tests.fakes.provider import Webhook
from tests.fakes.telnyx_api import FakeTelnyxApi
from tests.fakes.twilio_api import FakeTwilioApi
from tests.fakes.vonage_api import FakeVonageApi

FAKES = {
    "twilio": FakeTwilioApi,
    "vonage-messages": lambda: FakeVonageApi("messages"),
    "vonage-sms": lambda: FakeVonageApi("sms"),
    "telnyx": FakeTelnyxApi,
    "plivo": FakePlivoApi,
    "bandwidth": FakeBandwidthApi,
}


MMS = sorted(set(FAKES) - {"vonage-sms"})  # Vonage's SMS API carries no MMS


@pytest.fixture(params=sorted(FAKES))
async def provider(request):
    fake = await FAKES[request.param]().start()
    yield fake
    await fake.stop()


@pytest.fixture(params=MMS)
async def mms_provider(request):
    fake = await FAKES[request.param]().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def server(make_server, provider):
    return await make_server(connectors=provider.connector_yaml("prov", [SMPP_NUMBER]))


def message_url(server, provider) -> str:
    return f"{server.url}/webhooks/{provider.type}/prov"


async def post(server, provider, hook: Webhook) -> tuple[int, str]:
    url = message_url(server, provider) + ("/status" if hook.route == "status" else "")
    if hook.query:
        url += "?" + hook.query
    async with aiohttp.ClientSession() as http:
        async with http.request(hook.method, url, data=hook.body or None, headers=hook.headers) as answer:
            return answer.status, await answer.text()


async def inbound(server, provider, text: str, message_id: str | None = None, media=None) -> list[Webhook]:
    hooks = provider.inbound(message_url(server, provider), CUSTOMER, SMPP_NUMBER, text,
                             message_id or uuid.uuid4().hex, media)
    for hook in hooks:
        status, body = await post(server, provider, hook)
        assert 200 <= status < 300, (status, body)
    return hooks


def reply(conversation_id: int, text: str) -> dict:
    return {"conversation_id": conversation_id, "text": text, "client_id": str(uuid.uuid4())}


async def test_inbound_reaches_the_agent_and_the_reply_is_delivered(server, provider):
    alice = await server.connect("alice")
    await inbound(server, provider, f"hello via {provider.type}")
    [msg] = await alice.wait_messages(1)
    assert (msg["text"], msg["from"], msg["to"]) == (f"hello via {provider.type}", CUSTOMER, SMPP_NUMBER)

    answer = await alice.call("send", reply(msg["conversation_id"], "Hi, Alice here"))
    assert answer["ok"], answer
    await until(lambda: len(provider.sent) == 1, 10, "the provider got the reply")
    [sent] = provider.sent
    assert (sent.sender, sent.recipient, sent.text) == (SMPP_NUMBER, CUSTOMER, "Hi, Alice here")

    status_url = sent.status_url or message_url(server, provider) + "/status"
    hook = provider.delivered(status_url, sent)
    status, body = await post(server, provider, hook)
    assert 200 <= status < 300, (status, body)
    await until(lambda: any(s["status"] == "delivered" and s["id"] == answer["message"]["id"]
                            for s in alice.pushed("status")), 10, "delivered")


async def test_a_forged_webhook_is_403_and_stores_nothing(server, provider):
    alice = await server.connect("alice")
    hooks = provider.inbound(message_url(server, provider), CUSTOMER, SMPP_NUMBER, "forged", uuid.uuid4().hex)
    for hook in hooks:
        status, body = await post(server, provider, provider.forged(hook))
        assert status == 403, (status, body)
    await inbound(server, provider, "genuine")
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == "genuine"


async def test_the_same_provider_message_three_times_is_one_message(server, provider):
    alice = await server.connect("alice")
    message_id = uuid.uuid4().hex
    for _ in range(3):
        await inbound(server, provider, "once only", message_id)
    await inbound(server, provider, "and the next")
    await until(lambda: len(alice.messages) >= 2, 10, "two messages")
    assert [m["text"] for m in alice.messages] == ["once only", "and the next"]


async def test_inbound_mms_media_is_fetched_through_didchat(make_server, mms_provider):
    provider = mms_provider
    assert PROVIDERS[provider.type].supports.mms_in
    server = await make_server(connectors=provider.connector_yaml("prov", [SMPP_NUMBER]))
    alice = await server.connect("alice")
    await inbound(server, provider, "a photo", media=[(provider.media_url("pic.png"), "image/png")])
    [msg] = await alice.wait_messages(1)
    [item] = msg["media"]
    assert item["url"].startswith("/api/media/") and "pic.png" not in item["url"]  # the provider's URL stays ours
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + item["url"], headers={"Authorization": f"Bearer {alice.token}"}) as got:
            assert got.status == 200, await got.text()
            assert got.content_type == "image/png" and await got.read()
            assert got.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(server.url + item["url"]) as anonymous:
            assert anonymous.status == 401
        bob = await server.connect("bob")
        async with http.get(server.url + item["url"], headers={"Authorization": f"Bearer {bob.token}"}) as other:
            assert other.status == 404  # not his conversation: as if there were no such attachment


async def test_an_opt_out_the_provider_reports_is_recorded(server, provider):
    alice = await server.connect("alice")
    await inbound(server, provider, "hello")
    [msg] = await alice.wait_messages(1)
    provider.refuse_next_as_opted_out()
    answer = await alice.call("send", reply(msg["conversation_id"], "are you there?"))
    assert answer["ok"], answer
    await until(lambda: len(provider.sent) == 1, 10, "the provider got the send")

    def failed() -> list[dict]:
        return [s for s in alice.pushed("status") if s["status"] in ("failed", "undelivered")]

    try:
        await until(lambda: bool(failed()), 2, "refused at once")
    except TimeoutError:  # Plivo and Bandwidth take the send and report the opt-out in its status callback
        [sent] = provider.sent
        status, body = await post(server, provider, provider.delivered(
            sent.status_url or message_url(server, provider) + "/status", sent))
        assert 200 <= status < 300, (status, body)
        await until(lambda: bool(failed()), 10, "the opt-out reported")
    # Recorded: the next reply is refused here (at once, or by the outbox), and the provider never sees it.
    answer = await alice.call("send", reply(msg["conversation_id"], "and now?"))
    if answer["ok"]:
        await until(lambda: len(failed()) == 2, 10, "the next reply refused")
        answer = {"error": failed()[-1]["error"]}
    assert "opted out" in answer["error"] and len(provider.sent) == 1


async def test_vonage_sms_api_parts_in_shuffled_order_are_one_message(make_server):
    fake = await FakeVonageApi("sms").start()
    try:
        server = await make_server(connectors=fake.connector_yaml("prov", [SMPP_NUMBER]))
        alice = await server.connect("alice")
        text = " ".join(f"word{n}" for n in range(120))  # about 800 characters: six parts
        hooks = fake.inbound(message_url(server, fake), CUSTOMER, SMPP_NUMBER, text, uuid.uuid4().hex)
        assert len(hooks) > 2
        random.Random(7).shuffle(hooks)
        for hook in hooks:
            assert (await post(server, fake, hook))[0] == 200
        [msg] = await alice.wait_messages(1)
        assert msg["text"] == text
        for hook in hooks[:2]:  # a part sent again after the whole message: nothing new
            assert (await post(server, fake, hook))[0] == 200
        await inbound(server, fake, "next")
        await until(lambda: len(alice.messages) >= 2, 10)
        assert [m["text"] for m in alice.messages] == [text, "next"]
    finally:
        await fake.stop()


async def test_vonage_sms_api_parts_whose_last_never_comes_arrive_marked_incomplete(make_server, monkeypatch):
    monkeypatch.setattr("chat.domain.inbound.WEBHOOK_PARTS_SECONDS", 1)  # instead of five minutes
    fake = await FakeVonageApi("sms").start()
    try:
        server = await make_server(connectors=fake.connector_yaml("prov", [SMPP_NUMBER]))
        alice = await server.connect("alice")
        text = " ".join(f"word{n}" for n in range(60))  # about 400 characters: three parts
        hooks = fake.inbound(message_url(server, fake), CUSTOMER, SMPP_NUMBER, text, uuid.uuid4().hex)
        for hook in hooks[:-1]:
            assert (await post(server, fake, hook))[0] == 200
        [msg] = await alice.wait_messages(1, timeout=10)  # the sweep: every two seconds, after the wait
        assert msg["incomplete"] is True and text.startswith(msg["text"]) and len(msg["text"]) < len(text)
    finally:
        await fake.stop()
