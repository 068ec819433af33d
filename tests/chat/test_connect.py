"""The connect path: one read of the store (session alive and the chosen presence together), and
what waits for an agent offered once when their first tab arrives on a node, not once per tab
(issue 9, point 6: a write unit per socket was a third of a reconnect storm's server CPU)."""
from __future__ import annotations

from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import pytest
import socketio

from chat.domain.conversations import contact_id, open_conversation
from chat.domain.sessions import end_session, live_presence, open_session
from chat.store import utcnow
from chat.store.tables import sessions
from tests.conftest import ALICE, CUSTOMER, AgentClient, until

OTHER = "+14155550177"  # a second customer


def count_offers(server) -> list[int]:
    """The users whose waiting conversations the router was asked to assign, in order."""
    router, offers = server.services.router, []
    assign = router.assign_waiting

    async def counted(user_id: int) -> int:
        offers.append(user_id)
        return await assign(user_id)

    router.assign_waiting = counted
    return offers


async def wait_for(server, owner: str, customer: str = CUSTOMER) -> int:
    """A conversation with `customer` on Alice's number, waiting for `owner` (who is away)."""
    svc = server.services

    async def unit(conn):
        contact = await contact_id(conn, customer)
        return (await open_conversation(conn, contact, ALICE, svc.directory.by_name[owner].id, None)).id
    return await svc.commit.run(unit)


async def tab(server, token: str) -> AgentClient:
    client = AgentClient(server.url, token)
    await client.connect()
    server.clients.append(client)
    return client


async def test_what_waits_is_offered_on_the_first_tab_once_not_once_per_tab(didchat_server):
    offers = count_offers(didchat_server)
    alice_id = didchat_server.services.directory.by_name["alice"].id
    cid = await wait_for(didchat_server, "alice")
    _, body = await didchat_server.login("alice")
    first = await tab(didchat_server, body["token"])
    await until(lambda: [c["id"] for c in first.pushed("conversation")] == [cid], what="the waiting conversation pushed")
    others = [await tab(didchat_server, body["token"]) for _ in range(3)]
    assert offers == [alice_id]  # three more tabs: no more offers
    assert (await others[-1].call("sync"))["conversations"][0]["state"] == "open"
    for client in [first, *others]:
        await client.disconnect()
    await until(lambda: didchat_server.services.presence.state(alice_id) == "offline", what="alice offline")
    later = await wait_for(didchat_server, "alice", OTHER)
    back = await tab(didchat_server, body["token"])  # her first tab again: what waited since is hers
    await until(lambda: [c["id"] for c in back.pushed("conversation")] == [later], what="the later conversation pushed")
    assert offers == [alice_id, alice_id]


async def test_a_tab_that_connects_not_ready_is_offered_nothing_and_the_choice_holds(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    assert (await alice.call("presence", {"state": "not_ready"}))["ok"]
    await alice.disconnect()
    await server.stop()
    server = await make_server()  # a node that knows no choice of hers: read from the store at connect
    offers = count_offers(server)
    await wait_for(server, "alice")
    alice = await server.connect("alice")
    assert (await alice.call("sync"))["presence"] == "not_ready"
    assert offers == [] and alice.pushed("conversation") == []
    assert (await alice.call("presence", {"state": "ready"}))["ok"]  # ready: now it is offered
    await until(lambda: len(alice.pushed("conversation")) == 1, what="the waiting conversation pushed")


async def test_a_connect_with_an_ended_session_or_an_unknown_user_is_refused(didchat_server):
    _, body = await didchat_server.login("alice")
    await tab(didchat_server, body["token"])
    claims = didchat_server.services.tokens.verify(body["token"])
    await didchat_server.services.commit.run(partial(end_session, session_id=claims.session_id))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await AgentClient(didchat_server.url, body["token"]).connect()
    nobody = SimpleNamespace(id=10_000, name="nobody", role="agent")  # signed with the key, but no such user
    _, fresh = await didchat_server.login("alice")  # a live session: only the user is unknown
    token, _ = didchat_server.services.tokens.issue(nobody, didchat_server.services.tokens.verify(fresh["token"]).session_id)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await AgentClient(didchat_server.url, token).connect()


async def test_live_presence_reads_the_session_and_the_choice_in_one(didchat_server):
    svc = didchat_server.services
    alice = svc.directory.by_name["alice"].id
    bob = svc.directory.by_name["bob"].id
    for session_id, user_id in (("s-live", alice), ("s-ended", alice), ("s-lapsed", alice), ("s-bob", bob)):
        await svc.commit.run(partial(open_session, session_id=session_id, user_id=user_id, token_hash="0" * 64))
    await svc.commit.run(partial(end_session, session_id="s-ended"))

    async def lapse(conn):
        await conn.execute(sessions.update().where(sessions.c.id == "s-lapsed")
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
    await svc.commit.run(lapse)

    async with svc.db.read() as conn:
        seen = {sid: await live_presence(conn, sid, alice) for sid in ("s-live", "s-ended", "s-lapsed", "s-bob", "none")}
    assert seen == {"s-live": "ready", "s-ended": None, "s-lapsed": None, "s-bob": None, "none": None}
