"""Scenarios in the running service: auto-replies through the real outbound path, routing to a
backup user, opt-out compliance, waits that survive restarts, CRM activities exactly once."""
from __future__ import annotations

import asyncio
import textwrap
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp import web

from chat.store import Database, utcnow
from chat.store.tables import contacts, crm_outbox, scenario_runs
from tests.conftest import ALICE, CUSTOMER, until

AWAY = "Alice is away; Bob will take care of you."


async def bodies(server, n: int) -> list[str]:
    return [r["Body"] for r in await server.twilio_api.wait_for_requests(n, timeout=10)]


async def test_owner_offline_gets_the_auto_reply_and_the_backup_user_gets_the_chat(make_server):
    server = await make_server(alice=f', scenario: default, scenario_params: {{away_reply: "{AWAY}", backup_user: bob}}')
    bob = await server.connect("bob")
    status, _ = await server.simulate_sms(CUSTOMER, ALICE, "Hello Alice?")
    assert status == 200
    [request] = await server.twilio_api.wait_for_requests(1, timeout=10)
    assert request["Body"] == AWAY and request["From"] == ALICE and request["To"] == CUSTOMER
    await until(lambda: any(m["text"] == "Hello Alice?" for m in bob.messages), timeout=10)
    [conv] = bob.pushed("conversation")[-1:]
    assert conv["access_number"] == ALICE


async def test_stop_opts_out_with_a_confirmation_and_nothing_else_is_sent(didchat_server):
    alice = await didchat_server.connect("alice")
    await didchat_server.simulate_sms(text="Hi")
    [msg] = await alice.wait_messages(1)
    await didchat_server.simulate_sms(text="  stop ")
    [confirmation] = await bodies(didchat_server, 1)
    assert "STOP" in confirmation.upper() or "unsubscribed" in confirmation.lower()
    async with didchat_server.services.db.read() as conn:
        assert await conn.scalar(sa.select(contacts.c.opted_out).where(contacts.c.number == CUSTOMER))
    refused = await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "are you there?", "client_id": "x1"})
    assert refused["ok"] is False and "opted out" in refused["error"]
    await didchat_server.simulate_sms(text="please stop by tomorrow")  # a message, not a keyword
    await until(lambda: any(m["text"] == "please stop by tomorrow" for m in alice.messages))
    await didchat_server.simulate_sms(text="START")
    assert len(await bodies(didchat_server, 2)) == 2
    ok = await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "welcome back", "client_id": "x2"})
    assert ok["ok"], ok


async def test_what_didchat_sends_itself_says_so_and_an_agents_reply_does_not(didchat_server):
    """The agent sees which outbound messages were automatic (issue 11, point 3): the opt-out confirmation
    is automatic and a compliance message; her own reply is neither."""
    alice = await didchat_server.connect("alice")
    await didchat_server.simulate_sms(text="Hi")
    [first] = await alice.wait_messages(1)
    assert first["automatic"] is False and first["compliance"] is False  # inbound
    sent = await alice.call("send", {"conversation_id": first["conversation_id"], "text": "Hello!", "client_id": "a1"})
    assert sent["ok"], sent
    assert sent["message"]["automatic"] is False and sent["message"]["compliance"] is False
    await didchat_server.simulate_sms(text="STOP")
    await until(lambda: any(m["direction"] == "out" and m["automatic"] for m in alice.messages))
    [confirmation] = [m for m in alice.messages if m["direction"] == "out" and m["automatic"]]
    assert confirmation["compliance"] is True
    synced = await alice.call("sync", {"cursors": {}, "since": None})
    by_id = {m["id"]: m for m in synced["messages"]}
    assert by_id[confirmation["id"]]["automatic"] and by_id[confirmation["id"]]["compliance"]
    assert not by_id[sent["message"]["id"]]["automatic"]


def write(tmp_path, name: str, text: str) -> str:
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(textwrap.dedent(text))
    return f"\nscenarios: {{directory: \"{folder}\", reload_seconds: 0.2}}\n"


SURVEY = """\
    name: survey
    on:
      conversation_started:
        - reply: "How did we do, 1 to 5?"
        - wait_reply: score
          timeout: 60s
          on_timeout:
            - reply: "No answer; thanks anyway."
        - reply: "Thanks for your answer."
"""


async def test_opt_out_pre_empts_a_running_wait(make_server, tmp_path):
    server = await make_server(extra=write(tmp_path, "survey", SURVEY), alice=", scenario: survey")
    await server.simulate_sms(text="hi")
    assert await bodies(server, 1) == ["How did we do, 1 to 5?"]
    await server.simulate_sms(text="STOP")
    await server.twilio_api.wait_for_requests(2, timeout=10)
    async with server.services.db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(scenario_runs)) == 0
    assert "Thanks for your answer." not in [r["Body"] for r in server.twilio_api.requests]


async def test_a_restart_during_a_60s_wait_still_fires_the_timeout(make_server, tmp_path):
    extra = write(tmp_path, "survey", SURVEY)
    server = await make_server(extra=extra, alice=", scenario: survey")
    await server.simulate_sms(text="hi")
    assert await bodies(server, 1) == ["How did we do, 1 to 5?"]
    await server.stop()
    db = Database(server.config.database())
    async with db.engine.begin() as conn:  # the 60 s pass while it is down
        await conn.execute(scenario_runs.update().values(wake_at=utcnow() - timedelta(seconds=1)))
    await db.dispose()
    again = await make_server(extra=extra, alice=", scenario: survey")
    assert (await bodies(again, 2))[1] == "No answer; thanks anyway."


CRM = """\
    name: crm
    params:
      crm_url: ""
    on:
      message_received:
        - keywords: [bye]
          then:
            - save_activity: "{{ params.crm_url }}"
              body: {phone: "{{ contact.number }}", outcome: "resolved"}
            - close
"""


@pytest.fixture
async def crm():
    """A CRM that is down (503) for its first 3 requests, then takes activities."""
    received: list[tuple[int, dict, str]] = []

    async def activities(request: web.Request) -> web.Response:
        status = 503 if len(received) < 3 else 201
        received.append((status, await request.json(), request.headers.get("Idempotency-Key", "")))
        return web.json_response({"ok": status == 201}, status=status)

    app = web.Application()
    app.router.add_post("/activities", activities)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/activities", received
    await runner.cleanup()


async def test_a_crm_that_was_down_gets_the_activity_once_it_is_back_exactly_once(make_server, tmp_path, crm):
    url, received = crm
    server = await make_server(extra=write(tmp_path, "crm", CRM), alice=f', scenario: crm, scenario_params: {{crm_url: "{url}"}}')
    server.services.crm.backoff = 0.05
    await server.simulate_sms(text="thanks, bye")

    async def drained() -> bool:
        async with server.services.db.read() as conn:
            return await conn.scalar(sa.select(sa.func.count()).select_from(crm_outbox)) == 0
    await until(lambda: len(received) >= 4, timeout=20)
    assert [status for status, _, _ in received] == [503, 503, 503, 201]
    assert len({key for _, _, key in received}) == 1 and received[0][2]
    body = received[-1][1]
    assert body["phone"] == CUSTOMER and body["outcome"] == "resolved"
    assert [m["text"] for m in body["transcript"]] == ["thanks, bye"]
    async with asyncio.timeout(10):
        while not await drained():  # acknowledged: the activity leaves the CRM outbox
            await asyncio.sleep(0.02)
    assert len(received) == 4


async def test_a_broken_scenario_on_reload_keeps_the_last_good_one_and_tells_admins(make_server, tmp_path):
    extra = write(tmp_path, "survey", SURVEY)
    server = await make_server(extra=extra, alice=", scenario: survey")
    ada = await server.connect("ada")
    (tmp_path / "scenarios" / "survey.yaml").write_text("name: survey\non:\n  conversation_started:\n    - wait_reply: {}\n")
    await until(lambda: ada.pushed("notice"), timeout=10)
    assert "survey.yaml:4" in ada.pushed("notice")[0]["text"]
    await server.simulate_sms(text="hi")
    assert await bodies(server, 1) == ["How did we do, 1 to 5?"]  # the last good version still runs


CLOCKS = """\
    name: clocks
    on:
      conversation_started:
        - set_timer: follow_up
          after: 2s
      no_agent_reply:
        after: 1s
        steps:
          - reply: "Sorry for the wait."
      timer:
        follow_up:
          - reply: "Did that answer your question?"
"""


async def test_no_agent_reply_and_named_timers_fire_from_the_store(make_server, tmp_path):
    server = await make_server(extra=write(tmp_path, "clocks", CLOCKS), alice=", scenario: clocks")
    await server.simulate_sms(text="hello?")
    assert await bodies(server, 2) == ["Sorry for the wait.", "Did that answer your question?"]


async def test_an_agent_reply_stops_the_no_agent_reply_clock(make_server, tmp_path):
    server = await make_server(extra=write(tmp_path, "clocks", CLOCKS), alice=", scenario: clocks")
    alice = await server.connect("alice")
    await server.simulate_sms(text="hello?")
    [msg] = await alice.wait_messages(1)
    assert (await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "Here!", "client_id": "c"}))["ok"]
    assert await bodies(server, 2) == ["Here!", "Did that answer your question?"]
