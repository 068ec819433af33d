"""The supervisor's board (both databases): agents with presence and load, queues and their waits, the
conversations with filters and those nobody can take; assign, take over and monitor; agents never see it."""
from __future__ import annotations

from tests.chat.test_routes import routed  # noqa: F401 - the fixture
from tests.conftest import ALICE, CUSTOMER, MAIN, until

BOB_LINE = "{name: bob, display_name: Bob,"


def bob_supervises(text: str) -> str:
    return text.replace(BOB_LINE, "{name: bob, display_name: Bob, role: supervisor,")


async def test_a_supervisor_sees_the_board_and_takes_over_a_conversation(routed):  # noqa: F811
    server = await routed(bob_supervises)
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "I want to complain"))[0] == 200
    [msg] = await alice.wait_messages(1)
    cid = msg["conversation_id"]
    assert (await server.simulate_sms("+12125550177", MAIN, "nobody here?"))[0] == 200  # the shared number: alice may take it

    seen = await bob.call("board", {})
    assert seen["ok"], seen
    by_name = {a["name"]: a for a in seen["agents"]}
    assert by_name["alice"]["presence"] == "ready" and by_name["alice"]["open"] >= 1
    assert by_name["ada"]["presence"] == "offline"
    mine = [c for c in seen["conversations"] if c["id"] == cid]
    assert mine and mine[0]["assigned"] == "alice" and mine[0]["stuck"] is False
    only = await bob.call("board", {"user": "alice", "state": "open"})
    assert {c["assigned"] for c in only["conversations"]} == {"alice"}

    watched = await bob.call("monitor", {"conversation_id": cid})
    assert [m["text"] for m in watched["messages"]] == ["I want to complain"]
    assert server.twilio_api.requests == []  # monitoring sends nothing

    taken = await bob.call("take_over", {"conversation_id": cid})
    assert taken["ok"] and taken["to"] == "Bob" and taken["waiting"] is False
    await until(lambda: alice.pushed("unassigned"), what="alice told")
    assert alice.pushed("unassigned")[-1]["reason"] == "supervisor"
    await until(lambda: any(m["direction"] == "note" and "by Bob" in m["text"] for m in bob.messages))
    assert (await bob.call("send", {"conversation_id": cid, "text": "Bob, the supervisor, here", "client_id": "s-1"}))["ok"]

    back = await bob.call("assign", {"conversation_id": cid, "to": {"user": "alice"}})
    assert back["ok"] and back["to"] == "Alice"
    await until(lambda: any(c["id"] == cid for c in alice.pushed("conversation")[1:]), what="alice has it again")


async def test_conversations_nobody_can_take_are_flagged(routed):  # noqa: F811
    server = await routed(bob_supervises)
    bob = await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "hello?"))[0] == 200  # alice is offline: it waits for her
    [conv] = (await bob.call("board", {"stuck": True}))["conversations"]
    assert conv["state"] == "waiting" and conv["owner"] == "alice" and conv["stuck"] is True
    queues = (await bob.call("board", {}))["queues"]
    assert queues and queues[0]["waiting"] == 1 and queues[0]["oldest_seconds"] >= 0


async def test_agents_never_see_the_board(didchat_server):
    alice = await didchat_server.connect("alice")
    for event, payload in (("board", {}), ("monitor", {"conversation_id": 1}), ("take_over", {"conversation_id": 1}),
                           ("assign", {"conversation_id": 1, "to": {"user": "bob"}})):
        answer = await alice.call(event, payload)
        assert answer["ok"] is False and "supervisors" in answer["error"], (event, answer)


def copies(client, cid: int) -> list[tuple[str, str]]:
    """The monitored pushes a supervisor got: (event, text) of each message of conversation `cid`."""
    out = []
    for push in client.pushed("monitored"):
        items = push["payload"] if isinstance(push["payload"], list) else [push["payload"]]
        out += [(push["event"], m.get("text", "")) for m in items if m.get("conversation_id") == cid]
    return out


async def test_monitoring_is_live_until_the_supervisor_stops(routed):  # noqa: F811
    server = await routed(bob_supervises)
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "first"))[0] == 200
    [msg] = await alice.wait_messages(1)
    cid = msg["conversation_id"]
    assert (await bob.call("monitor", {"conversation_id": cid}))["ok"]

    assert (await server.simulate_sms(CUSTOMER, ALICE, "second"))[0] == 200
    await until(lambda: ("message", "second") in copies(bob, cid), what="the customer's next SMS, live")
    assert (await alice.call("send", {"conversation_id": cid, "text": "on it", "client_id": "m-1"}))["ok"]
    await until(lambda: ("message", "on it") in copies(bob, cid), what="the agent's reply, live")
    assert not bob.messages and not alice.pushed("monitored")  # a copy, not bob's conversation; alice gets none

    assert (await bob.call("unmonitor", {}))["ok"]
    assert (await server.simulate_sms(CUSTOMER, ALICE, "third"))[0] == 200
    await until(lambda: any(m["text"] == "third" for m in alice.messages))
    assert ("message", "third") not in copies(bob, cid)
