"""What the client needs beside `search` (both databases, a real server and Socket.IO clients): the `transcript`
call opens a search result `sync` does not list (a closed conversation on the agent's number that a colleague
had), every message in order, as `sync` lists it; anyone else's is refused as one that does not exist. And each
number in `sync`'s `numbers` says whether a message from it may carry attachments (`mms`)."""
from __future__ import annotations

from chat.domain.conversations import contact_id, insert_message, open_conversation
from chat.store import utcnow
from chat.store.tables import conversations
from tests.conftest import ALICE, BOB, CUSTOMER, SMPP_NUMBER, free_port, smpp_connector


async def closed_on_alices_number_with_bob(server) -> int:
    """A conversation on Alice's number that Bob had and closed: Alice's `sync` does not list it."""
    alice_id = server.services.directory.by_name["alice"].id
    bob_id = server.services.directory.by_name["bob"].id

    async def unit(conn):
        conv = await open_conversation(conn, await contact_id(conn, CUSTOMER), ALICE, alice_id, bob_id)
        for direction, text in (("in", "Where is my parcel?"), ("out", "On its way"), ("note", "Sent tracking")):
            await insert_message(conn, conv.id, direction=direction, text=text,
                                 status={"in": "received", "out": "delivered", "note": "note"}[direction],
                                 sender=CUSTOMER if direction == "in" else ALICE,
                                 recipient=ALICE if direction == "in" else CUSTOMER, connector="tw")
        await conn.execute(conversations.update().where(conversations.c.id == conv.id)
                           .values(state="closed", closed_at=utcnow()))
        return conv.id
    return await server.services.commit.run(unit)


async def test_transcript_opens_a_conversation_sync_does_not_list(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    cid = await closed_on_alices_number_with_bob(server)
    assert (await alice.call("sync"))["conversations"] == []
    [found] = (await alice.call("search", {"state": "closed"}))["conversations"]
    assert found["id"] == cid

    answer = await alice.call("transcript", {"conversation_id": cid})
    assert answer["ok"], answer
    conv = answer["conversation"]
    assert (conv["id"], conv["state"], conv["contact"]["number"], conv["opted_out"]) == (cid, "closed", CUSTOMER, False)
    assert conv["unread"] == 1  # nobody read the customer's message
    assert [(m["seq"], m["direction"], m["text"]) for m in answer["messages"]] == [
        (1, "in", "Where is my parcel?"), (2, "out", "On its way"), (3, "note", "Sent tracking")]


async def test_transcript_of_a_conversation_the_agent_may_not_see_is_as_one_that_does_not_exist(make_server):
    server = await make_server()
    cid = await closed_on_alices_number_with_bob(server)
    bob = await server.connect("bob")  # Bob had it: he may read it still
    assert (await bob.call("transcript", {"conversation_id": cid}))["ok"]
    bob_id = server.services.directory.by_name["bob"].id

    async def bobs_own(conn):
        return (await open_conversation(conn, await contact_id(conn, "+12125550177"), BOB, bob_id, bob_id)).id
    other = await server.services.commit.run(bobs_own)
    alice = await server.connect("alice")
    for missing in (other, other + 1000):
        answer = await alice.call("transcript", {"conversation_id": missing})
        assert answer == {"ok": False, "error": f"no conversation {missing}", "field": "conversation_id"}
    for bad in ({}, {"conversation_id": "1"}, {"conversation_id": cid, "seq": 1}):
        answer = await alice.call("transcript", bad)
        assert answer["ok"] is False and answer["field"] in ("conversation_id", "seq"), answer


async def test_numbers_say_which_send_attachments(make_server):
    server = await make_server(connectors=smpp_connector(free_port()))
    alice = await server.connect("alice")
    numbers = {n["number"]: n["mms"] for n in (await alice.call("sync"))["numbers"]}
    assert numbers[ALICE] is True and numbers[SMPP_NUMBER] is False  # Twilio sends MMS; an SMPP bind does not
