"""Pacing: a long code's replies leave at its carrier's pace, in order; a provider's 429 Retry-After is honoured;
a provider's opt-out refusal records the opt-out."""
from __future__ import annotations

import uuid

from tests.conftest import ALICE, CUSTOMER, Server, config_text, reserved_port, until

UNPACED = "pace: {long_code: 0, toll_free: 0, short_code: 0}"


async def paced_server(tmp_path, twilio_api, database_url, pace: str) -> Server:
    reserved = reserved_port()
    path = tmp_path / "didchat.yaml"
    path.write_text(config_text(reserved.getsockname()[1], database_url, twilio_api).replace(UNPACED, f"pace: {pace}"))
    return await Server(path, twilio_api, reserved).start()


def reply(conversation_id: int, text: str) -> dict:
    return {"conversation_id": conversation_id, "text": text, "client_id": str(uuid.uuid4())}


async def test_thirty_replies_from_a_long_code_leave_one_a_second_in_order(tmp_path, twilio_api, database_url):
    server = await paced_server(tmp_path, twilio_api, database_url, "{long_code: 1}")
    try:
        alice = await server.connect("alice")
        await server.simulate_sms(CUSTOMER, ALICE, "hello")
        [msg] = await alice.wait_messages(1)
        assert (await alice.call("send", reply(msg["conversation_id"], "first")))["ok"]
        await twilio_api.wait_for_requests(1, timeout=10)  # the connection to the provider is open: answers are even
        for n in range(30):
            assert (await alice.call("send", reply(msg["conversation_id"], f"reply {n}")))["ok"]
        requests = await twilio_api.wait_for_requests(31, timeout=45)
        assert [r["Body"] for r in requests[1:]] == [f"reply {n}" for n in range(30)]
        arrivals = twilio_api.arrivals
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
        # One a second: none ahead of the schedule the second one starts. Arrivals are when the fake read each
        # request, so one that came late (a loaded machine: 1.20 s) leaves a short gap before the next on time
        # (0.78 s) without any send starting early; unpaced, the 30 would come within a fraction of a second.
        ahead = [k for k in range(1, 31) if arrivals[k] - arrivals[1] < (k - 1) - 0.15]
        assert not ahead and min(gaps[1:]) >= 0.5, gaps
    finally:
        await server.stop()


async def test_a_long_reply_takes_the_time_of_its_segments(tmp_path, twilio_api, database_url):
    server = await paced_server(tmp_path, twilio_api, database_url, "{long_code: 4}")
    try:
        alice = await server.connect("alice")
        await server.simulate_sms(CUSTOMER, ALICE, "hello")
        [msg] = await alice.wait_messages(1)
        assert (await alice.call("send", reply(msg["conversation_id"], "x" * 459)))["ok"]  # 3 segments: 0.75 s
        assert (await alice.call("send", reply(msg["conversation_id"], "short")))["ok"]
        await twilio_api.wait_for_requests(2, timeout=10)
        assert twilio_api.arrivals[1] - twilio_api.arrivals[0] >= 0.6  # 0.75 s, less the answer times' spread
    finally:
        await server.stop()


async def test_a_429_retry_after_is_waited_for(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, "hello")
    [msg] = await alice.wait_messages(1)
    server.twilio_api.fail_next(1, status=429, retry_after=1)
    assert (await alice.call("send", reply(msg["conversation_id"], "after the pause")))["ok"]
    await server.twilio_api.wait_for_requests(2, timeout=10)
    assert server.twilio_api.arrivals[1] - server.twilio_api.arrivals[0] >= 0.95  # not the 0.05 s backoff


async def test_a_provider_opt_out_refusal_records_the_opt_out(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, "hello")
    [msg] = await alice.wait_messages(1)
    server.twilio_api.reject_next()  # 21610: the customer replied STOP to Twilio, which we never saw
    assert (await alice.call("send", reply(msg["conversation_id"], "are you there?")))["ok"]
    await until(lambda: any(s["status"] == "failed" for s in alice.pushed("status")), 10)
    [failed] = [s for s in alice.pushed("status") if s["status"] == "failed"]
    assert "21610" in failed["error"] and "unsubscribed" in failed["error"]
    answer = await alice.call("send", reply(msg["conversation_id"], "and now?"))
    refused = not answer["ok"] or answer["message"]["status"] == "failed"
    if answer["ok"] and not refused:  # queued: the outbox refuses it, the provider never sees it
        await until(lambda: len([s for s in alice.pushed("status") if s["status"] == "failed"]) == 2, 10)
    assert len(server.twilio_api.requests) == 1
