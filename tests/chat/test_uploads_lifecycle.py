"""Agents' uploads follow the data rules (both databases): deleting a contact deletes the files sent to them (the
provider's public URL and the agent's own link answer 404, the file is gone from the store) and no one else's;
retention deletes a file with its message and keeps it while the message is kept; a file no send attached is
deleted a day after it came; a file goes with one message (a second send of it, or two at once, is refused
naming `media`); files sent before the upgrade that added this are kept as sent."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from chat.store import Database, migrate, utcnow
from chat.store.tables import messages, uploads
from chat.workers.retention import sweep
from chat.workers.running import DIRECTORY
from tests.chat.test_admin_api import api_as
from tests.chat.test_media_out import PNG, fetch, send, upload
from tests.conftest import ALICE, CUSTOMER, until

OTHER = "+14155550188"


async def conversation_from(server, alice, sender: str = CUSTOMER, text: str = "a photo please") -> int:
    assert (await server.simulate_sms(sender, ALICE, text))[0] == 200
    await until(lambda: any(m["text"] == text for m in alice.messages), what=f"{text!r} delivered")
    return next(m for m in alice.messages if m["text"] == text)["conversation_id"]


async def sent_photo(server, alice, cid: int) -> tuple[int, str, str]:
    """Alice sends a picture in the conversation: (its upload id, the provider's public URL, her own link)."""
    before = len(server.twilio_api.sent)
    status, photo = await upload(server, alice.token, PNG)
    assert status == 201, photo
    answer = await alice.call("send", send("here it is", [photo["id"]], conversation_id=cid))
    assert answer["ok"], answer
    await until(lambda: len(server.twilio_api.sent) > before, 10, "Twilio got the MMS")
    [public] = server.twilio_api.sent[-1].media
    return photo["id"], public, f"{server.url}{answer['message']['media'][0]['url']}"


async def stored(server) -> set[int]:
    """The ids of the uploads in the store."""
    async with server.services.db.read() as conn:
        return set((await conn.scalars(sa.select(uploads.c.id))).all())


async def age(server, table: sa.Table, days: float, ids: list[int] | None = None) -> None:
    """Move the rows' created_at `days` into the past (all of the table's, or these ids)."""
    statement = table.update().values(created_at=utcnow() - timedelta(days=days))
    async with server.services.db.write() as conn:
        await conn.execute(statement if ids is None else statement.where(table.c.id.in_(ids)))


async def shown(url: str, token: str | None = None) -> int:
    return (await fetch(url, token))[0]


async def test_deleting_the_contact_deletes_the_files_sent_to_them(didchat_server):
    server = didchat_server
    alice = await server.connect("alice")
    theirs, public, own = await sent_photo(server, alice, await conversation_from(server, alice))
    kept, other_public, other_own = await sent_photo(server, alice, await conversation_from(server, alice, OTHER, "me too"))
    assert (await shown(public), await shown(own, alice.token)) == (200, 200)

    admin = await api_as(server, "ada")
    status, counts, _ = await admin("DELETE", f"/api/v1/contacts/{CUSTOMER}")
    assert status == 200, counts
    assert (await shown(public), await shown(own, alice.token)) == (404, 404)
    assert await stored(server) == {kept}
    assert (await shown(other_public), await shown(other_own, alice.token)) == (200, 200)  # someone else's stays


async def test_retention_keeps_a_sent_file_with_its_message_and_deletes_it_with_the_message(didchat_server):
    server = didchat_server
    admin = await api_as(server, "ada")
    assert (await admin("PATCH", f"/api/v1/numbers/{ALICE}", {"retention_days": 30}))[0] == 200
    alice = await server.connect("alice")
    cid = await conversation_from(server, alice)
    photo, public, own = await sent_photo(server, alice, cid)
    assert (await alice.call("close", {"conversation_id": cid}))["ok"]
    await age(server, messages, 2)
    await age(server, uploads, 2)  # past the day an unsent file is kept, within the number's 30 days
    assert await sweep(server.services.commit, server.app[DIRECTORY], 365) == (0, 0)
    assert await stored(server) == {photo}
    assert (await shown(public), await shown(own, alice.token)) == (200, 200)

    await age(server, messages, 31)
    deleted, _ = await sweep(server.services.commit, server.app[DIRECTORY], 365)
    assert deleted == 2  # the customer's text and Alice's picture
    assert await stored(server) == set()
    assert (await shown(public), await shown(own, alice.token)) == (404, 404)


async def test_a_file_no_send_attached_is_deleted_after_a_day(didchat_server):
    server = didchat_server
    alice = await server.connect("alice")
    cid = await conversation_from(server, alice)
    sent, _, own = await sent_photo(server, alice, cid)
    forgotten = (await upload(server, alice.token, PNG))[1]["id"]
    fresh = (await upload(server, alice.token, PNG))[1]["id"]
    await age(server, uploads, 1.01, [sent, forgotten])
    await sweep(server.services.commit, server.app[DIRECTORY], 365)
    assert await stored(server) == {sent, fresh}
    assert await shown(own, alice.token) == 200
    refused = await alice.call("send", send("the one from yesterday", [forgotten], conversation_id=cid))
    assert refused["ok"] is False and refused["field"] == "media" and "upload it again" in refused["error"]
    assert (await alice.call("send", send("the one from just now", [fresh], conversation_id=cid)))["ok"]


async def test_a_file_goes_with_one_message(didchat_server):
    server = didchat_server
    alice = await server.connect("alice")
    cid = await conversation_from(server, alice)
    photo, _, _ = await sent_photo(server, alice, cid)
    again = await alice.call("send", send("and again", [photo], conversation_id=cid))
    assert again["ok"] is False and again["field"] == "media" and "upload it again" in again["error"], again
    racing = (await upload(server, alice.token, PNG))[1]["id"]
    answers = await asyncio.gather(*(alice.call("send", send(f"twice {n}", [racing], conversation_id=cid))
                                     for n in range(2)))
    assert sorted(a["ok"] for a in answers) == [False, True], answers
    assert next(a for a in answers if not a["ok"])["field"] == "media"
    async with server.services.db.read() as conn:
        named = (await conn.scalars(sa.select(messages.c.media).where(messages.c.direction == "out"))).all()
    assert sorted(item["upload_id"] for media in named if media for item in media) == sorted([photo, racing])


async def test_files_sent_before_the_upgrade_are_kept_and_unsent_ones_go(make_server, database_url):
    db = Database(database_url)
    old = utcnow() - timedelta(days=3)
    try:
        await migrate(db, "0023")
        async with db.write() as conn:
            uid = (await conn.execute(sa.text("INSERT INTO users (name, role, password_hash, created_at) VALUES "
                                              "('alice', 'agent', 'x', :t) RETURNING id"), {"t": old})).scalar_one()
            contact = (await conn.execute(sa.text("INSERT INTO contacts (number, created_at) VALUES (:n, :t) "
                                                  "RETURNING id"), {"n": CUSTOMER, "t": old})).scalar_one()
            cid = (await conn.execute(sa.text(
                "INSERT INTO conversations (contact_id, access_number, owner_id, assigned_id, state, presented_number,"
                " last_seq, created_at, updated_at) VALUES (:c, :a, :u, :u, 'open', :a, 1, :t, :t) RETURNING id"),
                {"c": contact, "a": ALICE, "u": uid, "t": old})).scalar_one()
            ids = [(await conn.execute(sa.text(
                "INSERT INTO uploads (token, user_id, content_type, size, data, created_at) VALUES "
                "(:k, :u, 'image/png', :s, :d, :t) RETURNING id"),
                {"k": f"token-{n}", "u": uid, "s": len(PNG), "d": PNG, "t": old})).scalar_one() for n in range(2)]
            media = [{"upload_id": ids[0], "content_type": "image/png", "filename": None}]
            mid = (await conn.execute(messages.insert().values(
                conversation_id=cid, seq=1, direction="out", text="", status="delivered", sender=ALICE,
                recipient=CUSTOMER, connector="tw", user_id=uid, media=media,
                created_at=old, updated_at=old).returning(messages.c.id))).scalar_one()
    finally:
        await db.dispose()
    server = await make_server()  # migrates to the newest schema
    alice = await server.connect("alice")
    await sweep(server.services.commit, server.app[DIRECTORY], 365)
    assert await stored(server) == {ids[0]}
    assert await shown(f"{server.url}/api/media/{mid}/0", alice.token) == 200
