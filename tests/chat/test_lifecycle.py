"""A conversation's lifecycle as the agent and the customer see it (both databases): closed with an
outcome (which the CRM activity carries), reopened, the customer's next text after a close opening a
new conversation that shows the earlier one (to whoever may see it), snoozed until a time or until the customer texts, and
closed for inactivity when the number says so."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from aiohttp import web

from chat.store.tables import conversations
from tests.chat.test_admin_api import api_as
from tests.chat.test_scenarios_live import write
from tests.conftest import ALICE, CUSTOMER, until

OUTCOMES = '\nconversations: {outcomes: ["Resolved", "Sales (EN)", "No answer"]}\n'
CLOSED_TO_CRM = """\
    name: closing
    params:
      crm_url: ""
    on:
      conversation_closed:
        - save_activity: "{{ params.crm_url }}"
"""


def last_conversation(client, cid: int) -> dict:
    return [c for c in client.pushed("conversation") if c["id"] == cid][-1]


def woken_after(client, cid: int, before: int) -> bool:
    """Whether a push after the first `before` conversation pushes says the snooze of `cid` ended."""
    return any(c["id"] == cid and c["snoozed_until"] is None for c in client.pushed("conversation")[before:])


async def first_message(server, alice, text: str = "hello") -> dict:
    before = len(alice.messages)
    assert (await server.simulate_sms(CUSTOMER, ALICE, text))[0] == 200
    return (await alice.wait_messages(before + 1))[-1]


@pytest.fixture
async def crm():
    """A CRM that takes every activity."""
    received: list[dict] = []

    async def activities(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True}, status=201)

    app = web.Application()
    app.router.add_post("/activities", activities)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/activities", received
    await runner.cleanup()


async def test_closing_with_an_outcome_tells_every_tab_and_the_crm_gets_it(make_server, tmp_path, crm):
    url, received = crm
    server = await make_server(extra=OUTCOMES + write(tmp_path, "closing", CLOSED_TO_CRM),
                               alice=f', scenario: closing, scenario_params: {{crm_url: "{url}"}}')
    alice, other_tab = await server.connect("alice"), await server.connect("alice")
    sync = await alice.call("sync", {})
    assert sync["outcomes"] == {"choices": ["Resolved", "Sales (EN)", "No answer"], "required": False}
    cid = (await first_message(server, alice, "my order is late"))["conversation_id"]

    refused = await alice.call("close", {"conversation_id": cid, "outcome": "Fixed"})
    assert refused["ok"] is False and refused["field"] == "outcome" and "Resolved" in refused["error"]
    closed = await alice.call("close", {"conversation_id": cid, "outcome": "Sales (EN)"})
    assert closed["ok"], closed
    assert closed["conversation"]["state"] == "closed" and closed["conversation"]["outcome"] == "Sales (EN)"
    assert closed["conversation"]["closed_at"]
    await until(lambda: any(c["id"] == cid and c["state"] == "closed" for c in other_tab.pushed("conversation")))
    await until(lambda: len(received) == 1, timeout=10, what="the CRM activity")
    assert received[0]["outcome"] == "Sales (EN)" and received[0]["conversation_id"] == cid
    assert [m["text"] for m in received[0]["transcript"]] == ["my order is late"]
    again = await alice.call("close", {"conversation_id": cid})
    assert again["ok"] is False and again["field"] == "conversation_id" and "closed already" in again["error"]


async def test_an_outcome_is_required_when_the_configuration_says_so(make_server):
    server = await make_server(extra='\nconversations: {outcomes: ["Resolved"], require_outcome: true}\n')
    alice = await server.connect("alice")
    cid = (await first_message(server, alice))["conversation_id"]
    refused = await alice.call("close", {"conversation_id": cid})
    assert refused["ok"] is False and refused["field"] == "outcome" and refused["error"] == "pick an outcome: Resolved"
    assert (await alice.call("close", {"conversation_id": cid, "outcome": "Resolved"}))["ok"]


async def test_a_text_after_the_close_opens_a_new_conversation_that_shows_the_earlier_one(didchat_server):
    alice = await didchat_server.connect("alice")
    first = await first_message(didchat_server, alice, "first question")
    cid = first["conversation_id"]
    assert (await alice.call("close", {"conversation_id": cid}))["ok"]
    later = await first_message(didchat_server, alice, "another question")
    assert later["conversation_id"] != cid
    history = await alice.call("history", {"conversation_id": later["conversation_id"]})
    assert history["ok"], history
    [earlier] = history["conversations"]
    assert earlier["id"] == cid and earlier["state"] == "closed"
    assert [m["text"] for m in earlier["messages"]] == ["first question"]
    bob = await didchat_server.connect("bob")
    foreign = await bob.call("history", {"conversation_id": later["conversation_id"]})
    assert foreign["ok"] is False and foreign["field"] == "conversation_id"


async def test_whoever_may_see_a_conversation_sees_its_earlier_ones(make_server):
    server = await make_server(alice=', away: {not_ready: {action: auto_reply, text: "Alice is busy"}}')
    admin = await api_as(server, "ada")
    assert (await admin("POST", "/api/v1/users", {"name": "sue", "password": "sue-password-1", "role": "supervisor"}))[0] == 201
    alice, bob = await server.connect("alice"), await server.connect("bob")
    cid = (await first_message(server, alice, "first question"))["conversation_id"]
    assert (await alice.call("close", {"conversation_id": cid}))["ok"]
    assert (await alice.call("presence", {"state": "not_ready"}))["ok"]
    assert (await server.simulate_sms(CUSTOMER, ALICE, "another question"))[0] == 200
    await server.twilio_api.wait_for_requests(1, timeout=10)  # "Alice is busy": it waits for her, the number's owner
    async with server.services.db.read() as conn:
        later = await conn.scalar(sa.select(sa.func.max(conversations.c.id)))
    owners = await alice.call("history", {"conversation_id": later})
    assert [(c["id"], [m["text"] for m in c["messages"]]) for c in owners["conversations"]] == [(cid, ["first question"])]
    sue, ada = await server.connect("sue", "sue-password-1"), await server.connect("ada")
    assert await sue.call("history", {"conversation_id": later}) == owners  # a supervisor
    assert await ada.call("history", {"conversation_id": later}) == owners  # an admin
    refused = await bob.call("history", {"conversation_id": later})  # neither: as one that does not exist
    assert refused["ok"] is False and refused["field"] == "conversation_id" and "question" not in str(refused)

    assert not any(m["text"] == "another question" for m in alice.messages)  # not hers yet: waiting for her
    assert (await alice.call("presence", {"state": "ready"}))["ok"]
    await until(lambda: any(m["text"] == "another question" for m in alice.messages), what="hers once she is ready")
    assert await alice.call("history", {"conversation_id": later}) == owners  # its agent: the same list


async def test_reopen_brings_it_back_unless_the_customer_has_texted_since(didchat_server):
    alice = await didchat_server.connect("alice")
    cid = (await first_message(didchat_server, alice, "one"))["conversation_id"]
    assert (await alice.call("close", {"conversation_id": cid}))["ok"]
    reopened = await alice.call("reopen", {"conversation_id": cid})
    assert reopened["ok"], reopened
    assert reopened["conversation"]["state"] == "open" and reopened["conversation"]["outcome"] is None
    assert (await first_message(didchat_server, alice, "two"))["conversation_id"] == cid  # the same conversation
    sent = await alice.call("send", {"conversation_id": cid, "text": "on it", "client_id": "c-reopen-1"})
    assert sent["ok"], sent

    assert (await alice.call("close", {"conversation_id": cid}))["ok"]
    newer = (await first_message(didchat_server, alice, "three"))["conversation_id"]
    refused = await alice.call("reopen", {"conversation_id": cid})
    assert refused["ok"] is False and refused["field"] == "conversation_id"
    assert f"conversation {newer}" in refused["error"]
    not_closed = await alice.call("reopen", {"conversation_id": newer})
    assert not_closed["ok"] is False and "not closed" in not_closed["error"]


async def test_a_snooze_ends_at_its_time_and_tells_the_agent(didchat_server):
    alice = await didchat_server.connect("alice")
    cid = (await first_message(didchat_server, alice))["conversation_id"]
    past = await alice.call("snooze", {"conversation_id": cid, "until": time.time() - 5})
    assert past["ok"] is False and past["field"] == "until"
    before = len(alice.pushed("conversation"))
    snoozed = await alice.call("snooze", {"conversation_id": cid, "until": time.time() + 1.5})
    assert snoozed["ok"] and snoozed["conversation"]["snoozed_until"]
    sync = await alice.call("sync", {})
    assert [c["snoozed_until"] for c in sync["conversations"] if c["id"] == cid] != [None]
    await until(lambda: woken_after(alice, cid, before), timeout=10, what="the snooze's end pushed")
    sync = await alice.call("sync", {})
    assert [c["snoozed_until"] for c in sync["conversations"] if c["id"] == cid] == [None]


async def test_the_customer_texting_ends_a_snooze(didchat_server):
    alice = await didchat_server.connect("alice")
    cid = (await first_message(didchat_server, alice))["conversation_id"]
    assert (await alice.call("snooze", {"conversation_id": cid, "until": time.time() + 3600}))["ok"]
    await first_message(didchat_server, alice, "are you there?")
    sync = await alice.call("sync", {})
    assert [c["snoozed_until"] for c in sync["conversations"] if c["id"] == cid] == [None]
    assert (await alice.call("snooze", {"conversation_id": cid, "until": None}))["ok"]


async def test_an_idle_conversation_is_closed_when_its_number_says_so(make_server, tmp_path, crm):
    url, received = crm
    server = await make_server(extra=write(tmp_path, "closing", CLOSED_TO_CRM),
                               alice=f', inactivity_close_seconds: 1, scenario: closing, scenario_params: {{crm_url: "{url}"}}')
    alice = await server.connect("alice")
    cid = (await first_message(server, alice))["conversation_id"]
    await until(lambda: any(c["id"] == cid and c["state"] == "closed" for c in alice.pushed("conversation")),
                timeout=10, what="the idle conversation closed")
    assert last_conversation(alice, cid)["outcome"] == "inactive"
    await until(lambda: len(received) == 1, timeout=10, what="the CRM activity")
    assert received[0]["outcome"] == "inactive"
    assert (await first_message(server, alice, "back again"))["conversation_id"] != cid


async def test_conversations_on_other_numbers_are_not_closed_for_inactivity(make_server):
    server = await make_server(alice=", inactivity_close_seconds: 600")
    alice = await server.connect("alice")
    cid = (await first_message(server, alice))["conversation_id"]
    before = len(alice.pushed("conversation"))
    assert (await alice.call("snooze", {"conversation_id": cid, "until": time.time() + 0.5}))["ok"]
    # The timers ran (the snooze ended): the conversation, 600 s from idle, is still open.
    await until(lambda: woken_after(alice, cid, before), timeout=10)
    assert last_conversation(alice, cid)["state"] == "open"
