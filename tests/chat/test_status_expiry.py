"""Status callbacks for message ids we never sent (issue 8, point 5) are parked, and deleted
`unknown_status_hours` after they came: by a sweep that runs every few minutes, in batches, on
an index, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from urllib.parse import urlencode

import sqlalchemy as sa

from chat.connectors.receipts import sweep
from chat.domain.statuses import EXPIRE_BATCH
from chat.store import utcnow
from chat.store.tables import pending_reports
from gateway import twilio_signature
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
