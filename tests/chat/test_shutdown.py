"""Graceful shutdown: agents are told before their sockets close, work in flight finishes,
new work is refused with "retry" (both databases)."""
from __future__ import annotations

import asyncio

import pytest
import socketio
import sqlalchemy as sa

from chat.store import Database
from chat.store.tables import messages, outbox
from chat.workers.tasks import STOPPING
from tests.conftest import ALICE, CUSTOMER, SMPP_NUMBER, AgentClient, smpp_connector, until
from tests.fakes.smsc import TestSmsc


def record_disconnect(client: AgentClient) -> None:
    """Put the client's disconnect in its list of events, in order with what it was pushed."""
    async def on_disconnect(reason=None):
        client.events.append(("disconnect", reason))
    client.sio.on("disconnect", on_disconnect, namespace="/agent")


async def stop_server(server) -> None:
    """Stop the server as a SIGTERM does, with the agents still connected."""
    await server.runner.cleanup()
    server.runner = None


async def stored_texts(server, db) -> list[str]:
    async with db.read() as conn:
        return list((await conn.scalars(sa.select(messages.c.text).where(messages.c.direction == "in"))).all())


async def test_agents_are_told_the_server_restarts_before_their_sockets_close(didchat_server):
    alice, bob = await didchat_server.connect("alice"), await didchat_server.connect("bob")
    for client in (alice, bob):
        record_disconnect(client)
    await asyncio.wait_for(stop_server(didchat_server), timeout=1.5)  # aiohttp would wait 2 s (its timeout here) on each socket
    for client in (alice, bob):
        await until(lambda c=client: any(name == "disconnect" for name, _ in c.events), 5)
        names = [name for name, _ in client.events]
        assert "server_restarting" in names, names
        assert names.index("server_restarting") < names.index("disconnect")
        assert client.pushed("server_restarting") == [{"text": "didchat is restarting; reconnecting…"}]


async def test_a_webhook_in_flight_when_shutdown_begins_is_stored_and_answered(didchat_server):
    svc = didchat_server.services
    held, release = asyncio.Event(), asyncio.Event()
    caught_up = svc.router.caught_up

    async def slow_caught_up():  # the webhook is committed and held just before its answer
        held.set()
        await release.wait()
        await caught_up()

    svc.router.caught_up = slow_caught_up
    webhook = asyncio.create_task(didchat_server.simulate_sms(CUSTOMER, ALICE, "in flight"))
    await asyncio.wait_for(held.wait(), 5)
    stopping = asyncio.create_task(stop_server(didchat_server))
    await until(lambda: didchat_server.app[STOPPING].began, 5)
    release.set()
    status, _ = await asyncio.wait_for(webhook, 5)
    await asyncio.wait_for(stopping, 10)
    assert status == 200
    db = Database(didchat_server.config.database())
    try:
        assert await stored_texts(didchat_server, db) == ["in flight"]
    finally:
        await db.dispose()


async def test_once_shutdown_began_webhooks_and_new_agents_are_told_to_retry(didchat_server):
    await didchat_server.app.shutdown()  # what a SIGTERM starts (the listener is still open here)
    url, body, headers = didchat_server.webhook(CUSTOMER, ALICE, "too late")
    status, text = await didchat_server.post(url, body, headers)
    assert status == 503 and "shutting down" in text and "retry" in text
    status, session = await didchat_server.login("alice")
    assert status == 200
    late = AgentClient(didchat_server.url, session["token"])
    with pytest.raises(socketio.exceptions.ConnectionError):
        await late.connect()
    assert await stored_texts(didchat_server, didchat_server.services.db) == []


async def test_a_reply_being_sent_over_smpp_is_handed_over_before_the_link_unbinds(make_server):
    smsc = await TestSmsc("didchat", "secret", window=50).start()
    try:
        server = await make_server(connectors=smpp_connector(smsc.port, response_timeout=5))
        await smsc.wait_for_sessions(1, timeout=10)
        alice = await server.connect("alice")
        assert await smsc.deliver(CUSTOMER.lstrip("+"), SMPP_NUMBER.lstrip("+"), b"Hi") == 0
        [msg] = await alice.wait_messages(1)
        smsc.slow_responses(1.0)
        sent = await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "bye", "client_id": "b1"})
        await smsc.until(lambda: smsc.counters["submit_sm"] == 1)
        await asyncio.wait_for(stop_server(server), 8)
        assert [s.status for s in smsc.submits] == [0] and smsc.counters["unbind"] == 1
    finally:
        await smsc.stop()
    db = Database(server.config.database())
    try:
        async with db.read() as conn:
            status = await conn.scalar(sa.select(messages.c.status).where(messages.c.id == sent["message"]["id"]))
            waiting = await conn.scalar(sa.select(sa.func.count()).select_from(outbox))
    finally:
        await db.dispose()
    assert status == "sent" and waiting == 0
