"""Routes for new conversations: a text from a new customer to a shared number reaches someone
who may take it (now, or when they become ready, once), never an agent outside the route, and
what nobody can take is put before the admins instead of waiting where nobody looks."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import pytest

from tests.conftest import BOB, CUSTOMER, MAIN, Server, config_text, free_port, until

OTHER = "+12125550198"  # a second new customer
SHARED = f'{{number: "{MAIN}", voice: false}}'  # the shared number's line in tests/conftest.py


@pytest.fixture
async def routed(tmp_path, twilio_api, database_url):
    """Start a didchat whose test configuration is changed by `edit` (text -> text)."""
    servers: list[Server] = []

    async def start(edit=lambda text: text, extra: str = "") -> Server:
        path = tmp_path / f"routes-{len(servers)}.yaml"
        text = edit(config_text(free_port(), database_url, twilio_api, extra))
        path.write_text(text)
        server = Server(path, twilio_api)
        servers.append(server)
        return await server.start()

    yield start
    for server in servers:
        await server.stop()


def team_route(team: str, members: str):
    """An edit routing the shared number to `team` (with these members)."""
    return lambda text: text.replace(SHARED, f'{{number: "{MAIN}", voice: false, team: {team}}}') + \
        f"teams:\n  {team}: [{members}]\n"


def no_presenters(text: str) -> str:
    """Nobody may present the shared number any more: its route has no one on it."""
    return text.replace(", may_present: [main]", "")


def conversations_of(client) -> list[dict]:
    return client.pushed("conversation")


async def probe(server: Server, client, text: str = "probe") -> None:
    """Route one more text, to Bob's own number, and wait for it: whatever was routed before it was pushed first."""
    before = len(client.messages)
    await server.simulate_sms("+12125550197", BOB, f"{text} {uuid.uuid4().hex[:6]}")
    await client.wait_messages(before + 1)


async def test_a_new_customer_on_the_shared_number_reaches_the_agent_who_may_present_it(make_server):
    server = await make_server()
    alice, bob = await server.connect("alice"), await server.connect("bob")
    status, _ = await server.simulate_sms(CUSTOMER, MAIN, "is anyone there?")
    assert status == 200
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == "is anyone there?" and msg["to"] == MAIN
    [conv] = conversations_of(alice)
    assert conv["access_number"] == MAIN and conv["contact"]["number"] == CUSTOMER
    await probe(server, bob)
    assert [m["to"] for m in bob.messages] == [BOB]  # Bob may not present main: none of it reached him
    sync = await alice.call("sync", {})
    assert [c["id"] for c in sync["conversations"]] == [conv["id"]]


async def test_with_no_one_ready_it_waits_and_goes_to_the_first_who_becomes_ready_once(make_server):
    server = await make_server()
    alice = await server.connect("alice")
    assert (await alice.call("presence", {"state": "not_ready"}))["ok"]
    assert (await server.simulate_sms(CUSTOMER, MAIN, "first"))[0] == 200
    bob = await server.connect("bob")
    await probe(server, bob)
    assert alice.messages == []  # not ready: it waits in the store
    assert (await alice.call("presence", {"state": "ready"}))["ok"]
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == "first"
    assert (await server.simulate_sms(CUSTOMER, MAIN, "second"))[0] == 200
    await alice.wait_messages(2)
    assert [m["text"] for m in alice.messages] == ["first", "second"]  # each once
    assert len(conversations_of(alice)) == 1


async def test_a_team_route_gives_the_conversation_to_a_ready_member_and_not_to_other_presenters(routed):
    server = await routed(team_route("support", "bob"))
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, MAIN, "for the team"))[0] == 200
    [msg] = await bob.wait_messages(1)
    assert msg["text"] == "for the team"
    await probe(server, bob)
    assert alice.messages == []  # alice may present main, but the route is the team
    answer = await bob.call("send", {"conversation_id": msg["conversation_id"], "text": "Support here",
                                     "client_id": str(uuid.uuid4())})
    assert answer["ok"] and answer["message"]["from"] == MAIN  # a team's number is answered from itself


async def test_a_team_deals_new_conversations_to_the_least_busy_ready_member(routed):
    server = await routed(team_route("support", "alice, bob"))
    alice, bob = await server.connect("alice"), await server.connect("bob")
    await server.simulate_sms(CUSTOMER, MAIN, "one")
    await server.simulate_sms(OTHER, MAIN, "two")
    await until(lambda: len(alice.messages) + len(bob.messages) == 2)
    assert len(alice.messages) == 1 and len(bob.messages) == 1


async def test_two_members_becoming_ready_at_once_cannot_both_take_it(routed):
    server = await routed(team_route("support", "alice, bob"))
    alice, bob = await server.connect("alice"), await server.connect("bob")
    for agent in (alice, bob):
        assert (await agent.call("presence", {"state": "not_ready"}))["ok"]
    assert (await server.simulate_sms(CUSTOMER, MAIN, "who takes me?"))[0] == 200
    await asyncio.gather(*(agent.call("presence", {"state": "ready"}) for agent in (alice, bob)))
    await until(lambda: alice.messages or bob.messages)
    syncs = [await agent.call("sync", {}) for agent in (alice, bob)]
    assert sorted(len(s["conversations"]) for s in syncs) == [0, 1]
    assert len(alice.messages) + len(bob.messages) == 1


async def test_the_last_agent_who_presented_the_number_comes_first(routed):
    server = await routed(team_route("support", "bob"))
    alice = await server.connect("alice")
    started = await alice.call("send", {"to": CUSTOMER, "from": MAIN, "text": "Alice from the main line",
                                        "client_id": str(uuid.uuid4())})
    assert started["ok"], started
    assert (await alice.call("close", {"conversation_id": started["conversation"]["id"]}))["ok"]
    await server.simulate_sms(CUSTOMER, MAIN, "back to you, Alice")
    [msg] = await alice.wait_messages(1)
    assert msg["text"] == "back to you, Alice"


async def test_what_nobody_can_take_goes_to_the_admins_who_may_claim_it(routed):
    server = await routed(no_presenters)
    ada, alice, bob = await server.connect("ada"), await server.connect("alice"), await server.connect("bob")
    assert (await server.simulate_sms(CUSTOMER, MAIN, "hello?"))[0] == 200
    await until(lambda: ada.pushed("notice"))
    [notice] = ada.pushed("notice")
    assert notice["level"] == "warning" and MAIN in notice["text"]
    sync = await ada.call("sync", {})
    [queued] = sync["queue"]
    assert queued["access_number"] == MAIN and queued["contact"]["number"] == CUSTOMER and queued["state"] == "waiting"
    refused = await alice.call("claim", {"conversation_id": queued["id"]})
    assert refused["ok"] is False and refused["field"] == "conversation_id"
    claimed = await ada.call("claim", {"conversation_id": queued["id"]})
    assert claimed["ok"] and claimed["conversation"]["id"] == queued["id"]
    [msg] = await ada.wait_messages(1)
    assert msg["text"] == "hello?"
    assert (await ada.call("sync", {}))["queue"] == []
    assert not (await ada.call("claim", {"conversation_id": queued["id"]}))["ok"]  # taken: once
    await probe(server, bob)
    assert alice.messages == [] and alice.pushed("notice") == [] and bob.pushed("notice") == []


async def test_an_admin_who_connects_later_finds_it_in_the_queue(routed):
    server = await routed(no_presenters)
    assert (await server.simulate_sms(CUSTOMER, MAIN, "anyone?"))[0] == 200
    ada = await server.connect("ada")  # the queue is decided with the commit: it is there once answered 200
    sync = await ada.call("sync", {})
    assert [c["contact"]["number"] for c in sync["queue"]] == [CUSTOMER]
    assert ada.messages == []  # an admin claims; nothing is dealt to them unasked


def check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "didchat.yaml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "chat", "config", "check", str(path)], capture_output=True, text=True)


CHECKED = f"""\
users:
  - {{name: alice, password: a-long-password}}
access_numbers:
  - {{number: "{MAIN}", voice: false}}
connectors:
  - {{type: generic, name: gen, secret: 0123456789abcdef0123, send_url: "http://127.0.0.1:9/send", numbers: ["{MAIN}"]}}
"""


def test_config_check_warns_of_a_shared_number_nobody_would_get(tmp_path):
    result = check(tmp_path, CHECKED)
    assert result.returncode == 0, result.stderr
    assert f"warning: {tmp_path / 'didchat.yaml'}:4: access_numbers[0]: {MAIN} takes SMS but no one" in result.stderr
    presented = check(tmp_path, CHECKED.replace("a-long-password}", "a-long-password, may_present: [\"" + MAIN + "\"]}"))
    assert presented.returncode == 0 and "warning" not in presented.stderr


def test_config_check_refuses_a_route_to_an_unknown_team(tmp_path):
    result = check(tmp_path, CHECKED.replace("voice: false}", "voice: false, team: sales}"))
    assert result.returncode == 2
    assert f"{tmp_path / 'didchat.yaml'}:4: access_numbers[0].team: no team named 'sales'" in result.stderr
    empty = check(tmp_path, CHECKED.replace("voice: false}", "voice: false, team: sales}") + "teams: {sales: []}\n")
    assert empty.returncode == 0 and "give team 'sales' members" in empty.stderr


async def _waiting_in_queue(db, queue: str) -> int:
    """Two users and one conversation waiting in `queue`; the conversation's id."""
    from chat.store import utcnow
    from chat.store.tables import contacts, conversations, users

    now = utcnow()
    async with db.write() as conn:
        await conn.execute(users.insert(), [{"id": i, "name": f"u{i}", "role": "agent", "password_hash": "-",
                                             "created_at": now} for i in (1, 2)])
        await conn.execute(contacts.insert().values(id=1, number=CUSTOMER, created_at=now))
        await conn.execute(conversations.insert().values(
            id=1, contact_id=1, access_number=MAIN, state="waiting", presented_number=MAIN, team=queue,
            created_at=now, updated_at=now))
    return 1


async def test_a_claim_is_exclusive_even_between_two_open_transactions(database_url):
    """Two nodes' claims at the same moment: the second waits for the first's row lock, then finds nothing."""
    import sqlalchemy as sa

    from chat.domain.waiting import claim_waiting
    from chat.store import Database, migrate

    db = Database(database_url)
    try:
        await migrate(db)
        await _waiting_in_queue(db, "support")
        if db.is_sqlite:  # one writer at a time: claims cannot overlap, the second simply finds it taken
            async with db.write() as conn:
                first = await claim_waiting(conn, 1, ("support",))
            async with db.write() as conn:
                second = await claim_waiting(conn, 2, ("support",))
        else:
            async with db.engine.connect() as one, db.engine.connect() as two, db.engine.connect() as watch:
                await one.begin()
                first = await claim_waiting(one, 1, ("support",))
                await two.begin()
                late = asyncio.create_task(claim_waiting(two, 2, ("support",)))
                blocked = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND datname = current_database()")
                for _ in range(500):  # until the second claim waits on the first one's lock
                    if (await watch.execute(blocked)).scalar() or late.done():
                        break
                    await watch.rollback()
                    await asyncio.sleep(0.01)
                await one.commit()
                second = await asyncio.wait_for(late, 10)
                await two.commit()
        assert [conv["id"] for conv, _ in first] == [1]
        assert second == []
    finally:
        await db.dispose()


async def test_backlog_counts_what_is_stored_but_not_yet_routed():
    from chat.domain.inbound import Stored
    from chat.workers.routing import Router

    router = Router(commit=None, hub=None, presence=None)
    assert router.backlog() == (0, 0.0)
    for _ in range(3):
        router.dispatch(Stored(duplicate=True))
    count, oldest = router.backlog()
    assert count == 3 and oldest >= 0
