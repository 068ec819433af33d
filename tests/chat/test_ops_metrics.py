"""/metrics: what an operator's Prometheus scrapes after an SMS and a reply (both databases)."""
from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALICE, CUSTOMER, PASSWORD, SMPP_NUMBER, smpp_connector
from tests.fakes.smsc import TestSmsc


async def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, parsed by prometheus_client: (name, sorted labels) -> value."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/metrics") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/plain")
            text = await answer.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples


async def scrape_until(server, predicate, timeout: float = 5.0):
    """Scrape until `predicate(samples)` holds (the worker records an outcome after its commit)."""
    async with asyncio.timeout(timeout):
        while not predicate(samples := await scrape(server)):
            await asyncio.sleep(0.05)
    return samples


def sent_by(samples, connector: str) -> float:
    return value(samples, "didchat_outbound_messages_total", connector=connector, outcome="sent")


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_an_sms_a_duplicate_a_refusal_and_a_reply(didchat_server):
    alice = await didchat_server.connect("alice")
    assert (await didchat_server.simulate_sms(CUSTOMER, ALICE, "secret text 4711", message_id="SM1"))[0] == 200
    assert (await didchat_server.simulate_sms(CUSTOMER, ALICE, "secret text 4711", message_id="SM1"))[0] == 200
    url, body, headers = didchat_server.webhook(CUSTOMER, ALICE, "forged")
    assert (await didchat_server.post(url, body, {**headers, "X-Twilio-Signature": "bad"}))[0] == 403
    [msg] = await alice.wait_messages(1)
    assert (await didchat_server.login("alice", "wrong"))[0] == 401
    didchat_server.twilio_api.fail_next(1, status=500)
    reply = {"conversation_id": msg["conversation_id"], "text": "a reply", "client_id": str(uuid.uuid4())}
    sent = await alice.call("send", reply)
    assert sent["ok"], sent
    await didchat_server.twilio_api.wait_for_requests(2, timeout=10)
    # The scrape reads the queues' depth, then renders: one scrape may show the send counted and the
    # depth read just before its commit. Wait for the depth too (it must come down to 0).
    samples = await scrape_until(didchat_server, lambda s: sent_by(s, "tw")
                                 and value(s, "didchat_queue_depth", queue="outbox") == 0)
    assert value(samples, "didchat_outbound_messages_total", connector="tw", outcome="retried") == 1
    assert value(samples, "didchat_outbound_messages_total", connector="tw", outcome="sent") == 1
    assert value(samples, "didchat_agents_connected", presence="ready") == 1
    assert value(samples, "didchat_push_latency_seconds_count") == 1
    assert value(samples, "didchat_webhook_ack_seconds_count", connector="tw", kind="message") == 3
    assert value(samples, "didchat_queue_depth", queue="outbox") == 0
    assert ("didchat_queue_depth", (("queue", "crm_outbox"),)) in samples
    assert value(samples, "didchat_routing_backlog") == 0
    assert sum(v for (name, _), v in samples.items() if name == "didchat_login_failures_total") == 1
    assert value(samples, "didchat_inbound_messages_total", connector="tw", outcome="stored") == 1
    assert value(samples, "didchat_inbound_messages_total", connector="tw", outcome="duplicate") == 1
    assert value(samples, "didchat_inbound_messages_total", connector="tw", outcome="refused") == 1
    assert value(samples, "didchat_inbound_messages_total", connector="tw", outcome="failed") == 0


async def test_metrics_show_no_secret_and_no_message_text(didchat_server):
    await didchat_server.connect("alice")
    await didchat_server.simulate_sms(CUSTOMER, ALICE, "my card is visa-4111-secret")
    url, body, headers = didchat_server.webhook(CUSTOMER, ALICE, "x")
    for name in ("nosuch1", "nosuch2"):  # connector names from the path never become labels (a scrape stays small)
        assert (await didchat_server.post(url.replace("/tw", f"/{name}"), body, headers))[0] == 404
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{didchat_server.url}/metrics") as answer:
            text = await answer.text()
    # The text by a word of it ("4111" alone turns up inside a value now and then: 1.796162002241116e+09).
    for secret in (PASSWORD, didchat_server.twilio_api.auth_token, "k" * 40, "visa-4111", CUSTOMER, ALICE, "nosuch"):
        assert secret not in text


async def test_queue_depth_and_age_count_rows_waiting_to_be_sent(didchat_server):
    alice = await didchat_server.connect("alice")
    await didchat_server.simulate_sms(CUSTOMER, ALICE, "hi")
    [msg] = await alice.wait_messages(1)
    didchat_server.twilio_api.fail_next(50, status=500)  # every attempt fails for a while: the row waits
    await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "stuck", "client_id": "c1"})
    await didchat_server.twilio_api.wait_for_requests(1)
    samples = await scrape(didchat_server)
    assert value(samples, "didchat_queue_depth", queue="outbox") == 1
    assert value(samples, "didchat_queue_oldest_age_seconds", queue="outbox") >= 0


async def test_metrics_show_the_smpp_link_its_statuses_and_its_inbound(make_server):
    smsc = await TestSmsc("didchat", "secret", window=50).start()
    try:
        server = await make_server(connectors=smpp_connector(smsc.port))
        await smsc.wait_for_sessions(1, timeout=10)
        alice = await server.connect("alice")
        assert await smsc.deliver(CUSTOMER.lstrip("+"), SMPP_NUMBER.lstrip("+"), b"Hi over SMPP") == 0
        [msg] = await alice.wait_messages(1)
        smsc.throttle_next(1)
        sent = await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "back", "client_id": "s1"})
        assert sent["ok"], sent
        await smsc.wait_for_submits(1, timeout=10)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "and over HTTP"))[0] == 200
        assert (await server.login("alice", "wrong"))[0] == 401
        samples = await scrape_until(server, lambda s: sent_by(s, "smsc"))
    finally:
        await smsc.stop()
    assert value(samples, "didchat_smpp_bound", connector="smsc") == 1
    assert value(samples, "didchat_smpp_window", connector="smsc") == 50
    assert value(samples, "didchat_smpp_deliver_sm_resp_total", connector="smsc", status="ESME_ROK") == 1
    assert value(samples, "didchat_smpp_submit_sm_resp_total", connector="smsc", status="ESME_RTHROTTLED") == 1
    assert value(samples, "didchat_smpp_submit_sm_resp_total", connector="smsc", status="ESME_ROK") == 1
    assert value(samples, "didchat_smpp_throttled_total", connector="smsc") == 1
    assert value(samples, "didchat_inbound_messages_total", connector="smsc", outcome="stored") == 1

    dashboard = (Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "didchat.json").read_text()
    wanted = set(re.findall(r"didchat_[a-z_]+", dashboard)) - {"didchat_"}
    exported = {name for name, _ in samples}
    assert wanted and wanted <= exported, wanted - exported  # every panel reads a metric didchat exports


async def test_metrics_count_the_commit_batches_and_the_units_they_held(didchat_server):
    before = await scrape(didchat_server)
    answers = await asyncio.gather(*(didchat_server.simulate_sms(CUSTOMER, ALICE, f"burst {i}", message_id=f"SMb{i}")
                                     for i in range(20)))
    assert [a[0] for a in answers] == [200] * 20
    after = await scrape(didchat_server)
    batches = value(after, "didchat_store_batches_total") - value(before, "didchat_store_batches_total")
    units = value(after, "didchat_store_batch_units_total") - value(before, "didchat_store_batch_units_total")
    assert units >= 20  # each stored SMS is a unit of some batch (other writes may share them)
    assert 1 <= batches <= units
