"""Status callbacks for message ids we never sent (issue 8, point 5) are parked, and deleted
`unknown_status_hours` after they came: by a sweep that runs every few minutes, in batches, on
an index, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from chat.connectors import receipts
from chat.connectors.receipts import sweep
from chat.domain.conversations import ADD_CONVERSATION, contact_id, insert_message
from chat.domain.statuses import ADD_REF, EXPIRE_BATCH, apply_stranded, stranded
from chat.store import utcnow
from chat.store.tables import messages, pending_reports
from gateway.providers.twilio import twilio_signature
from tests.conftest import ALICE, CUSTOMER


async def post_status(server, sid: str, status: str = "delivered") -> int:
    """A signed Twilio status callback for `sid`, as Twilio posts it; the HTTP status."""
    conn = server.config.connectors[0]
    url = f"{server.url}/webhooks/twilio/{conn.name}/status"
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": conn.account_sid, "From": ALICE, "To": CUSTOMER}
    headers = {"X-Twilio-Signature": twilio_signature(conn.auth_token.get_secret_value(), url, params),
               "Content-Type": "application/x-www-form-urlencoded"}
    return (await server.post(url, urlencode(params).encode(), headers))[0]


async def parked(server) -> list[str]:
    async with server.services.db.read() as conn:
        return list(await conn.scalars(sa.select(pending_reports.c.provider_id).order_by(pending_reports.c.id)))


async def test_a_status_for_an_unknown_id_is_kept_for_its_time_then_deleted(make_server):
    server = await make_server(extra="unknown_status_hours: 0.0003\n")  # about a second
    posted = time.monotonic()
    assert await post_status(server, "SMnever0000000000000000000000001") == 200
    assert await parked(server) == ["SMnever0000000000000000000000001"]
    async with asyncio.timeout(10):
        while await parked(server):
            await asyncio.sleep(0.05)
    assert time.monotonic() - posted >= 1.0  # not before its time


async def test_the_sweep_deletes_a_backlog_in_batches_and_keeps_what_is_fresh(didchat_server):
    svc = didchat_server.services
    old = utcnow() - timedelta(hours=25)
    rows = [{"connector": "tw", "provider_id": f"SMold{i}", "status": "delivered", "received_at": old}
            for i in range(2 * EXPIRE_BATCH + 5)]
    async with svc.db.write() as conn:
        await conn.execute(pending_reports.insert(), rows)
    assert await post_status(didchat_server, "SMfresh") == 200
    assert await sweep(svc.commit, timedelta(hours=24)) == 2 * EXPIRE_BATCH + 5
    assert await parked(didchat_server) == ["SMfresh"]


async def test_parked_reports_have_an_index_on_their_age(didchat_server):
    async with didchat_server.services.db.read() as conn:
        indexes = await conn.run_sync(lambda sync: sa.inspect(sync).get_indexes("pending_reports"))
    assert any(ix["column_names"] == ["received_at"] for ix in indexes)



async def stranded_report(server, sid: str) -> int:
    """A report parked while the send naming `sid` was recorded in a transaction that did not see it
    (two nodes, or two batches in flight); the message's id."""
    svc, name = server.services, server.config.connectors[0].name
    assert await post_status(server, sid) == 200  # no such id yet: parked
    async with svc.db.write() as conn:
        contact = await contact_id(conn, CUSTOMER)
        cid = (await conn.execute(ADD_CONVERSATION, {
            "contact_id": contact, "access_number": ALICE, "state": "open", "presented_number": ALICE,
            "created_at": utcnow(), "updated_at": utcnow()})).inserted_primary_key[0]
        row = await insert_message(conn, cid, direction="out", text="hi", status="sent", sender=ALICE,
                                   recipient=CUSTOMER, connector=name)
        await conn.execute(ADD_REF, {"connector": name, "provider_id": sid, "message_id": row["id"],
                                     "part": 1, "status": "sent"})  # recorded without seeing the parked report
    return row["id"]


async def test_a_report_parked_beside_the_send_that_names_its_id_is_applied_soon(didchat_server):
    mid = await stranded_report(didchat_server, "SMbeside")
    async with asyncio.timeout(10):
        while True:
            async with didchat_server.services.db.read() as conn:
                status = await conn.scalar(sa.select(messages.c.status).where(messages.c.id == mid))
            if status == "delivered":
                break
            await asyncio.sleep(0.1)
    assert await parked(didchat_server) == []


@pytest.fixture
def no_rescue_sweep(monkeypatch):
    monkeypatch.setattr(receipts, "RESCUE_SECONDS", 3600.0)  # before the server starts: only this test rescues


async def test_two_rescues_at_once_apply_a_stranded_report_once(no_rescue_sweep, didchat_server):
    svc = didchat_server.services
    assert await post_status(didchat_server, "SMunknown") == 200
    async with svc.db.read() as conn:
        assert not await stranded(conn)  # parked, its id unknown: nothing to rescue
    mid = await stranded_report(didchat_server, "SMtwice")
    first, second = await asyncio.gather(svc.db.write_all([apply_stranded]), svc.db.write_all([apply_stranded]))
    pushes = first[0] + second[0]
    assert [(p["id"], p["status"]) for p in pushes] == [(mid, "delivered")]
    assert await parked(didchat_server) == ["SMunknown"]
