"""deliver_sm written in the same TCP write as bind_resp (issue 8, point 14), through the whole app:
every MO is acknowledged ROK after its commit and reaches the agent, across reconnects."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from chat.agents.ops import LINKS
from chat.store.tables import messages
from tests.conftest import SMPP_NUMBER, smpp_connector
from tests.fakes.smsc import TestSmsc

DEST = SMPP_NUMBER.lstrip("+")
CUSTOMER = "12125550199"
ROUNDS, BURST = 4, 6


@pytest.fixture
async def smsc():
    server = await TestSmsc("didchat", "secret", window=50).start()
    yield server
    await server.stop()


def burst(round_: int) -> list[dict]:
    senders = [f"1212555{2000 + k:04d}" for k in range(3)]
    return [{"source": senders[k % 3], "dest": DEST, "short_message": f"r{round_} m{k}".encode()}
            for k in range(BURST)]


async def stored_texts(server) -> list[str]:
    async with server.services.db.read() as conn:
        return list((await conn.scalars(sa.select(messages.c.text).where(messages.c.direction == "in"))).all())


async def test_bursts_behind_bind_resp_across_reconnects_are_all_stored_and_pushed(make_server, smsc):
    smsc.deliver_on_bind(burst(0))
    server = await make_server(connectors=smpp_connector(smsc.port))
    alice = await server.connect("alice")
    await smsc.until(lambda: len(smsc.bursts) == 1, 10, "first burst answered")
    long_text = "part one of a long one, " + "then part two"
    for round_ in range(1, ROUNDS):
        messages_ = burst(round_)
        if round_ == ROUNDS - 1:  # a long message whose last part comes right after a re-bind
            assert await smsc.deliver(CUSTOMER, DEST, bytes([5, 0, 3, 7, 2, 1]) + long_text[:24].encode(),
                                      esm_class=0x40) == 0
            messages_.append({"source": CUSTOMER, "dest": DEST, "esm_class": 0x40,
                              "short_message": bytes([5, 0, 3, 7, 2, 2]) + long_text[24:].encode()})
        smsc.deliver_on_bind(messages_)
        smsc.drop_links()
        await smsc.until(lambda n=round_ + 1: len(smsc.bursts) == n, 10, f"burst {round_} answered")
    assert all(status == 0 for statuses in smsc.bursts for status in statuses), smsc.bursts
    expected = {f"r{r} m{k}" for r in range(ROUNDS) for k in range(BURST)} | {long_text}
    await alice.wait_messages(len(expected), timeout=15)
    assert {m["text"] for m in alice.messages} == expected
    assert sorted(await stored_texts(server)) == sorted(expected)  # ROK came after the commit: all are there
    [link] = server.app[LINKS]
    figures = link.metrics()
    assert figures["deliver_sm_resp"] == {"ESME_ROK": ROUNDS * BURST + 2}
    assert figures["inbound"] == {"stored": ROUNDS * BURST + 2, "duplicate": 0, "refused": 0, "failed": 0}
    assert figures["state"] == "bound" and figures["window"] == 50 and figures["in_flight"] == 0
    assert set(figures) == {"state", "window", "in_flight", "deliver_sm_resp", "submit_sm_resp", "throttled", "inbound"}


async def test_a_long_messages_last_part_right_behind_bind_resp_after_a_restart(make_server, smsc):
    server = await make_server(connectors=smpp_connector(smsc.port))
    await smsc.wait_for_sessions(1, timeout=10)
    head, tail = "the first half, ", "and the last half"
    assert await smsc.deliver(CUSTOMER, DEST, bytes([5, 0, 3, 8, 2, 1]) + head.encode(), esm_class=0x40) == 0
    await server.stop()
    smsc.deliver_on_bind([{"source": CUSTOMER, "dest": DEST, "esm_class": 0x40,
                           "short_message": bytes([5, 0, 3, 8, 2, 2]) + tail.encode()}])
    again = await make_server(connectors=smpp_connector(smsc.port))
    alice = await again.connect("alice")
    await smsc.until(lambda: smsc.bursts, 10, "the last part answered")
    assert smsc.bursts == [[0]]
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == head + tail and msg["incomplete"] is False
