"""Pacing across nodes: replies from one long code sent by two nodes leave one a second between them, each
conversation in order (the pace is kept in PostgreSQL, chat.domain.pacing)."""
from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp
import pytest

from tests.cluster.conftest import start_all
from tests.conftest import ALICE, until

UNPACED = "pace: {long_code: 0, toll_free: 0, short_code: 0}"


def customer(i: int) -> str:
    return f"+1212555{3000 + i:04d}"


async def sent_by(node) -> float:
    """How many replies this node handed to the provider (its /metrics)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.url}/metrics") as answer:
            text = await answer.text()
    found = re.search(r'didchat_outbound_messages_total\{connector="tw",outcome="sent"\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


async def test_two_nodes_sending_from_one_long_code_keep_its_pace(make_cluster):
    cluster = await make_cluster(nodes=2, start=False)
    cluster.config_path.write_text(cluster.config_path.read_text().replace(UNPACED, "pace: {long_code: 1}"))
    await start_all(cluster.nodes)
    tabs = [await cluster.nodes[0].connect("alice"), await cluster.nodes[1].connect("alice")]
    conversations = []
    for i in range(4):
        assert (await cluster.simulate_sms(node=i % 2, sender=customer(i), text=f"hello {i}"))[0] in (200, 204)
    await until(lambda: len(tabs[0].messages) >= 4, 10, "four conversations")
    conversations = [m["conversation_id"] for m in tabs[0].messages]
    for n in range(3):  # 12 replies: each tab in turn, each conversation three, in order
        for i, cid in enumerate(conversations):
            answer = await tabs[i % 2].call("send", {"conversation_id": cid, "text": f"reply {n} to {i}",
                                                     "client_id": str(uuid.uuid4())})
            assert answer["ok"], answer
    requests = await cluster.twilio_api.wait_for_requests(12, timeout=30)
    arrivals = cluster.twilio_api.arrivals
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    # One segment a second from ALICE, whichever node sent. The pace holds when each send starts; arrivals also
    # carry each request's time on the wire, so the first may come late by as much as a gap's margin (seen:
    # 10.90 s for 11 gaps on a loaded machine). Unpaced, the 12 would arrive within a fraction of a second.
    assert min(gaps) >= 0.85 and arrivals[-1] - arrivals[0] >= 11 - 0.15, gaps
    assert all(r["From"] == ALICE for r in requests)
    for i in range(4):  # each conversation's replies in the order they were written
        assert [r["Body"] for r in requests if r["Body"].endswith(f"to {i}")] == [f"reply {n} to {i}" for n in range(3)]
    # Each node counts a send once the provider's answer is recorded, a moment after the request arrived here.
    per_node: list[float] = []
    try:
        async with asyncio.timeout(5):
            while sum(per_node := [await sent_by(node) for node in cluster.nodes]) < 12:
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"the nodes counted {per_node} sends 5 s after the provider had all 12")
    assert sum(per_node) == 12 and all(per_node), per_node  # both nodes sent, and the pace held between them
