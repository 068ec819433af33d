"""The `ping` call (chat/agents/link_calls.py): the browser client's heartbeat is answered at once with the
server's time, changes nothing, and names a field it does not take."""
from __future__ import annotations

import time


async def test_ping_answers_with_the_server_time_and_refuses_what_it_does_not_take(didchat_server):
    client = await didchat_server.connect("alice")
    before = time.time()
    started = time.monotonic()
    ack = await client.call("ping")
    assert ack["ok"] is True
    assert before - 1 <= ack["server_time"] <= time.time() + 1
    assert time.monotonic() - started < 1  # what the client waits before it says "Reconnecting…"
    assert await client.call("ping", {"extra": 1}) == {"ok": False, "error": "extra: Extra inputs are not permitted",
                                                        "field": "extra"}
    assert client.pushed("message") == [] and client.pushed("conversation") == []
