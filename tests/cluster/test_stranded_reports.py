"""A status report that reaches one node while the other records the send naming its id: neither
transaction sees the other, so the report is parked and the send finds nothing parked. The nodes'
receipts sweeps find it (chat.domain.statuses.apply_stranded) and it reaches the agent once."""
from __future__ import annotations

from urllib.parse import urlencode

import aiohttp
import sqlalchemy as sa

from chat.domain.conversations import insert_message
from chat.domain.statuses import ADD_REF
from chat.store import Database
from chat.store.tables import conversations, messages, pending_reports
from gateway.providers.twilio import twilio_signature
from tests.conftest import ALICE, CUSTOMER, until

SID = "SM" + "5" * 32


async def post_status(cluster, node: int, sid: str, status: str = "delivered") -> int:
    """A signed Twilio status callback to node `node`, as Twilio posts it (signed for the public URL)."""
    conn = cluster.config.connectors[0]
    path = f"/webhooks/twilio/{conn.name}/status"
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": conn.account_sid, "From": ALICE,
              "To": CUSTOMER}
    signature = twilio_signature(conn.auth_token.get_secret_value(), cluster.public_url.rstrip("/") + path, params)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession() as http:
        async with http.post(cluster.nodes[node].url + path, data=urlencode(params).encode(), headers=headers) as answer:
            return answer.status


async def test_a_report_parked_on_one_node_beside_a_send_recorded_on_the_other_reaches_alice_once(make_cluster):
    cluster = await make_cluster(nodes=2)
    alice = await cluster.nodes[0].connect("alice")
    assert (await cluster.simulate_sms(node=0, text="hello"))[0] in (200, 204)
    [first] = await alice.wait_messages(1)

    assert await post_status(cluster, 1, SID) == 200  # node B: no such id yet, parked
    db = Database(cluster.database_url)
    try:
        async with db.write() as conn:  # the send's answer, recorded as node A records it, not seeing the report
            row = await insert_message(conn, first["conversation_id"], direction="out", text="a reply", status="sent",
                                       sender=ALICE, recipient=CUSTOMER, connector=cluster.config.connectors[0].name)
            await conn.execute(ADD_REF, {"connector": cluster.config.connectors[0].name, "provider_id": SID,
                                         "message_id": row["id"], "part": 1, "status": "sent"})
            assigned = await conn.scalar(sa.select(conversations.c.assigned_id)
                                         .where(conversations.c.id == first["conversation_id"]))
        assert assigned is not None  # alice's: the push goes to her

        def delivered() -> list[dict]:
            return [s for s in alice.pushed("status") if s["id"] == row["id"] and s["status"] == "delivered"]

        await until(lambda: bool(delivered()), 10.0, "the stranded report applied and pushed")
        async with db.read() as conn:
            assert await conn.scalar(sa.select(messages.c.status).where(messages.c.id == row["id"])) == "delivered"
            assert await conn.scalar(sa.select(sa.func.count()).select_from(pending_reports)) == 0  # taken: no node applies it again
        assert len(delivered()) == 1
    finally:
        await db.dispose()
