"""SMPP end to end: deliver_sm from a test SMSC to the agent's socket, replies as submit_sm, receipts."""
from __future__ import annotations

from collections import defaultdict

import pytest
import sqlalchemy as sa

from chat.store.tables import messages
from gateway.text import gsm7_decode
from tests.conftest import SMPP_NUMBER, smpp_connector, until
from tests.fakes.smsc import TestSmsc

DEST = SMPP_NUMBER.lstrip("+")
CUSTOMER = "12125550199"


@pytest.fixture
async def smsc():
    server = await TestSmsc("didchat", "secret", window=50, id_format="hex").start()
    yield server
    await server.stop()


@pytest.fixture
def start_server(make_server, smsc):
    async def start(**options):
        server = await make_server(connectors=smpp_connector(smsc.port, submit_id_base="hex", receipt_id_base="hex", **options))
        await smsc.wait_for_sessions(1, timeout=10)
        return server
    return start


async def stored_texts(server) -> list[str]:
    async with server.services.db.read() as conn:
        return list((await conn.scalars(sa.select(messages.c.text).where(messages.c.direction == "in"))).all())


async def opened_conversation(server, smsc):
    alice = await server.connect("alice")
    assert await smsc.deliver(CUSTOMER, DEST, b"Hi Alice") == 0
    [msg] = await alice.wait_messages(1)
    return alice, msg["conversation_id"]


async def test_a_thousand_deliver_sm_at_window_50_reach_the_agent_in_order(start_server, smsc):
    server = await start_server()
    alice = await server.connect("alice")
    senders = [f"1212555{1000 + k:04d}" for k in range(20)]
    batch = [{"source": senders[i % 20], "dest": DEST, "short_message": f"m {i}".encode()} for i in range(1000)]
    statuses = await smsc.deliver_many(batch, window=50)
    assert statuses == [0] * 1000
    await alice.wait_messages(1000, timeout=60)
    assert len(await stored_texts(server)) == 1000
    per_sender = defaultdict(list)
    for msg in alice.messages:
        per_sender[msg["from"]].append(int(msg["text"].split()[1]))
    assert len(per_sender) == 20 and all(seen == sorted(seen) for seen in per_sender.values())
    assert sum(len(seen) for seen in per_sender.values()) == 1000


def ucs2_parts_splitting_a_surrogate_pair(text: str, ref: int) -> list[bytes]:
    """Three UDH parts as a careless foreign sender makes them: 134 octets each, emoji cut in two."""
    data = text.encode("utf-16-be")
    chunks = [data[i:i + 134] for i in range(0, len(data), 134)]
    assert len(chunks) == 3
    return [bytes([5, 0, 3, ref, 3, n + 1]) + chunk for n, chunk in enumerate(chunks)]


async def test_three_part_ucs2_with_emoji_shuffled_across_a_restart_is_one_exact_message(make_server, start_server, smsc):
    text = "Привет Алиса! " * 4 + "x" * 10 + "🎉" + " Спасибо за помощь, до встречи. " * 2 + "Ура"
    assert text.encode("utf-16-be")[132:136] == "🎉".encode("utf-16-be")  # the emoji straddles parts 1 and 2
    parts = ucs2_parts_splitting_a_surrogate_pair(text, ref=77)
    order = [2, 0, 1]
    server = await start_server()
    for n in order[:2]:
        assert await smsc.deliver(CUSTOMER, DEST, parts[n], esm_class=0x40, data_coding=8) == 0
    await server.stop()  # a restart between the parts
    again = await start_server()
    alice = await again.connect("alice")
    assert await smsc.deliver(CUSTOMER, DEST, parts[order[2]], esm_class=0x40, data_coding=8) == 0
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == text and msg["incomplete"] is False
    assert await stored_texts(again) == [text]


async def test_a_resent_part_and_a_resent_message_are_stored_once(start_server, smsc):
    server = await start_server()
    assert await smsc.deliver(CUSTOMER, DEST, b"only once") == 0
    assert await smsc.deliver(CUSTOMER, DEST, b"only once") == 0  # the SMSC never saw our ROK
    part = bytes([5, 0, 3, 9, 2, 1]) + b"first half "
    assert await smsc.deliver(CUSTOMER, DEST, part, esm_class=0x40) == 0
    assert await smsc.deliver(CUSTOMER, DEST, part, esm_class=0x40) == 0
    assert await smsc.deliver(CUSTOMER, DEST, bytes([5, 0, 3, 9, 2, 2]) + b"second half", esm_class=0x40) == 0
    assert sorted(await stored_texts(server)) == ["first half second half", "only once"]


async def test_an_incomplete_long_message_is_delivered_after_the_timeout_marked(start_server, smsc):
    server = await start_server(concat_timeout=1)
    alice = await server.connect("alice")
    assert await smsc.deliver(CUSTOMER, DEST, bytes([5, 0, 3, 4, 3, 1]) + b"part one, ", esm_class=0x40) == 0
    assert await smsc.deliver(CUSTOMER, DEST, bytes([5, 0, 3, 4, 3, 3]) + b"part three", esm_class=0x40) == 0
    [msg] = await alice.wait_messages(1, timeout=10)
    assert msg["incomplete"] is True and "part one" in msg["text"] and "part three" in msg["text"]


async def test_a_400_character_gsm_reply_with_euro_goes_as_3_parts_and_receipts_make_it_delivered(start_server, smsc):
    server = await start_server()
    alice, conv = await opened_conversation(server, smsc)
    text = ("Your total is 10€ [incl. tax]. " * 13)[:400]
    answer = await alice.call("send", {"conversation_id": conv, "text": text, "client_id": "r1"})
    assert answer["ok"] and answer["message"]["from"] == SMPP_NUMBER and answer["message"]["segments"] == 3
    submits = await smsc.wait_for_submits(3)
    assert [s.fields["esm_class"] & 0x40 for s in submits] == [0x40] * 3
    assert all(s.fields["data_coding"] == 0 for s in submits)
    bodies = [s.short_message[s.short_message[0] + 1:] for s in submits]
    assert all(not body.endswith(b"\x1b") for body in bodies)  # no escape pair cut in two
    assert "".join(gsm7_decode(b) for b in bodies) == text
    assert submits[0].destination_addr == CUSTOMER and submits[0].source_addr == DEST
    for submit in submits[:2]:
        assert await smsc.send_receipt(submit.message_id) == 0
    await until(lambda: alice.pushed("status"), timeout=5)
    assert all(s["status"] != "delivered" for s in alice.pushed("status"))  # not before every part is
    assert await smsc.send_receipt(submits[2].message_id) == 0
    await until(lambda: any(s["status"] == "delivered" for s in alice.pushed("status")))


async def test_a_failed_part_fails_the_reply_with_the_receipts_words(start_server, smsc):
    server = await start_server()
    alice, conv = await opened_conversation(server, smsc)
    await alice.call("send", {"conversation_id": conv, "text": "short", "client_id": "r2"})
    [submit] = await smsc.wait_for_submits(1)
    assert await smsc.send_receipt(submit.message_id, stat="UNDELIV", err="001") == 0
    await until(lambda: any(s["status"] == "undelivered" for s in alice.pushed("status")))
    [status] = [s for s in alice.pushed("status") if s["status"] == "undelivered"]
    assert "UNDELIV" in status["error"] and "001" in status["error"]


async def test_throttling_for_2s_loses_and_reorders_nothing(start_server, smsc):
    server = await start_server()
    alice, conv = await opened_conversation(server, smsc)
    smsc.throttle_for(2)
    for i in range(6):
        assert (await alice.call("send", {"conversation_id": conv, "text": f"reply {i}", "client_id": f"t{i}"}))["ok"]
    await until(lambda: len(smsc.accepted) >= 6, timeout=15)
    assert [s.short_message.decode() for s in smsc.accepted] == [f"reply {i}" for i in range(6)]
    assert any(not s.accepted for s in smsc.submits)  # it really was throttled


async def test_the_outbox_drains_after_the_link_was_down_for_5s(start_server, smsc):
    server = await start_server()
    alice, conv = await opened_conversation(server, smsc)
    smsc.refuse_connections_for(5)
    smsc.drop_links()
    for i in range(3):
        assert (await alice.call("send", {"conversation_id": conv, "text": f"while down {i}", "client_id": f"d{i}"}))["ok"]
    await until(lambda: len(smsc.accepted) >= 3, timeout=20)
    assert [s.short_message.decode() for s in smsc.accepted] == [f"while down {i}" for i in range(3)]


async def test_a_submit_error_fails_the_reply_with_the_status_name(start_server, smsc):
    server = await start_server()
    alice, conv = await opened_conversation(server, smsc)
    smsc.answer_submits_with(0x0B)
    answer = await alice.call("send", {"conversation_id": conv, "text": "to nowhere", "client_id": "e1"})
    await until(lambda: any(s["status"] == "failed" for s in alice.pushed("status")))
    [failed] = [s for s in alice.pushed("status") if s["status"] == "failed"]
    assert failed["id"] == answer["message"]["id"] and "ESME_RINVDSTADR" in failed["error"]


async def test_deliver_sm_to_a_number_not_ours_is_refused_permanently(start_server, smsc):
    server = await start_server()
    assert await smsc.deliver(CUSTOMER, "12125550177", b"who?") == 0x0B
    assert await stored_texts(server) == []
