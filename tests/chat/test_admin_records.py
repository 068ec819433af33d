"""API tokens, the audit log, retention and a contact's deletion, on both databases.

Tokens are scoped, expire and are refused once revoked; the audit log records who did what from
where (admin changes field by field, logins and failed logins, token use, transfers, closes, a
deletion); retention deletes a closed conversation's old messages; deleting a contact leaves none of
their text or number in any table.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import sqlalchemy as sa

from chat.store import utcnow
from chat.store.tables import crm_outbox, messages, metadata
from chat.workers.retention import sweep
from chat.workers.running import DIRECTORY
from tests.chat.test_admin_api import Api, api_as
from tests.conftest import ALICE, BOB, CUSTOMER, until

OTHER = "+14155550188"


async def audit(api: Api, query: str = "") -> list[dict]:
    status, page, _ = await api("GET", f"/api/v1/audit?limit=500{query}")
    assert status == 200, page
    return page["items"]


async def test_tokens_are_scoped_expiring_and_revocable(didchat_server):
    admin = await api_as(didchat_server, "ada")
    status, made, _ = await admin("POST", "/api/v1/tokens", {"name": "hr-sync", "scopes": ["users:read"]})
    assert status == 201 and made["token"].startswith("dct_") and made["state"] == "live"
    reader = Api(didchat_server, made["token"])
    assert (await reader("GET", "/api/v1/users"))[0] == 200
    status, answer, _ = await reader("PATCH", "/api/v1/users/alice", {"display_name": "X"})
    assert status == 403 and "no scope to write users" in answer["detail"]
    assert (await reader("GET", "/api/v1/numbers"))[0] == 403
    assert (await reader("GET", "/api/v1/tokens"))[0] == 403  # a token never manages tokens
    status, listed, _ = await admin("GET", "/api/v1/tokens")
    assert [t["name"] for t in listed["items"]] == ["hr-sync"] and "token" not in str(listed["items"][0].get("token"))
    assert (await admin("DELETE", f"/api/v1/tokens/{made['id']}"))[0] == 204
    assert (await reader("GET", "/api/v1/users"))[0] == 401
    status, brief, _ = await admin("POST", "/api/v1/tokens", {"name": "brief", "scopes": ["write"], "days": 0.00002})
    writer = Api(didchat_server, brief["token"])
    assert (await writer("PATCH", "/api/v1/users/bob", {"display_name": "Robert"}))[0] == 200
    await asyncio.sleep(2)  # it expires 1.7 s after it was made
    assert (await writer("GET", "/api/v1/users"))[0] == 401
    status, answer, _ = await admin("POST", "/api/v1/tokens", {"name": "x", "scopes": ["everything"]})
    assert status == 422 and answer["errors"][0]["field"] == "scopes[0]"
    records = await audit(admin)
    change = next(r for r in records if r["action"] == "config.changed")
    assert change["actor"] == "token:brief"
    assert {"field": "users[name=bob].display_name", "from": "Bob", "to": "Robert"} in change["details"]["changes"]
    assert {"token.created", "token.revoked", "token.used"} <= {r["action"] for r in records}


async def test_the_audit_log_records_who_did_what_from_where(didchat_server):
    server = didchat_server
    assert (await server.login("bob", "wrong password"))[0] == 401
    admin = await api_as(server, "ada")
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, "help")
    msg = next(m for m in await alice.wait_messages(1) if m["text"] == "help")
    cid = msg["conversation_id"]
    assert (await alice.call("transfer", {"conversation_id": cid, "to": {"user": "bob"}}))["ok"]
    bob = await server.connect("bob")
    await server.simulate_sms(CUSTOMER, BOB, "another")
    await until(lambda: any(m["text"] == "another" for m in bob.messages), 5.0, "bob's own conversation")
    other = next(m for m in bob.messages if m["text"] == "another")
    assert (await bob.call("close", {"conversation_id": other["conversation_id"]}))["ok"]
    assert (await admin("PATCH", "/api/v1/users/alice", {"password": "a-new-password"}))[0] == 200
    records = await audit(admin)
    seen = {(r["action"], r["actor"]) for r in records}
    assert {("login.failed", "bob"), ("login", "ada"), ("login", "alice"), ("conversation.transferred", "alice"),
            ("conversation.closed", "bob"), ("config.changed", "ada")} <= seen
    failed = next(r for r in records if r["action"] == "login.failed")
    assert failed["address"] == "127.0.0.1" and failed["details"] == {"reason": "wrong password"}
    reset = next(r for r in records if r["action"] == "config.changed" and r["actor"] == "ada")
    assert reset["details"]["passwords_set"] == ["alice"] and "a-new-password" not in str(records)
    assert [r["action"] for r in await audit(admin, "&action=login*")] == ["login", "login", "login", "login.failed"]
    since = (utcnow() + timedelta(minutes=1)).isoformat()
    assert await audit(admin, f"&since={since.replace('+', '%2B')}") == []
    assert (await admin("GET", "/api/v1/audit?since=yesterday"))[0] == 400
    assert (await (await api_as(server, "alice", "a-new-password"))("GET", "/api/v1/audit"))[0] == 403


async def test_retention_deletes_a_closed_conversations_old_messages(didchat_server):
    server = didchat_server
    admin = await api_as(server, "ada")
    assert (await admin("PATCH", f"/api/v1/numbers/{ALICE}", {"retention_days": 30}))[0] == 200
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, "old news")
    await server.simulate_sms(OTHER, ALICE, "still open")
    await until(lambda: len(alice.messages) == 2, 5.0, "both delivered")
    closed = next(m["conversation_id"] for m in alice.messages if m["text"] == "old news")
    assert (await alice.call("close", {"conversation_id": closed}))["ok"]
    async with server.services.db.write() as conn:
        await conn.execute(messages.update().values(created_at=utcnow() - timedelta(days=31)))
    deleted, _ = await sweep(server.services.commit, server.app[DIRECTORY], 365)
    assert deleted == 1
    async with server.services.db.read() as conn:
        assert (await conn.scalars(sa.select(messages.c.text))).all() == ["still open"]
    assert any(r["action"] == "retention.expired" and r["details"] == {"messages": 1} for r in await audit(admin))


async def test_deleting_a_contact_leaves_none_of_their_text_anywhere(didchat_server):
    server = didchat_server
    secret_in, secret_out = f"zebra-{uuid.uuid4().hex}", f"kiwi-{uuid.uuid4().hex}"
    alice = await server.connect("alice")
    await server.simulate_sms(CUSTOMER, ALICE, secret_in)
    [msg] = await alice.wait_messages(1)
    cid = msg["conversation_id"]
    sent = await alice.call("send", {"conversation_id": cid, "text": secret_out, "client_id": "c-1"})
    assert sent["ok"], sent
    await server.twilio_api.wait_for_requests(1, timeout=10)
    assert (await alice.call("close", {"conversation_id": cid}))["ok"]
    await server.simulate_sms(CUSTOMER, ALICE, f"{secret_in} again")  # a second, open conversation
    await until(lambda: any(m["text"] == f"{secret_in} again" for m in alice.messages), 5.0, "the new conversation")
    async with server.services.db.write() as conn:  # an activity its CRM has not taken yet
        await conn.execute(crm_outbox.insert().values(key=f"activity-{cid}", url="http://127.0.0.1:9/crm", body={
            "phone": CUSTOMER, "transcript": [secret_in, secret_out]}, next_attempt_at=utcnow() + timedelta(hours=1),
            created_at=utcnow(), conversation_id=cid))
    await server.simulate_sms(OTHER, ALICE, "someone else")
    admin = await api_as(server, "ada")
    status, counts, _ = await admin("DELETE", f"/api/v1/contacts/{CUSTOMER}")
    assert status == 200 and counts == {"messages": 3, "conversations": 2}
    async with server.services.db.read() as conn:
        for table in metadata.sorted_tables:
            dump = " ".join(str(v) for row in (await conn.execute(sa.select(table))).all() for v in row)
            for needle in (secret_in, secret_out, CUSTOMER, CUSTOMER.lstrip("+")):
                assert needle not in dump, f"{needle} is still in {table.name}"
        assert (await conn.scalars(sa.select(messages.c.text))).all() == ["someone else"]
    assert (await admin("DELETE", f"/api/v1/contacts/{CUSTOMER}"))[0] == 404
    deletion = next(r for r in await audit(admin) if r["action"] == "contact.deleted")
    assert deletion["actor"] == "ada" and deletion["target"].startswith("contact:")
    await server.simulate_sms(CUSTOMER, ALICE, "back again")  # they may text again: a new contact
    await until(lambda: any(m["text"] == "back again" for m in alice.messages), 5.0, "a fresh conversation")

