"""Opt-out per sender number (both databases): a STOP to Alice's number stops that number only, so Bob
may still text the customer from his own; with `opt_out_scope: account` it stops every number; the
conversation says so."""
from __future__ import annotations

from tests.conftest import ALICE, BOB, CUSTOMER, until


async def stop_to_alice(server):
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "hi"))[0] == 200
    [msg] = await alice.wait_messages(1)
    assert (await server.simulate_sms(CUSTOMER, ALICE, "STOP"))[0] == 200
    await server.twilio_api.wait_for_requests(1, timeout=10)  # the confirmation
    return alice, bob, msg["conversation_id"]


async def test_a_stop_to_one_number_stops_that_number_only(make_server):
    server = await make_server()
    alice, bob, cid = await stop_to_alice(server)
    refused = await alice.call("send", {"conversation_id": cid, "text": "still there?", "client_id": "a-1"})
    assert refused["ok"] is False and refused["field"] == "to" and ALICE in refused["error"]
    await until(lambda: any(c["id"] == cid and c.get("opted_out") for c in alice.pushed("conversation")),
                what="the opted-out state pushed")
    [conv] = [c for c in (await alice.call("sync", {}))["conversations"] if c["id"] == cid]
    assert conv["opted_out"] is True
    sent = await bob.call("send", {"to": CUSTOMER, "text": "Bob from sales here", "client_id": "b-1"})
    assert sent["ok"], sent
    requests = await server.twilio_api.wait_for_requests(2, timeout=10)
    assert requests[-1]["From"] == BOB and requests[-1]["Body"] == "Bob from sales here"

    assert (await server.simulate_sms(CUSTOMER, ALICE, "START"))[0] == 200
    await server.twilio_api.wait_for_requests(3, timeout=10)
    ok = await alice.call("send", {"conversation_id": cid, "text": "welcome back", "client_id": "a-2"})
    assert ok["ok"], ok


async def test_with_the_account_scope_a_stop_stops_every_number(make_server):
    server = await make_server(extra="\nopt_out_scope: account\n")
    _alice, bob, _cid = await stop_to_alice(server)
    refused = await bob.call("send", {"to": CUSTOMER, "text": "Bob here", "client_id": "b-2"})
    assert refused["ok"] is False and "opted out" in refused["error"]


async def test_the_upgrade_keeps_every_earlier_opt_out_for_all_numbers(database_url):
    import sqlalchemy as sa

    from chat.store import Database, migrate, utcnow
    from chat.store.tables import contacts, opt_outs

    db = Database(database_url)
    try:
        await migrate(db, "0014")
        async with db.write() as conn:
            await conn.execute(sa.text("INSERT INTO contacts (number, opted_out, created_at) VALUES (:n, :o, :t)"),
                               [{"n": CUSTOMER, "o": True, "t": utcnow()}, {"n": "+12125550177", "o": False, "t": utcnow()}])
        await migrate(db)
        async with db.read() as conn:
            rows = (await conn.execute(sa.select(contacts.c.number, opt_outs.c.number)
                                       .join(opt_outs, opt_outs.c.contact_id == contacts.c.id))).all()
        assert [tuple(r) for r in rows] == [(CUSTOMER, "*")]
    finally:
        await db.dispose()
