"""Against our test SMSC: deliver_sm written in the same TCP write as bind_resp (issue 8, point 14),
and throttling that ends in bounded time (point 15)."""
from __future__ import annotations

import asyncio

from gateway.smpp.pdu import ESME_ROK
from tests.gateway.smpp.conftest import CUSTOMER, OURS, fast_settings, part, until


def burst(tag: str, n: int) -> list[dict]:
    return [{"source": CUSTOMER, "dest": OURS, "short_message": f"{tag} {k}".encode()} for k in range(n)]


async def test_deliver_sm_right_behind_bind_resp_is_taken(smsc, make_client, inbox):
    smsc.deliver_on_bind(burst("first", 8))
    await make_client(fast_settings(smsc.port))
    await smsc.until(lambda: smsc.bursts, 5, "burst answered")
    assert smsc.bursts == [[ESME_ROK] * 8]
    assert [m.short_message for m in await inbox.wait(8)] == [f"first {k}".encode() for k in range(8)]


async def test_every_rebind_takes_its_burst(smsc, make_client, inbox):
    client = await make_client(fast_settings(smsc.port))
    for round_ in range(4):
        smsc.deliver_on_bind(burst(f"round {round_}", 5))
        smsc.drop_links()
        await smsc.until(lambda n=round_ + 1: len(smsc.bursts) == n, 5, f"burst {round_}")
    assert smsc.bursts == [[ESME_ROK] * 5] * 4 and not smsc.unacked
    assert len(await inbox.wait(20)) == 20 and client.metrics()["deliver_sm_resp"] == {"ESME_ROK": 20}


async def test_twenty_throttles_in_a_row_take_twenty_capped_pauses(smsc, make_client):
    settings = fast_settings(smsc.port, throttle_pause=0.02, throttle_max_pause=0.05, submit_retries=25)
    client = await make_client(settings)
    smsc.throttle_next(20)
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(client.submit(part("after 20 throttles")), 5)
    took = asyncio.get_running_loop().time() - started
    assert len(smsc.submits) == 21 and took < 20 * 0.05 + 1.0  # uncapped it would be 20 x 0.64 s
    assert client.metrics()["throttled"] == 20
    assert client.metrics()["submit_sm_resp"] == {"ESME_RTHROTTLED": 20, "ESME_ROK": 1}


async def test_metrics_show_the_bind_state_as_it_changes(smsc, make_client):
    client = await make_client(fast_settings(smsc.port))
    assert client.metrics()["state"] == "bound"
    smsc.refuse_connections_for(0.5)
    smsc.drop_links()
    await until(lambda: client.metrics()["state"] != "bound")
    await until(lambda: client.metrics()["state"] == "bound", 5)
