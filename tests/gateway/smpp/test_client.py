"""SmppClient against our TestSmsc on 127.0.0.1: binds, keep-alive, window, rate, throttling, faults."""
import asyncio
import struct

import pytest
from structlog.testing import capture_logs

from gateway.smpp import SmppClient, SmppError, SmppSettings
from tests.fakes.smsc import TestSmsc
from tests.gateway.smpp.conftest import CUSTOMER, OURS, SYSTEM_ID, Inbox, fast_settings, part, until


async def test_binds_as_transceiver(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    assert client.is_bound
    assert [s.bind for s in smsc.sessions] == ["transceiver"]
    assert smsc.sessions[0].system_id == SYSTEM_ID


async def test_transmitter_receiver_opens_two_binds_and_uses_each_for_its_direction(smsc, make_client, inbox):
    client = await make_client(fast_settings(smsc.port, bind="transmitter_receiver"))
    await smsc.wait_for_sessions(2)
    assert sorted(s.bind for s in smsc.sessions) == ["receiver", "transmitter"]
    assert await client.submit(part("out")) == smsc.accepted[0].message_id
    assert smsc.accepted[0].system_id == SYSTEM_ID
    assert await smsc.deliver(CUSTOMER, OURS, b"in") == 0
    assert inbox.received[0].short_message == b"in"


async def test_wrong_password_is_reported_by_name_and_retried(smsc, make_client):
    with capture_logs() as logs:
        client = await make_client(fast_settings(smsc.port, password="wrong"), bound=False)
        await until(lambda: len([e for e in logs if e["event"] == "smpp.bind_failed"]) >= 2)
    assert not client.is_bound and client.last_error == "ESME_RINVPASWD"
    failures = [e for e in logs if e["event"] == "smpp.bind_failed"]
    assert failures and failures[0]["status"] == "ESME_RINVPASWD" and failures[0]["connector"] == "smsc1"


async def test_bind_refusal_ends_when_the_smsc_accepts_again(smsc, make_client):
    smsc.reject_bind(0x0D)  # ESME_RBINDFAIL
    client = await make_client(fast_settings(smsc.port), bound=False)
    await until(lambda: client.last_error == "ESME_RBINDFAIL")
    smsc.reject_bind(None)
    assert await client.wait_bound(5)


async def test_client_sends_enquire_link(smsc, make_client):
    await make_client(fast_settings(smsc.port, enquire_link_seconds=0.1))
    await smsc.until(lambda: smsc.counters["enquire_link"] >= 2, what="two enquire_link")
    assert smsc.counters["binds"] == 1


async def test_client_answers_enquire_link(smsc, make_client):
    await make_client(fast_settings(smsc.port))
    assert await smsc.enquire_link() == [0]


async def test_unanswered_enquire_link_drops_the_link_and_rebinds(smsc, make_client):
    client = await make_client(fast_settings(smsc.port, enquire_link_seconds=0.1, response_timeout=0.3))
    smsc.ignore_enquire_link(True)
    await smsc.until(lambda: smsc.counters["binds"] >= 2, what="a rebind")
    smsc.ignore_enquire_link(False)
    assert await client.wait_bound(5)
    assert await client.submit(part())


async def test_window_bounds_requests_in_flight(smsc, make_client):
    client = await make_client(fast_settings(smsc.port, window=4))
    smsc.slow_responses(0.2)
    ids = await asyncio.gather(*(client.submit(part(f"m{i}")) for i in range(12)))
    assert len(set(ids)) == 12
    assert smsc.max_in_flight == 4 and smsc.counters["window_exceeded"] == 0


async def test_rate_limit_spaces_submits(smsc, make_client):
    client = await make_client(fast_settings(smsc.port, rate_limit=20))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(client.submit(part(f"m{i}")) for i in range(6)))
    assert loop.time() - started >= 5 / 20 - 0.01


async def test_throttling_pauses_the_bind_and_keeps_order(smsc, make_client):
    client = await make_client(fast_settings(smsc.port, throttle_pause=0.2, submit_retries=5))
    smsc.throttle_for(2)
    texts = [f"m{i}" for i in range(8)]
    ids = await asyncio.gather(*(client.submit(part(t)) for t in texts))
    assert [s.short_message.decode() for s in smsc.accepted] == texts
    assert ids == [s.message_id for s in smsc.accepted]
    throttled = [s for s in smsc.submits if not s.accepted]
    assert throttled and all(s.status == 0x58 for s in throttled)


async def test_throttling_beyond_the_retries_fails_temporarily(smsc, make_client):
    client = await make_client(fast_settings(smsc.port, throttle_pause=0.05, submit_retries=2))
    smsc.throttle_for(30)
    with pytest.raises(SmppError) as caught:
        await client.submit(part())
    assert (caught.value.name, caught.value.temporary) == ("ESME_RTHROTTLED", True)
    assert len(smsc.submits) == 3


async def test_final_error_status_is_raised_with_its_name(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    smsc.answer_submits_with(0x0B)
    with pytest.raises(SmppError) as caught:
        await client.submit(part())
    assert caught.value.status == 0x0B and not caught.value.temporary
    assert "ESME_RINVDSTADR" in str(caught.value)
    assert len(smsc.submits) == 1


async def test_system_error_is_retried(smsc, make_client):
    client = await make_client(fast_settings(smsc.port, throttle_pause=0.05))
    smsc.answer_submits_with(0x08)
    submitting = asyncio.ensure_future(client.submit(part()))
    await smsc.until(lambda: len(smsc.submits) >= 2, what="a resent submit_sm")
    smsc.answer_submits_with(None)
    assert await submitting == smsc.accepted[0].message_id


async def test_response_timeout_is_a_temporary_error(smsc, make_client):
    client = await make_client(fast_settings(smsc.port, response_timeout=0.2))
    smsc.slow_responses(1.0)
    with pytest.raises(SmppError) as caught:
        await client.submit(part())
    assert (caught.value.name, caught.value.temporary) == ("TIMEOUT", True)


async def test_submit_gives_up_when_never_bound(closed_port):
    client = SmppClient("nowhere", fast_settings(closed_port, submit_wait=0.2), Inbox())
    running = asyncio.ensure_future(client.run())
    with pytest.raises(SmppError) as caught:
        await client.submit(part())
    assert (caught.value.name, caught.value.temporary) == ("NOT_BOUND", True)
    await client.stop()
    await asyncio.wait_for(running, 5)


async def test_invalid_part_is_a_final_error(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    with pytest.raises(SmppError) as caught:
        await client.submit(part(short_message=b"x" * 255))
    assert caught.value.name == "INVALID_PDU" and not caught.value.temporary
    assert "short_message" in str(caught.value)


async def test_dropped_link_rebinds_and_submit_succeeds(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    smsc.refuse_connections_for(0.3)
    smsc.drop_links()
    await until(lambda: not client.is_bound)
    message_id = await client.submit(part("after the drop"))  # waits for the rebind
    assert smsc.accepted[-1].message_id == message_id
    assert smsc.counters["binds"] == 2 and smsc.counters["refused"] >= 1


async def test_submits_in_flight_when_the_link_drops_fail_temporarily(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    smsc.slow_responses(5)
    submitting = asyncio.ensure_future(client.submit(part()))
    await smsc.until(lambda: smsc.sessions and smsc.sessions[0].in_flight == 1, what="a submit in flight")
    smsc.drop_links()
    with pytest.raises(SmppError) as caught:
        await submitting
    assert (caught.value.name, caught.value.temporary) == ("LINK_LOST", True)


async def test_garbage_length_drops_the_link_and_rebinds(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    smsc.send_garbage(b"\x00\x00\x00\x05garbage")
    await smsc.until(lambda: smsc.counters["binds"] >= 2, what="a rebind")
    assert smsc.counters["generic_nack"] == 1
    assert await client.submit(part())


async def test_unknown_command_gets_generic_nack_and_the_link_stays(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    smsc.send_garbage(struct.pack(">LLLL", 16, 0x00000777, 0, 99))
    await smsc.until(lambda: smsc.counters["generic_nack"] == 1, what="a generic_nack")
    assert await client.submit(part()) and smsc.counters["binds"] == 1


async def test_response_with_unknown_sequence_is_ignored(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    with capture_logs() as logs:
        smsc.send_garbage(struct.pack(">LLLL", 17, 0x80000004, 0, 12345) + b"\0")
        assert await client.submit(part())
    assert any(e["event"] == "smpp.unknown_response" and e["sequence"] == 12345 for e in logs)


async def test_smsc_unbind_is_answered_and_the_client_rebinds(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    assert await smsc.unbind_all() == [0]
    await smsc.until(lambda: smsc.counters["binds"] >= 2, what="a rebind")
    assert await client.wait_bound(5)


async def test_stop_unbinds_cleanly(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    await client.stop()
    assert smsc.counters["unbind"] == 1
    await smsc.until(lambda: not smsc.sessions, what="the session to end")
    with pytest.raises(SmppError, match="STOPPING"):
        await client.submit(part())


async def test_stop_lets_submits_in_flight_settle(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    smsc.slow_responses(0.2)
    submitting = asyncio.ensure_future(client.submit(part()))
    await smsc.until(lambda: smsc.sessions[0].in_flight == 1, what="a submit in flight")
    await client.stop()
    assert await submitting == smsc.accepted[0].message_id
    assert smsc.counters["unbind"] == 1


@pytest.mark.parametrize("status", [0, 0x64])
async def test_callback_status_is_the_deliver_sm_resp_status(smsc, make_client, inbox, status):
    inbox.status = status
    await make_client(fast_settings(smsc.port))
    assert await smsc.deliver(CUSTOMER, OURS, b"hi", data_coding=0, tlvs={"sar_msg_ref_num": 7}) == status
    incoming = inbox.received[0]
    assert (incoming.command, incoming.source_addr, incoming.dest_addr) == ("deliver_sm", CUSTOMER, OURS)
    assert (incoming.source_ton, incoming.source_npi, incoming.short_message) == (1, 1, b"hi")
    assert incoming.tlvs == {"sar_msg_ref_num": 7}


async def test_callback_that_raises_answers_temporary_app_error(smsc, make_client, inbox):
    inbox.raises = RuntimeError("database down")
    await make_client(fast_settings(smsc.port))
    assert await smsc.deliver(CUSTOMER, OURS, b"hi") == 0x64


async def test_response_waits_for_the_callback_and_deliveries_run_concurrently(smsc, make_client, inbox):
    inbox.gate = asyncio.Event()
    await make_client(fast_settings(smsc.port))
    delivering = asyncio.ensure_future(smsc.deliver_many(
        [{"source": CUSTOMER, "dest": OURS, "short_message": f"m{i}".encode()} for i in range(3)]))
    await inbox.wait(3)  # all three callbacks started while none has answered
    assert not delivering.done() and smsc.counters["deliver_sm_resp"] == 0
    inbox.gate.set()
    assert await delivering == [0, 0, 0]
    assert len(smsc.delivered) == 3 and smsc.unacked == []


async def test_unacked_deliveries_can_be_resent(smsc, make_client, inbox):
    inbox.status = 0x64
    await make_client(fast_settings(smsc.port))
    statuses = await smsc.deliver_many([{"source": CUSTOMER, "dest": OURS, "short_message": b"x"}] * 2)
    assert statuses == [0x64, 0x64] and len(smsc.unacked) == 2
    inbox.status = 0
    assert await smsc.resend_unacked() == [0, 0] and len(smsc.delivered) == 2


@pytest.mark.parametrize("id_format, base", [("hex", "dec"), ("dec", "hex")])
async def test_delivery_receipt_reaches_the_callback(make_client, inbox, id_format, base):
    smsc = await TestSmsc(SYSTEM_ID, "secret", id_format=id_format).start()
    try:
        client = await make_client(fast_settings(smsc.port))
        message_id = await client.submit(part("receipt please"))
        assert await smsc.send_receipt(message_id, base=base) == 0
        receipt = inbox.received[0]
        assert receipt.esm_class == 0x04 and receipt.source_addr == CUSTOMER
        assert receipt.tlvs["receipted_message_id"] == message_id and receipt.tlvs["message_state"] == 2
        number = int(message_id, 16 if id_format == "hex" else 10)
        text_id = str(number) if base == "dec" else f"{number:x}"
        assert receipt.short_message.startswith(f"id:{text_id} sub:001 dlvrd:001 submit date:".encode())
        assert b"stat:DELIVRD err:000 text:receipt please" in receipt.short_message
    finally:
        await smsc.stop()


async def test_clients_run_side_by_side(make_client):
    first, second = [await TestSmsc(SYSTEM_ID, "secret").start() for _ in range(2)]
    try:
        inboxes = [Inbox(), Inbox()]
        a = await make_client(fast_settings(first.port), name="a", on_incoming=inboxes[0])
        b = await make_client(fast_settings(second.port), name="b", on_incoming=inboxes[1])
        await asyncio.gather(a.submit(part("to first")), b.submit(part("to second")))
        assert [s.short_message for s in first.accepted] == [b"to first"]
        assert [s.short_message for s in second.accepted] == [b"to second"]
        await second.deliver(CUSTOMER, OURS, b"for b")
        assert inboxes[1].received[0].short_message == b"for b" and inboxes[0].received == []
    finally:
        await first.stop()
        await second.stop()


def test_settings_refuse_what_an_smsc_would_refuse():
    with pytest.raises(ValueError, match="password"):
        SmppSettings(host="h", port=1, system_id="x", password="longer-than-eight")
    with pytest.raises(ValueError, match="window"):
        SmppSettings(host="h", port=1, system_id="x", password="p", window=0)
    with pytest.raises(ValueError, match="bind"):
        SmppSettings(host="h", port=1, system_id="x", password="p", bind="receiver")
